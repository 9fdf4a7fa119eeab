"""`sentinel demo`: the built-in simulator, a real sync over HTTP into SQLite, and what was stored."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from sentinel.clock import utc_now, utc_today
from sentinel.config import SourceSettings, SyncSettings
from sentinel.detect.engine import backtest, load
from sentinel.models import Grain
from sentinel.simulator import InjectedEvent, SimulatorServer, TrafficConfig, TrafficModel
from sentinel.store import entities as entity_store
from sentinel.store import facts as fact_store
from sentinel.store import open_store
from sentinel.sync import backfill, open_client

DEMO_KEY_ENV = "SENTINEL_DEMO_KEY"


@dataclass(frozen=True)
class DemoSummary:
    db_path: Path
    days: int
    rows: int
    calls: int
    megabytes: float
    seconds: float
    total_spend: float
    by_provider: list[tuple[str, float]]
    by_team: list[tuple[str, float]]
    top_users: list[tuple[str, float]]
    by_model: list[tuple[str, float]]
    anomalies: list[dict[str, Any]]
    injected: list[tuple[str, str, str, str, bool]]  # kind, entity type, entity id, start, found
    aliases: dict[str, dict[str, str]]


def run_demo(*, db: Path | None = None, days: int = 90, users: int = 60, seed: int = 7) -> DemoSummary:
    began = time.monotonic()
    now = utc_now()
    model = TrafficModel(TrafficConfig(seed=seed, users=users, teams=max(3, users // 10), days=days, now=now))
    key = "sk-demo-" + "x" * 16
    path = db or Path(tempfile.mkdtemp(prefix="sentinel-demo-")) / "sentinel.db"
    store = open_store(path)
    settings = SyncSettings()
    with SimulatorServer(model, api_key=key).running() as url:
        source = SourceSettings(name="demo", url=url, api_key_env=DEMO_KEY_ENV)
        with open_client(source, settings, store, environ={DEMO_KEY_ENV: key}) as client:
            since = utc_today(now) - timedelta(days=days - 1)
            result = backfill(store, client, settings, since, now)
    start, end = since, utc_today(now)
    teams = entity_store.aliases(store, "teams", "demo")
    users_alias = entity_store.aliases(store, "users", "demo")
    by_team = [(teams.get(t, t), s) for t, s in fact_store.spend_by_entity(store, Grain.TEAM, start, end, "demo")]
    top_users = [
        (users_alias.get(u, u), s) for u, s in fact_store.spend_by_entity(store, Grain.USER, start, end, "demo")[:10]
    ]
    total = sum(s for _, s in fact_store.spend_by_entity(store, Grain.TOTAL, start, end, "demo"))
    # Replay detection over the part of the history that has a month of baseline behind it.
    data = load(store, start, end, "demo")
    replay_from = start + timedelta(days=min(35, days - 1))
    anomalies = backtest(data, replay_from, end - timedelta(days=1)) if replay_from < end else []
    injected = [
        (str(e.kind), str(e.entity_type), e.entity_id, e.start.isoformat(), _found(e, anomalies, model))
        for e in model.events
        if e.is_anomaly and e.start >= replay_from
    ]
    return DemoSummary(
        db_path=path,
        days=result.days,
        rows=result.rows,
        calls=result.calls,
        megabytes=result.bytes / 1e6,
        seconds=time.monotonic() - began,
        total_spend=total,
        by_provider=fact_store.spend_by_entity(store, Grain.PROVIDER, start, end, "demo"),
        by_team=by_team,
        top_users=top_users,
        by_model=fact_store.spend_by_entity(store, Grain.MODEL, start, end, "demo")[:8],
        anomalies=anomalies,
        injected=injected,
        aliases={"user": users_alias, "team": teams, "key": entity_store.aliases(store, "keys", "demo")},
    )


def _found(event: InjectedEvent, anomalies: list[dict[str, Any]], model: TrafficModel) -> bool:
    """Did an anomaly episode start on the event's entity (or its key's owner) within its window?"""
    related = {event.entity_id}
    if event.entity_type == "key":
        related |= {k.user_id for k in model.keys if k.token == event.entity_id and k.user_id}
    window_end = (event.end + timedelta(days=2)).isoformat()
    return any(
        str(a["entity_id"]) in related and event.start.isoformat() <= str(a["date"]) <= window_end for a in anomalies
    )


def _money_table(title: str, label: str, rows: list[tuple[str, float]], total: float) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(label)
    table.add_column("spend", justify="right")
    table.add_column("share", justify="right")
    for name, spend in rows:
        share = f"{spend / total:.1%}" if total else "-"
        table.add_row(name or "(none)", f"${spend:,.2f}", share)
    return table


def print_summary(s: DemoSummary, console: Console) -> None:
    console.print(
        f"Synced {s.days} days from the built-in LiteLLM simulator over HTTP: {s.rows:,} facts, "
        f"{s.calls} API calls, {s.megabytes:.1f} MB, in {s.seconds:.1f}s."
    )
    console.print(f"Store: {s.db_path}")
    console.print(f"Total spend: ${s.total_spend:,.2f}\n")
    console.print(_money_table("Spend by provider", "provider", s.by_provider, s.total_spend))
    console.print(_money_table("Spend by team", "team", s.by_team, s.total_spend))
    console.print(_money_table("Top users", "user", s.top_users, s.total_spend))
    console.print(_money_table("Top models", "model", s.by_model, s.total_spend))
    if s.anomalies:
        from sentinel.cli import _anomaly_table

        title = f"Anomalies found by replaying detection day by day ({len(s.anomalies)} episodes)"
        console.print(_anomaly_table(s.anomalies, title, s.aliases))
    if s.injected:
        console.print("Anomalies the simulator injected, and whether detection found them:")
        for kind, etype, eid, start, found in s.injected:
            name = s.aliases.get(etype, {}).get(eid, eid if len(eid) < 20 else eid[:12] + "…")
            console.print(f"  {'found' if found else 'MISSED':>6}  {kind:<16} {etype} {name} from {start}")
    console.print(
        "\nNext: point config.toml at your proxy (see config.example.toml) and run `sentinel sync --since DATE`."
    )
