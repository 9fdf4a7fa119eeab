"""Privacy: users stored as opaque ids (a keyed hash), consistently in the store, alerts, digests and
rule selectors; emails never stored; prompts and responses never requested or stored, proved against
the simulator with prompt storage turned on."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from simhelp import KEY

from sentinel import privacy
from sentinel.cli import main
from sentinel.config import PrivacySettings, Settings
from sentinel.daemon import Daemon
from sentinel.models import Grain
from sentinel.simulator import Faults, SimulatorServer, TrafficConfig, TrafficModel
from sentinel.simulator.spendlogs import PROMPT_CANARY

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
PSEUDONYM_KEY = "a-long-random-pseudonym-key-for-tests"

RULES = """schema_version = 1

[[threshold]]
name = "watched-user-daily"
entity = "user"
select = { ids = ["alice"] }
amount_usd = 0.01
period = "week"
"""


def _write_config(tmp_path: Path, url: str, pseudonymize: bool) -> Path:
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "r.toml").write_text(RULES)
    privacy_section = (
        '[privacy]\npseudonymize_users = true\npseudonym_key_env = "PSEUDO_KEY"\nstore_key_aliases = false\n'
        if pseudonymize
        else ""
    )
    config = tmp_path / "config.toml"
    config.write_text(
        f'[[sources]]\nname = "sim"\nurl = "{url}"\napi_key_env = "SIM_KEY"\n'
        f'[store]\npath = "s.db"\n[rules]\npath = "rules"\n'
        f'[[receivers]]\ntype = "jsonl"\nname = "log"\npath = "alerts.jsonl"\n'
        f'[route]\nreceiver = "log"\n[daemon]\ninitial_backfill_days = 20\n{privacy_section}'
    )
    return config


def _run_everything(tmp_path: Path, url: str, pseudonymize: bool) -> tuple[str, str]:
    """Sync, evaluate, doctor, reconcile, digest: every command that reads a source or the store.
    Returns (the whole SQLite dump, everything the commands printed and sent)."""
    config = _write_config(tmp_path, url, pseudonymize)
    env = {"SIM_KEY": KEY, "PSEUDO_KEY": PSEUDONYM_KEY}
    runner = CliRunner()
    printed = []
    for args in (
        ["sync", "--since", (NOW.date() - timedelta(days=19)).isoformat()],
        ["evaluate"],
        ["doctor"],
        ["reconcile", "--since", (NOW.date() - timedelta(days=5)).isoformat()],
        ["digest", "--preview", str(tmp_path / "digest.html"), "--at", NOW.isoformat()],
        ["alerts", "--format", "json"],
        ["status", "--format", "json"],
    ):
        result = runner.invoke(main, ["-c", str(config), *args], env=env)
        assert result.exit_code in (0, 1), (args, result.output)
        printed.append(result.output)
    import sqlite3

    conn = sqlite3.connect(tmp_path / "s.db")
    # The rule files are kept as the operator wrote them (they may name a user to watch): not data.
    dump = "\n".join(line for line in conn.iterdump() if not line.startswith('INSERT INTO "rule_snapshot"'))
    conn.close()
    sent = (tmp_path / "alerts.jsonl").read_text() if (tmp_path / "alerts.jsonl").exists() else ""
    html = (tmp_path / "digest.html").read_text()
    return dump, "\n".join([*printed, sent, html])


@pytest.fixture(autouse=True)
def _pinned_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands read the wall clock through `sentinel.clock.utc_now`: pin it to the simulator's."""
    import sys

    for name, module in list(sys.modules.items()):
        if name.startswith("sentinel") and getattr(module, "utc_now", None) is not None:
            monkeypatch.setattr(module, "utc_now", lambda: NOW)


@pytest.fixture(scope="module")
def prompts_on() -> TrafficModel:
    return TrafficModel(TrafficConfig(seed=9, users=12, teams=3, days=20, now=NOW))


def test_pseudonyms_everywhere_and_no_name_email_or_prompt_anywhere(tmp_path: Path, prompts_on: TrafficModel) -> None:
    people = [u for u in prompts_on.users if u.user_id != "default_user_id"]
    server = SimulatorServer(prompts_on, api_key=KEY, faults=Faults(store_prompts=True))
    with server.running() as url:
        dump, shown = _run_everything(tmp_path, url, pseudonymize=True)
        # Prompt storage is on: the proxy would hand out prompts to whoever asks. Sentinel never asks.
        assert not [r.path for r in server.access_log if r.path.startswith("/spend/logs")]

    transform = privacy.Pseudonymizer(PSEUDONYM_KEY.encode())
    for text in (dump, shown):
        assert PROMPT_CANARY not in text
        for user in people:
            assert not re.search(rf"\b{re.escape(user.user_id)}\b", text), user.user_id
            assert not user.user_email or user.user_email not in text
            assert not user.user_alias or user.user_alias not in text
        assert "@example.com" not in text
    # The store holds pseudonyms only, the same ones `sentinel pseudonym` prints.
    import sqlite3

    conn = sqlite3.connect(tmp_path / "s.db")
    stored = {r[0] for r in conn.execute("SELECT DISTINCT entity_id FROM daily_facts WHERE grain = ?", (Grain.USER,))}
    owners = {r[0] for r in conn.execute("SELECT DISTINCT user_id FROM keys WHERE user_id IS NOT NULL")}
    conn.close()
    assert stored and all(u.startswith("u-") or u in ("", "Unassigned") for u in stored)
    assert owners <= {transform.user(u.user_id) for u in prompts_on.users}
    alice = transform.user("alice")
    assert alice in stored
    out = CliRunner().invoke(
        main, ["-c", str(tmp_path / "config.toml"), "pseudonym", "alice"], env={"PSEUDO_KEY": PSEUDONYM_KEY}
    )
    assert out.exit_code == 0 and out.output.split() == ["alice", alice]
    # A rule written with the real id selects the pseudonymized user; the alert shows the pseudonym.
    sent = [json.loads(x) for x in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    fired = [x["alert"] for x in sent if x["alert"]["rule"] == "watched-user-daily"]
    assert fired and {a["labels"]["entity_id"] for a in fired} == {alice}


def test_without_pseudonyms_ids_are_kept_but_emails_and_prompts_never_are(
    tmp_path: Path, prompts_on: TrafficModel
) -> None:
    server = SimulatorServer(prompts_on, api_key=KEY, faults=Faults(store_prompts=True))
    with server.running() as url:
        dump, shown = _run_everything(tmp_path, url, pseudonymize=False)
    assert PROMPT_CANARY not in dump and PROMPT_CANARY not in shown
    assert "@example.com" not in dump  # ids and aliases are kept; emails are not
    assert "'alice'" in dump


def test_the_transform_is_keyed_stable_and_leaves_the_unassigned_bucket() -> None:
    a, b = privacy.Pseudonymizer(b"k1"), privacy.Pseudonymizer(b"k2")
    assert a.user("alice") == a.user("alice") != b.user("alice")
    assert re.fullmatch(r"u-[0-9a-f]{16}", a.user("alice"))
    assert a.user(a.user("alice")) == a.user("alice")  # applying it twice changes nothing
    assert a.user("Unassigned") == "Unassigned" and a.user("") == ""
    assert privacy.IDENTITY.user("alice") == "alice"


def test_pseudonymizing_needs_a_key() -> None:
    with pytest.raises(ValueError, match="pseudonym_key_env or pseudonym_key_credential"):
        PrivacySettings(pseudonymize_users=True)
    with pytest.raises(ValueError, match="pseudonym"):
        Settings(privacy={"pseudonymize_users": True})


def test_the_daemon_applies_the_same_transform(tmp_path: Path) -> None:
    model = TrafficModel(TrafficConfig(seed=9, users=8, teams=2, days=10, now=NOW))
    with SimulatorServer(model, api_key=KEY).running() as url:
        settings = Settings(
            sources=({"name": "sim", "url": url, "api_key_env": "SIM_KEY"},),
            store={"path": tmp_path / "s.db"},
            rules={"path": tmp_path / "none"},
            daemon={"initial_backfill_days": 10},
            privacy={"pseudonymize_users": True, "pseudonym_key_env": "PSEUDO_KEY"},
        )
        daemon = Daemon(settings, None, clock=lambda: NOW, environ={"SIM_KEY": KEY, "PSEUDO_KEY": PSEUDONYM_KEY})
        daemon.run_once(NOW)
    ids = {r[0] for r in daemon.store.conn.execute("SELECT user_id FROM users")}
    assert ids and all(i.startswith("u-") for i in ids)


def test_a_store_keeps_the_mode_of_its_first_sync(tmp_path: Path) -> None:
    from sentinel.errors import ConfigError
    from sentinel.store import open_store

    db = open_store(tmp_path / "plain.db")
    privacy.check_store(db, privacy.IDENTITY, NOW)
    privacy.check_store(db, privacy.IDENTITY, NOW)  # same mode: fine
    with pytest.raises(ConfigError, match="holds real user ids"):
        privacy.check_store(db, privacy.Pseudonymizer(b"k"), NOW)
    # A store written before the mode was recorded: its ids tell.
    old = open_store(tmp_path / "old.db")
    old.conn.execute("INSERT INTO users (source, user_id, seen_at) VALUES ('s', 'u-0123456789abcdef', 'x')")
    with pytest.raises(ConfigError, match="holds pseudonymized user ids"):
        privacy.check_store(old, privacy.IDENTITY, NOW)
