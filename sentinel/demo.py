"""`sentinel demo`: the built-in simulator, a real sync over HTTP into SQLite, and what was stored."""

from __future__ import annotations

import sqlite3
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sentinel.budget import engine as budget_engine
from sentinel.budget.evaluate import describe
from sentinel.budget.model import BudgetStatus
from sentinel.budget.report import table as budget_table
from sentinel.budget.specs import Policy
from sentinel.clock import utc_now, utc_today
from sentinel.config import SourceSettings, SyncSettings
from sentinel.detect.engine import backtest, load
from sentinel.models import Grain
from sentinel.rules import loader as rule_loader
from sentinel.rules.loader import RuleSet
from sentinel.simulator import InjectedEvent, SimulatorServer, TrafficConfig, TrafficModel
from sentinel.store import entities as entity_store
from sentinel.store import facts as fact_store
from sentinel.store import open_store
from sentinel.sync import backfill, open_client, poll

DEMO_KEY_ENV = "SENTINEL_DEMO_KEY"
DEMO_SIM_KEY = "sk-demo-" + "x" * 16


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
    budgets: BudgetWatch | None = None
    alerting: AlertingDemo | None = None
    digest_path: Path | None = None  # the weekly digest's preview (HTML), written next to the store


@dataclass(frozen=True)
class AlertingDemo:
    """One alerting cycle over the demo store with the example rules, delivered to a JSONL file."""

    firing: list[tuple[str, str, str]]  # severity, rule, summary
    messages: int
    notices: int
    path: Path
    muted: int


@dataclass(frozen=True)
class BudgetWatch:
    """Budgets at the end of the sync, then the alerts fired as the simulated clock moved on."""

    statuses: list[BudgetStatus]
    alerts_now: list[dict[str, Any]]
    steps: list[tuple[datetime, list[dict[str, Any]]]]
    story: str | None  # how far ahead the breach was forecast, once the clock has reached it


EXAMPLE_RULES = Path(__file__).resolve().parent.parent / "rules"
WATCH_STEP = timedelta(hours=12)
WATCH_STEPS = 16


def example_rules() -> RuleSet:
    """The example rule files of a source checkout (an installed wheel has none: budgets come from the proxy)."""
    return rule_loader.load(EXAMPLE_RULES) if EXAMPLE_RULES.is_dir() else RuleSet.empty()


def watch_budgets(store: Any, model: TrafficModel, url: str, now: datetime, rules: RuleSet) -> BudgetWatch:
    """Check budgets now, then move the simulator's clock on in 12-hour steps, polling and checking as
    the daemon would, until the team heading for its limit crosses it (or eight days pass)."""
    policy = Policy()
    settings = SyncSettings(entities_every_minutes=0)  # re-read the budget counters on every poll
    ctx = budget_engine.context(store, now)
    current = budget_engine.statuses(store, now, policy, rules, ctx=ctx)
    alerts_now = budget_engine.check(store, current, now, ctx)
    # Follow the proxy team whose forecast says it will cross its limit before the reset, if any.
    heading = [
        s
        for s in current
        if s.spec.origin == "proxy" and s.spec.entity_type == "team" and s.forecast and s.spec.limit
        and s.spec.spent < s.spec.limit <= s.forecast.at_end
    ]  # fmt: skip
    heading.sort(key=lambda s: -(s.forecast.p_breach if s.forecast else 0.0))
    target = heading[0].spec.budget_id if heading else None
    steps: list[tuple[datetime, list[dict[str, Any]]]] = []
    source = SourceSettings(name="demo", url=url, api_key_env=DEMO_KEY_ENV)
    moment = now
    with open_client(source, settings, store, environ={DEMO_KEY_ENV: DEMO_SIM_KEY}) as client:
        for _ in range(WATCH_STEPS if target else 0):
            moment += WATCH_STEP
            model.advance(moment)
            poll(store, client, settings, moment)
            ctx = budget_engine.context(store, moment)
            fired = budget_engine.check(
                store, budget_engine.statuses(store, moment, policy, rules, ctx=ctx), moment, ctx
            )
            steps.append((moment, fired))
            if any(a["budget"]["id"] == target and a.get("threshold_pct") == 100 for a in fired):  # type: ignore[index]
                break
    return BudgetWatch(current, alerts_now, steps, _story(target, alerts_now, steps))


def _story(
    target: str | None, alerts_now: list[dict[str, Any]], steps: list[tuple[datetime, list[dict[str, Any]]]]
) -> str | None:
    every = [*alerts_now, *(a for _t, fired in steps for a in fired)]
    mine = [a for a in every if a["budget"]["id"] == target]
    warned = next((a for a in mine if a["signal"] == "forecast"), None)
    crossed = next((a for a in mine if a["signal"] == "threshold" and a.get("threshold_pct") == 100), None)
    if warned is None or crossed is None:
        return None
    lead = datetime.fromisoformat(crossed["detected_at"]) - datetime.fromisoformat(warned["detected_at"])

    def when(iso: object) -> str:
        return str(iso)[:16].replace("T", " ")

    return (
        f"The {warned['entity_type']} {warned['entity_name']} was warned at {when(warned['detected_at'])} UTC "
        f"that it would reach its ${warned['budget']['limit_usd']:,.2f} budget around "
        f"{when(warned['forecast']['breach_eta'])} UTC; the check at {when(crossed['detected_at'])} saw it cross: "
        f"{lead.total_seconds() / 86400:.1f} days of warning."
    )


def run_alerting(store: Any, rules: RuleSet, directory: Path, now: datetime) -> AlertingDemo:
    """Evaluate the example rules as the daemon's tick does, and deliver to a JSON lines file."""
    from sentinel.alerting import run_cycle
    from sentinel.config import FileReceiver, RouteSettings, Settings
    from sentinel.notify.receivers import build_all
    from sentinel.store import alerts as alert_store

    target = directory / "alerts.jsonl"
    settings = Settings(
        receivers=(FileReceiver(type="jsonl", name="demo-file", path=target),),
        route=RouteSettings(receiver="demo-file", group_by=("rule",), group_wait="0s"),
    )
    report = run_cycle(store, settings, rules, build_all(settings.receivers, lambda _r: None), now)
    firing = sorted(alert_store.load(store, status="firing").values(), key=lambda a: (a.severity != "critical", a.rule))
    delivery = report.delivery
    return AlertingDemo(
        firing=[(a.severity, a.rule, a.summary) for a in firing],
        messages=delivery.sent if delivery else 0,
        notices=delivery.alerts_sent if delivery else 0,
        path=target,
        muted=delivery.muted if delivery else 0,
    )


def run_demo(*, db: Path | None = None, days: int = 90, users: int = 60, seed: int = 7) -> DemoSummary:
    began = time.monotonic()
    now = utc_now()
    model = TrafficModel(TrafficConfig(seed=seed, users=users, teams=max(3, users // 10), days=days, now=now))
    key = DEMO_SIM_KEY
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
    summary = DemoSummary(
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
    # The watch moves the simulated clock days ahead; it runs on a copy so the demo's store stays as of now.
    with tempfile.TemporaryDirectory(prefix="sentinel-demo-watch-") as tmp:
        copy = Path(tmp) / "watch.db"
        with sqlite3.connect(copy) as target:
            store.conn.backup(target)
        watch_store = open_store(copy)
        with SimulatorServer(model, api_key=key).running() as url:
            budgets = watch_budgets(watch_store, model, url, now, example_rules())
        watch_store.conn.close()
    alerting = run_alerting(store, example_rules(), path.parent, now)
    digest_path = write_digest(store, path.parent / "digest.html", now)
    return replace(
        summary, budgets=budgets, alerting=alerting, digest_path=digest_path, seconds=time.monotonic() - began
    )


def write_digest(store: Any, target: Path, now: datetime) -> Path:
    """The weekly digest of the last scheduled period (default schedule), as a preview file."""
    from sentinel.config import Settings
    from sentinel.digest.send import compose, write_preview

    write_preview(target, compose(store, Settings(), now, rules=example_rules()))
    return target


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
    if s.alerting is not None:
        print_alerting(s.alerting, console)
    if s.budgets is not None:
        print_budgets(s.budgets, console)
    if s.digest_path is not None:
        console.print(f"\nThe weekly digest of the last full week, as it would be emailed: {s.digest_path}")
    console.print(
        "\nNext: point config.toml at your proxy (see config.example.toml) and run `sentinel sync --since DATE`."
    )


def print_alerting(a: AlertingDemo, console: Console) -> None:
    console.print(
        f"\nAlerting with the example rules (rules/*.toml), one cycle as of now: {len(a.firing)} firing, "
        f"{a.notices} notice(s) in {a.messages} message(s) to the receiver demo-file ({a.path})"
    )
    for severity, rule, summary in a.firing[:12]:
        console.print(f"  {severity:<8} {rule:<22} {escape(summary)}")
    if len(a.firing) > 12:
        console.print(f"  ... and {len(a.firing) - 12} more (`sentinel alerts --db ...`)")


def print_budgets(w: BudgetWatch, console: Console) -> None:
    worth = [s for s in w.statuses if s.state != "ok" or s.spec.entity_type in ("team", "total")]
    console.print(budget_table(worth, f"Budgets needing attention, and every team budget ({len(w.statuses)} in all)"))
    console.print(f"Budget alerts now ({len(w.alerts_now)}; each fires once per budget window):")
    for a in w.alerts_now[:12]:
        console.print(f"  {a['signal']:<11} {describe(a)}")
    if w.steps:
        console.print("\nMoving the simulated clock on, polling and checking every 12 hours as the daemon would:")
        for moment, fired in w.steps:
            shown = [a for a in fired if a["entity_type"] != "user" or a["signal"] != "threshold"][:6]
            line = "; ".join(describe(a) for a in shown) if shown else "no new budget alerts"
            console.print(f"  {moment:%Y-%m-%d %H:%M}  {line}")
    if w.story:
        console.print(f"\n{w.story}")
