"""`sentinel run` as a real process, supervised the way systemd does it: a datagram socket stands in
for systemd's notify socket. It starts and says READY, serving /metrics, /healthz and the web view;
SIGHUP with a broken rule file keeps the old rules working and raises an operator alert; SIGTERM
makes it exit 0 within 5 s with nothing lost."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from simhelp import KEY, small_model

from sentinel.simulator import SimulatorServer
from sentinel.store import open_store, outbox

RULES = 'schema_version = 1\n\n[[threshold]]\nname = "proxy-daily"\nentity = "total"\namount_usd = 0.01\n'


def _receive(sock: socket.socket, wanted: str, timeout: float) -> list[str]:
    """Datagrams until one contains ``wanted`` (or the timeout)."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            seen.append(sock.recv(4096).decode())
        except TimeoutError:
            break
        if wanted in seen[-1]:
            return seen
    raise AssertionError(f"no {wanted!r} from the daemon; got {seen}")


def _alerts(path: Path) -> list[tuple[str, str]]:
    if not path.exists():
        return []
    return [(d["alert"]["rule"], d["status"]) for d in map(json.loads, path.read_text().splitlines())]


def _wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_run_reloads_on_sighup_keeps_good_rules_and_stops_on_sigterm(tmp_path: Path) -> None:
    model = small_model(days=10, now=datetime.now(UTC))
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "limits.toml").write_text(RULES)
    alerts = tmp_path / "alerts.jsonl"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    with SimulatorServer(model, api_key=KEY).running() as url:
        config = tmp_path / "config.toml"
        config.write_text(
            f'[store]\npath = "{tmp_path / "s.db"}"\n[rules]\npath = "{rules}"\n'
            "[budgets]\nproxy_budgets = false\n"
            '[daemon]\npoll_every = "2s"\npoll_jitter = "0s"\ndeliver_every = "1s"\ninitial_backfill_days = 10\n'
            f'metrics_port = {port}\nweb = true\nweb_user = "finops"\nweb_password_env = "WEB_PW"\n'
            '[route]\nreceiver = "log"\ngroup_interval = "1s"\n'
            f'[[receivers]]\ntype = "jsonl"\nname = "log"\npath = "{alerts}"\n'
            f'[[sources]]\nname = "sim"\nurl = "{url}"\napi_key_env = "SIM_KEY"\n'
        )
        env = {**os.environ, "SIM_KEY": KEY, "WEB_PW": "pw", "NOTIFY_SOCKET": str(tmp_path / "notify.sock")}
        daemon = subprocess.Popen(
            [sys.executable, "-m", "sentinel", "-c", str(config), "run"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            ready = _receive(notify, "READY=1", 90)
            assert "STATUS=last tick" in ready[-1]
            assert _alerts(alerts) == [("proxy-daily", "firing")]
            health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
            assert (health.status_code, health.text.strip()) == (200, "ok")
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            assert 'sentinel_source_up{source="sim"} 1.0' in metrics
            assert 'sentinel_alerts_firing{kind="threshold",severity="warning"} 1.0' in metrics
            # The web view on the same port, behind basic auth (scrapes and health checks stay open).
            assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 401
            page = httpx.get(f"http://127.0.0.1:{port}/", auth=("finops", "pw"), timeout=5)
            assert page.status_code == 200 and 'id="total-spend"' in page.text

            (rules / "limits.toml").write_text(RULES.replace("0.01", "-1"))
            daemon.send_signal(signal.SIGHUP)
            reload = _receive(notify, "READY=1", 30)
            assert any(m.startswith("RELOADING=1\nMONOTONIC_USEC=") for m in reload), reload
            _wait_for(lambda: ("sentinel-rules", "firing") in _alerts(alerts), 30, "the operator alert")
            time.sleep(2.5)  # another tick with the broken file: the old rule still runs, nothing resolves
            assert ("proxy-daily", "resolved") not in _alerts(alerts)

            started = time.monotonic()
            daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(timeout=10)
            took = time.monotonic() - started
            assert any("STOPPING=1" in m for m in _receive(notify, "STOPPING=1", 5))
        except AssertionError as exc:
            daemon.kill()
            raise AssertionError(f"{exc}\n--- daemon stderr ---\n{daemon.communicate()[1][-3000:]}") from None
        finally:
            if daemon.poll() is None:
                daemon.kill()
            notify.close()
    stderr = daemon.communicate()[1]
    assert code == 0, stderr
    assert took < 5, took
    assert "Traceback" not in stderr
    db = open_store(tmp_path / "s.db")
    assert set(outbox.depth(db)) == {"sent"}  # nothing left behind
