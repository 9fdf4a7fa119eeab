"""Crash safety: SIGKILL a backfill mid-way, start it again, and the store equals the ground truth."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
from simhelp import NOW, TODAY, assert_store_matches_truth, since_for, small_model

from sentinel.store import open_store

SENTINEL = [sys.executable, "-m", "sentinel"]
KEY = "sk-crash-test-key-8c1d2e"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def cursor(db: Path) -> str | None:
    if not db.exists():
        return None
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            row = conn.execute("SELECT backfill_cursor FROM sync_state WHERE source = 'sim'").fetchone()
    except sqlite3.OperationalError:
        return None
    return row[0] if row else None


def test_sigkill_mid_backfill_then_resume(tmp_path: Path) -> None:
    days, users, seed = 24, 14, 3
    port = free_port()
    env = {**os.environ, "SIM_KEY": KEY}
    sim = subprocess.Popen(
        [
            *SENTINEL,
            "simulate",
            "--port",
            str(port),
            "--seed",
            str(seed),
            "--users",
            str(users),
            "--teams",
            "3",
            "--days",
            str(days),
            "--api-key",
            KEY,
            "--now",
            NOW.isoformat(),
            "--latency",
            "0.02",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _ready(url), 30, "the simulator")
        db = tmp_path / "crash.db"
        config = tmp_path / "config.toml"
        config.write_text(
            f'[store]\npath = "{db}"\n'
            "[sync]\nprefer_aggregated = false\npage_size = 10\nbackfill_chunk_days = 2\nmax_chunk_days = 2\n"
            "sync_entities = false\n"
            f'[[sources]]\nname = "sim"\nurl = "{url}"\napi_key_env = "SIM_KEY"\n'
        )
        command = [*SENTINEL, "-c", str(config), "sync", "--since", since_for(days).isoformat()]
        first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: cursor(db) is not None, 60, "the first committed chunk")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        killed_at = cursor(db)
        assert killed_at is not None and killed_at < TODAY.isoformat(), "the backfill finished before the kill"
        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 0, second.stderr
        model = small_model(days=days, users=users, seed=seed)
        store = open_store(db)
        assert_store_matches_truth(store, model, since_for(days), TODAY)
        # the restart resumed after the checkpoint instead of starting over
        starts = [
            r[0]
            for r in store.conn.execute(
                "SELECT query FROM audit_log WHERE path = '/user/daily/activity' AND query LIKE '%&page=1' ORDER BY id"
            )
        ]
        assert sum(since_for(days).isoformat() in q.split("start_date=")[1][:10] for q in starts) == 1
    finally:
        sim.terminate()
        sim.wait(10)


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/health/readiness", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
