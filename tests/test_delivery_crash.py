"""Delivery survives SIGKILL: a worker killed between claiming notices and recording their
outcome, 20 times in a row, loses nothing and repeats at most one message per kill."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from alerthelp import alert
from fakeslack import FakeSlack, Reply, Seen

from sentinel.alerting import Evaluation, Routing, commit
from sentinel.clock import utc_now
from sentinel.config import Settings
from sentinel.store import open_store, outbox

KILLS = 20
ALERTS = 40

WORKER = """
import json, sys, time
from sentinel.clock import utc_now
from sentinel.config import Settings
from sentinel.notify.pipeline import deliver
from sentinel.notify.receivers import build_all
from sentinel.store import open_store, outbox

settings = Settings(**json.loads(sys.argv[2]))
db = open_store(sys.argv[1])
receivers = build_all(settings.receivers, lambda _record: None)
while True:
    deliver(db, receivers, settings.delivery, (), utc_now())
    depth = outbox.depth(db)
    if not depth.get("pending") and not depth.get("claimed"):
        break
    time.sleep(0.05)
"""


def _claims_since(path: Path, started: datetime) -> int:
    """Rows claimed by a worker started at ``started`` (older claims of killed workers end before it + lease)."""
    conn = sqlite3.connect(path, timeout=30)
    try:
        after = (started + timedelta(seconds=1)).isoformat()  # the lease is 1 s
        return int(
            conn.execute(
                "SELECT COUNT(*) FROM outbox WHERE state = 'claimed' AND claimed_until > ?", (after,)
            ).fetchone()[0]
        )
    finally:
        conn.close()


def _states(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path, timeout=30)
    try:
        return dict(conn.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchall())
    finally:
        conn.close()


def test_sigkill_between_claim_and_send_loses_nothing_and_repeats_at_most_once_per_kill(tmp_path: Path) -> None:
    received: list[str] = []

    def slow_ok(seen: Seen) -> Reply:
        received.extend(a["fingerprint"] for a in seen.json()["alerts"])
        time.sleep(0.1)  # the answer takes a while: a kill lands after the message arrived
        return Reply(200, "ok")

    with FakeSlack(slow_ok) as hook:
        config = {
            "receivers": [{"type": "webhook", "name": "hook", "url": hook.url + "/hook"}],
            "route": {"receiver": "hook", "group_by": ["entity_id"], "group_wait": "0s"},
            "delivery": {"retry_initial": "1s", "retry_max": "2s", "lease": "1s"},
        }
        settings = Settings(**config)
        store = tmp_path / "s.db"
        db = open_store(store)
        now = utc_now() - timedelta(seconds=5)
        made = [alert(f"user-{i:02d}", now) for i in range(ALERTS)]
        commit(db, Evaluation(), Routing.from_settings(settings), now, extra=made)
        db.conn.close()
        assert _states(store) == {"pending": ALERTS}

        rng = random.Random(7)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        argv = [sys.executable, "-c", WORKER, str(store), json.dumps(config)]
        kills_mid_claim = 0
        for _ in range(KILLS):
            started = utc_now()
            worker = subprocess.Popen(argv, env=env)
            deadline = time.monotonic() + 60
            while worker.poll() is None and time.monotonic() < deadline and not _claims_since(store, started):
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.12))  # somewhere between claiming a group and recording its outcome
            if worker.poll() is None:
                if _claims_since(store, started):
                    kills_mid_claim += 1
                os.kill(worker.pid, signal.SIGKILL)
            worker.wait()
        subprocess.run(argv, env=env, check=True, timeout=120)

    final = _states(store)
    duplicates = len(received) - len(set(received))
    print(
        f"\n{KILLS} kills ({kills_mid_claim} with a claim held), {ALERTS} alerts: "
        f"{len(set(received))} delivered, {duplicates} duplicate(s)"
    )
    assert final == {"sent": ALERTS}
    assert set(received) == {a.fingerprint for a in made}  # nothing lost
    assert duplicates <= KILLS  # at most one repeat per kill
    assert kills_mid_claim >= KILLS // 2  # the kills really landed mid-delivery
    db = open_store(store)
    attempts = db.conn.execute("SELECT COUNT(*) FROM delivery_attempts WHERE outcome = 'ok'").fetchone()[0]
    assert attempts == ALERTS  # a killed send leaves no record; every success is recorded once
    assert outbox.depth(db) == {"sent": ALERTS}
