"""A LiteLLM-compatible simulator: seeded synthetic traffic served over the proxy's real read-only API.

Used by `sentinel demo`, `sentinel simulate`, the tests and the benchmarks.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from sentinel.simulator.api import ApiError, DailyActivity, Params
from sentinel.simulator.budgets import BudgetState, next_reset, window_start
from sentinel.simulator.entities import ADMIN_USER_ID, SimKey, SimTeam, SimUser
from sentinel.simulator.events import InjectedEvent
from sentinel.simulator.server import AccessRecord, Caller, Faults, SimulatorServer
from sentinel.simulator.traffic import Snapshot, TrafficConfig, TrafficModel, describe
from sentinel.simulator.truth import GRAINS, Grain, TruthTable

__all__ = [
    "ADMIN_USER_ID",
    "GRAINS",
    "AccessRecord",
    "ApiError",
    "BudgetState",
    "Caller",
    "DailyActivity",
    "Faults",
    "Grain",
    "InjectedEvent",
    "Params",
    "SimKey",
    "SimTeam",
    "SimUser",
    "SimulatorServer",
    "Snapshot",
    "TrafficConfig",
    "TrafficModel",
    "TruthTable",
    "next_reset",
    "serve_forever",
    "window_start",
]


def serve_forever(
    host: str,
    port: int,
    config: TrafficConfig,
    api_key: str | None = "sk-sim-master",
    access_log: Path | None = None,
    faults: Faults | None = None,
) -> None:
    """Run the simulator in the foreground until Ctrl-C.

    Without an explicit `config.now` the clock follows wall time, so "today" keeps growing like on a live proxy.
    """
    live = config.now is None and config.today is None
    if live:
        config = replace(config, now=datetime.now(UTC))
    model = TrafficModel(config)
    server = SimulatorServer(
        model, api_key=api_key, faults=faults, host=host, port=port, access_log=access_log, live_clock=live
    )
    url = server.start()
    facts = describe(model)
    print(
        f"LiteLLM simulator on {url} — {facts['users']} users, {facts['teams']} teams, {facts['keys']} keys, "
        f"{facts['dates']} days, {facts['rows']:,} daily rows; Ctrl-C to stop.",
        file=sys.stderr,
        flush=True,
    )
    server.serve_forever()
