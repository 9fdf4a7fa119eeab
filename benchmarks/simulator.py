"""Simulator speed at proxy scale: build a 2,000-user x 400-day model and time real HTTP requests.

.venv/bin/python benchmarks/simulator.py [--users 2000] [--days 400]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from datetime import UTC, datetime, timedelta

import httpx

from sentinel.simulator import SimulatorServer, TrafficConfig, TrafficModel, describe


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--teams", type=int, default=40)
    parser.add_argument("--days", type=int, default=400)
    args = parser.parse_args()
    now = datetime(2026, 11, 26, 12, tzinfo=UTC)
    began = time.perf_counter()
    model = TrafficModel(TrafficConfig(users=args.users, teams=args.teams, days=args.days, now=now))
    print(f"build: {time.perf_counter() - began:.2f}s  {describe(model)}")
    end = now.date() - timedelta(days=1)
    span = {"start_date": (end - timedelta(days=6)).isoformat(), "end_date": end.isoformat()}
    user_days = len(model.truth("user", end - timedelta(days=6), end))
    with (
        SimulatorServer(model).running() as url,
        httpx.Client(base_url=url, headers={"Authorization": "Bearer sk-sim-master"}, timeout=120) as client,
    ):
        cases = [
            ("7-day aggregated, api_key_limit=100 (default)", "/user/daily/activity/aggregated", {}),
            ("7-day aggregated, api_key_limit=1000", "/user/daily/activity/aggregated", {"api_key_limit": 1000}),
            ("7-day team aggregated", "/team/daily/activity/aggregated", {}),
            ("paginated page 1, page_size=1000", "/user/daily/activity", {"page_size": 1000}),
            ("/key/list full objects, size=100", "/key/list", {"return_full_object": "true", "size": 100}),
        ]
        for label, path, extra in cases:
            for attempt in ("cold", "warm"):
                t = time.perf_counter()
                r = client.get(path, params={**span, **extra})
                seconds = time.perf_counter() - t
                r.raise_for_status()
                print(f"{label:48s} {attempt}: {seconds:6.3f}s  {len(r.content) / 1e6:7.2f} MB")
        # A backfill's shape: consecutive 1,000-row pages of one long scan, each served once.
        scan = {"start_date": (end - timedelta(days=29)).isoformat(), "end_date": end.isoformat(), "page_size": 1000}
        times, sizes = [], []
        for page in range(1, 31):
            t = time.perf_counter()
            r = client.get("/user/daily/activity", params={**scan, "page": page})
            times.append(time.perf_counter() - t)
            sizes.append(len(r.content))
            r.raise_for_status()
        print(
            f"{'30-day scan, pages 1-30, page_size=1000':48s} median {statistics.median(times) * 1000:6.1f} ms/page"
            f"  {statistics.mean(sizes) / 1e6:7.2f} MB"
        )
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
    print(f"active user-days in the 7 days: {user_days}; max RSS {rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
