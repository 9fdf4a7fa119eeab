"""Ingest benchmark: backfill a 2,000-user x 400-day simulated proxy, then a steady-state poll.

The simulator runs in its own process (as a real proxy would), so the figures are Sentinel's
own work plus real HTTP on 127.0.0.1. Prints wall time, rows/s, API calls, MB read and peak RSS.

    .venv/bin/python benchmarks/ingest.py [--users 2000] [--days 400]
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

from sentinel.config import SourceSettings, SyncSettings
from sentinel.store import open_store
from sentinel.sync import backfill, open_client, poll

KEY = "sk-bench-master-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument("--teams", type=int, default=60)
    args = parser.parse_args()

    now = datetime.now(UTC).replace(microsecond=0)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    began = time.monotonic()
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sentinel",
            "simulate",
            "--port",
            str(port),
            "--users",
            str(args.users),
            "--teams",
            str(args.teams),
            "--days",
            str(args.days),
            "--api-key",
            KEY,
            "--now",
            now.isoformat(),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                if httpx.get(url + "/health/readiness", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if sim.poll() is not None:
                raise SystemExit("the simulator exited")
            time.sleep(0.2)
        print(f"simulator: {args.users} users x {args.days} days ready in {time.monotonic() - began:.1f}s")

        with tempfile.TemporaryDirectory() as tmp:
            db = open_store(Path(tmp) / "bench.db")
            settings = SyncSettings()
            source = SourceSettings(name="bench", url=url, api_key_env="BENCH_KEY")
            with open_client(source, settings, db, environ={"BENCH_KEY": KEY}) as client:
                since = now.date() - timedelta(days=args.days - 1)
                t0 = time.monotonic()
                result = backfill(db, client, settings, since, now)
                wall = time.monotonic() - t0
                rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                size_mb = os.path.getsize(Path(tmp) / "bench.db") / 1e6
                print(
                    f"backfill: {result.days} days, {result.rows:,} rows in {wall:.1f}s "
                    f"({result.rows / wall:,.0f} rows/s), {result.calls} API calls, "
                    f"{result.bytes / 1e6:,.0f} MB read, peak RSS {rss_mb:,.0f} MB, store {size_mb:,.0f} MB"
                )
                t0 = time.monotonic()
                steady = poll(db, client, settings, now + timedelta(minutes=15))
                print(
                    f"poll (trailing {settings.trailing_days} days + entities): {time.monotonic() - t0:.2f}s, "
                    f"{steady.calls} API calls, {steady.bytes / 1e6:.1f} MB read"
                )
    finally:
        sim.terminate()
        sim.wait(10)


if __name__ == "__main__":
    main()
