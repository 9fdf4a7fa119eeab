"""`sentinel doctor` against the simulator showing each problem, and once healthy.

Every test talks real HTTP to a simulator on 127.0.0.1 through the same audited client a poll uses.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner
from simhelp import KEY, NOW, make_client

from sentinel import doctor
from sentinel.cli import main
from sentinel.config import QualitySettings, SyncSettings
from sentinel.egress import proxy_client
from sentinel.models import DailyActivity, FactRow, Grain
from sentinel.simulator import Faults, SimulatorServer, TrafficConfig, TrafficModel
from sentinel.simulator.server import Caller
from sentinel.source.litellm import LiteLLMClient
from sentinel.store import open_store
from sentinel.store import state as state_store
from sentinel.sync import policy_from

VIEWER_KEY = "sk-sentinel-viewer-2b1e"
INTERNAL_KEY = "sk-someone-internal-9c0d"


def _model(**config: object) -> TrafficModel:
    return TrafficModel(TrafficConfig(seed=5, users=12, teams=3, days=40, now=NOW, **config))  # type: ignore[arg-type]


def _client(url: str, db: sqlite_utils.Database, key: str) -> LiteLLMClient:
    http = proxy_client(
        source="sim", base_url=url, api_key=key, audit=lambda r: state_store.record_audit(db, r), timeout_s=5
    )
    return LiteLLMClient("sim", http, policy_from(SyncSettings()))


def _run(
    tmp_path: Path,
    model: TrafficModel,
    faults: Faults | None = None,
    key: str = KEY,
    callers: dict[str, Caller] | None = None,
) -> dict[str, doctor.Check]:
    db = open_store(tmp_path / "s.db")
    server = SimulatorServer(model, api_key=KEY, faults=faults or Faults(), callers=callers)
    with server.running() as url, _client(url, db, key) as client:
        report = doctor.diagnose(client, url, QualitySettings(), now=NOW)
    # Doctor only reads: every request is an allowlisted GET, and each is in the audit log.
    paths = {r.path for r in server.access_log}
    assert all(r.method == "GET" for r in server.access_log)
    assert db.conn.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0] == len(server.access_log)
    assert "/spend/logs/v2" not in paths
    return {c.name: c for c in report.checks}


def test_a_healthy_proxy_passes_every_check_and_names_what_it_holds(tmp_path: Path) -> None:
    checks = _run(tmp_path, _model(), callers={VIEWER_KEY: Caller("sentinel", "proxy_admin_viewer")}, key=VIEWER_KEY)
    verdicts = {name: c.verdict for name, c in checks.items()}
    assert verdicts == {
        "reachable": "ok",
        "clock": "ok",
        "database": "ok",
        "authentication": "ok",
        "key role": "ok",
        "read scope": "ok",
        "recent traffic": "ok",
        "attribution": "ok",
        "pricing": "ok",
        "inventory": "info",
        "history": "info",
    }
    assert checks["authentication"].details["user_id"] == "sentinel"
    assert checks["history"].details["oldest_day"] == (NOW.date() - timedelta(days=39)).isoformat()
    assert set(checks["inventory"].details["providers"]) >= {"openai", "anthropic"}  # type: ignore[arg-type]
    assert checks["recent traffic"].details["requests"] > 0


def test_the_master_key_works_but_is_flagged_with_how_to_make_a_viewer_key(tmp_path: Path) -> None:
    checks = _run(tmp_path, _model())
    role = checks["key role"]
    assert role.verdict == "warn" and "master key" in role.finding
    assert "proxy_admin_viewer" in role.fix and "/key/generate" in role.fix
    assert not any(c.verdict == "fail" for c in checks.values())


def test_a_bad_key_fails_authentication_and_skips_what_needs_it(tmp_path: Path) -> None:
    checks = _run(tmp_path, _model(), key="sk-not-a-key-of-this-proxy")
    assert checks["reachable"].verdict == "ok"
    assert checks["authentication"].verdict == "fail" and "HTTP 401" in checks["authentication"].finding
    assert "sk-not-a-key" not in json.dumps([c.to_json() for c in checks.values()])
    assert {checks[n].verdict for n in ("key role", "read scope", "recent traffic", "pricing")} == {"skip"}


def test_a_key_of_an_ordinary_user_fails_role_and_scope(tmp_path: Path) -> None:
    model = _model()
    someone = model.users[1].user_id
    checks = _run(tmp_path, model, key=INTERNAL_KEY, callers={INTERNAL_KEY: Caller(someone, "internal_user")})
    assert checks["key role"].verdict == "fail" and "internal_user" in checks["key role"].finding
    assert checks["read scope"].verdict == "fail"
    refused = checks["read scope"].details["refused"]
    assert any(r.startswith("users") and "403" in r for r in refused)  # type: ignore[union-attr]
    # The team list answers 401 with a role message: a permission problem, not a bad key.
    assert any(r.startswith("teams") and "may not read" in r for r in refused)  # type: ignore[union-attr]


def test_a_proxy_without_a_database_fails_and_says_set_database_url(tmp_path: Path) -> None:
    checks = _run(tmp_path, _model(), Faults(db_connected=False))
    assert checks["database"].verdict == "fail" and "DATABASE_URL" in checks["database"].fix
    assert checks["recent traffic"].verdict == "skip"


def test_an_unpriced_model_is_named_with_its_tokens(tmp_path: Path) -> None:
    unpriced = "anthropic/claude-3-5-sonnet-20240620"
    checks = _run(tmp_path, _model(unpriced_models=(unpriced,)))
    pricing = checks["pricing"]
    assert pricing.verdict == "fail"
    assert pricing.details["unpriced"] == [unpriced]
    assert pricing.details["tokens"][unpriced] > 0  # type: ignore[index]
    assert "price map" in pricing.finding and "input_cost_per_token" in pricing.fix


def test_all_spend_on_keys_without_a_user_fails_attribution(tmp_path: Path) -> None:
    checks = _run(tmp_path, _model(service_keys_only=True))
    attribution = checks["attribution"]
    assert attribution.verdict == "fail"
    assert "no user_id" in attribution.finding and attribution.details["unassigned_share"] == 1.0
    assert "user_id" in attribution.fix


def test_no_traffic_recently_fails_and_no_traffic_ever_says_so(tmp_path: Path) -> None:
    quiet = _model()
    quiet.stop_logging(NOW - timedelta(days=12))
    checks = _run(tmp_path / "a", quiet)
    assert checks["recent traffic"].verdict == "fail" and "no requests" in checks["recent traffic"].finding
    assert checks["history"].details["oldest_day"] == (NOW.date() - timedelta(days=39)).isoformat()

    never = _model()
    never.stop_logging(NOW - timedelta(days=400))
    checks = _run(tmp_path / "b", never)
    assert checks["recent traffic"].verdict == "fail"
    assert checks["history"].finding.startswith("no day with data")


def test_clock_skew_beyond_a_minute_warns_and_beyond_a_quarter_hour_fails(tmp_path: Path) -> None:
    assert _run(tmp_path / "a", _model(), Faults(clock_skew_s=300))["clock"].verdict == "warn"
    far = _run(tmp_path / "b", _model(), Faults(clock_skew_s=-3600))["clock"]
    assert far.verdict == "fail" and "behind" in far.finding
    assert -3602 <= far.details["skew_s"] <= -3598  # type: ignore[operator]


def test_an_unreachable_proxy_fails_first_and_skips_the_rest(tmp_path: Path) -> None:
    db = open_store(tmp_path / "s.db")
    with make_client("http://127.0.0.1:9", db, SyncSettings()) as client:
        report = doctor.diagnose(client, "http://127.0.0.1:9", QualitySettings(), now=NOW)
    assert report.checks[0].name == "reachable" and report.checks[0].verdict == "fail"
    assert all(c.verdict == "skip" for c in report.checks[1:])
    assert report.failed


@pytest.mark.parametrize("faults,code", [(Faults(), 0), (Faults(db_connected=False), 1)])
def test_cli_exit_status_and_json(tmp_path: Path, faults: Faults, code: int) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    model = TrafficModel(TrafficConfig(seed=5, users=8, teams=2, days=30, now=now))
    with SimulatorServer(model, api_key=KEY, faults=faults).running() as url:
        config = tmp_path / "config.toml"
        config.write_text(
            f'[[sources]]\nname = "sim"\nurl = "{url}"\napi_key_env = "SIM_KEY"\n[store]\npath = "s.db"\n'
        )
        result = CliRunner().invoke(main, ["-c", str(config), "doctor", "--format", "json"], env={"SIM_KEY": KEY})
        table = CliRunner().invoke(main, ["-c", str(config), "doctor"], env={"SIM_KEY": KEY})
    assert result.exit_code == code, result.output
    doc = json.loads(result.output)
    assert doc["ok"] is (code == 0)
    checks = {c["check"]: c["verdict"] for c in doc["sources"][0]["checks"]}
    assert checks["database"] == ("ok" if code == 0 else "fail")
    assert table.exit_code == code
    assert ("no check failed" in table.output) is (code == 0)
    assert KEY not in result.output + table.output


def _activity(users: dict[str, float], keys: dict[str, float]) -> DailyActivity:
    day = NOW.date()
    metrics = (0.0, 0, 0, 0, 0, 1, 1, 0)
    facts = [FactRow(day, Grain.USER, u, "", (s, *metrics[1:])) for u, s in users.items()]
    facts += [FactRow(day, Grain.KEY, k, "", (s, *metrics[1:])) for k, s in keys.items()]
    return DailyActivity(dates=(day,), facts=tuple(facts))


def test_attribution_tells_one_person_from_keys_that_lack_users() -> None:
    threshold = QualitySettings().single_user_share
    personal = doctor.attribution_check(_activity({"ann": 10.0}, {"k1": 10.0}), threshold)
    assert personal.verdict == "info" and "one key" in personal.finding
    shared = doctor.attribution_check(_activity({"ann": 10.0}, {"k1": 4.0, "k2": 3.0, "k3": 3.0}), threshold)
    assert shared.verdict == "fail" and "one user (ann) across 3 keys" in shared.finding
    keyless = doctor.attribution_check(_activity({"Unassigned": 6.0, "ann": 4.0}, {"k1": 6.0, "k2": 4.0}), threshold)
    assert keyless.verdict == "warn" and "60% of spend comes from keys with no user_id" in keyless.finding
    spread = doctor.attribution_check(_activity({"ann": 6.0, "bob": 4.0}, {"k1": 6.0, "k2": 4.0}), threshold)
    assert spread.verdict == "ok"
