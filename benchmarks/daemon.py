"""A steady daemon's memory and CPU against a 2,000-user proxy, over simulated hours.

The simulator runs in its own process (`sentinel simulate`, clock pinned), so the figures are the
daemon's alone. The daemon runs in this process with an injected clock: one first tick (it
backfills), then ticks 15 minutes apart of simulated time; each tick polls over HTTP, evaluates
the example rules (anomalies, budgets, thresholds, absences), delivers to a JSON lines file and
checks the digest schedule. CPU per tick is measured with getrusage; the average CPU share is the
CPU time spent over the simulated time covered.

    .venv/bin/python benchmarks/daemon.py [--users 2000] [--days 90] [--ticks 8]
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from sentinel.config import Settings
from sentinel.daemon import Daemon

NOW = datetime(2026, 11, 26, 15, 30, tzinfo=UTC)
KEY = "sk-bench-daemon"
RULES = Path(__file__).resolve().parents[1] / "rules"
TICK = timedelta(minutes=15)


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--ticks", type=int, default=8, help="steady ticks, 15 simulated minutes apart")
    args = parser.parse_args()
    port = _free_port()
    simulator = subprocess.Popen(
        [
            sys.executable, "-m", "sentinel", "simulate", "--port", str(port), "--users", str(args.users),
            "--teams", str(max(3, args.users // 20)), "--days", str(args.days), "--api-key", KEY,
            "--now", NOW.isoformat(),
        ],
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                httpx.get(url + "/health/readiness", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.5)
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(
                sources=({"name": "sim", "url": url, "api_key_env": "BENCH_KEY"},),
                store={"path": Path(tmp) / "s.db"},
                rules={"path": RULES},
                receivers=({"type": "jsonl", "name": "log", "path": Path(tmp) / "alerts.jsonl"},),
                route={"receiver": "log"},
                daemon={"initial_backfill_days": args.days},
            )
            base_rss = _rss_mb()
            clock = [NOW]
            daemon = Daemon(settings, None, clock=lambda: clock[0], environ={"BENCH_KEY": KEY})
            cpu, wall = _cpu(), time.monotonic()
            first = daemon.run_once(NOW)
            print(
                f"{args.users} users x {args.days} days; first tick (backfill + evaluate): "
                f"{time.monotonic() - wall:.1f}s wall, {_cpu() - cpu:.1f}s CPU; errors: {first.errors or 'none'}"
            )
            after_first = _rss_mb()
            spent: list[float] = []
            for i in range(1, args.ticks + 1):
                clock[0] = NOW + i * TICK
                cpu = _cpu()
                tick = daemon.run_once(clock[0])
                spent.append(_cpu() - cpu)
                if tick.errors:
                    print(f"  tick {i}: {tick.errors}")
            covered = args.ticks * TICK.total_seconds()
            print(
                f"steady ticks: {args.ticks} over {covered / 3600:.1f} simulated hours: CPU per tick mean "
                f"{sum(spent) / len(spent):.2f}s, max {max(spent):.2f}s; average CPU share "
                f"{100 * sum(spent) / covered:.2f} % of one core at a {TICK.total_seconds() / 60:.0f}-minute interval"
            )
            print(
                f"RSS: {base_rss:.0f} MB before, {after_first:.0f} MB after the first tick, {_rss_mb():.0f} MB after "
                f"the steady ticks; peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
            )
    finally:
        simulator.terminate()
        simulator.wait(timeout=30)
    os._exit(0)  # skip interpreter teardown of the thread pools the run left idle


if __name__ == "__main__":
    main()
