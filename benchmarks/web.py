"""Web view speed on a big proxy: the server time of every page, through the app's handler.

Syncs a 2,000-user x 400-day simulated proxy over HTTP into a fresh store (about 4 minutes; --db
keeps the store and reuses it on the next run), runs one alerting cycle with the example rules (its
alerts and the budget evaluation every tick keeps), adds anomaly alerts replayed from detection
over recent weeks (a store with an alert history), then requests each page several times the way
the server answers one: open the store, ``WebApp.handle``, close. Prints the median and the
maximum per page, in milliseconds.

Serving the view builds its two partial indexes (``web.queries.INDEXES``) once; that is timed too.
``--index-cost`` also measures what they cost the writes from then on: the store's facts are
written again, in backfill-sized chunks and then as a poll, into a fresh store with and without them.

    .venv/bin/python benchmarks/web.py [--users 2000] [--days 400] [--runs 7] [--db PATH] [--index-cost]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import sqlite_utils
from _simsync import big_proxy

from sentinel.demo import example_rules, run_alerting
from sentinel.detect import engine as detect_engine
from sentinel.notify.model import Alert
from sentinel.store import alerts as alert_store
from sentinel.store import open_store, transaction
from sentinel.store.db import MIGRATIONS
from sentinel.web import WebApp, prepare_store
from sentinel.web.queries import INDEXES

NOW = datetime(2026, 11, 26, 15, 30, tzinfo=UTC)
REPLAY_DAYS = 60  # anomaly episodes replayed into alerts


def build(path: Path, users: int, days: int) -> None:
    if path.exists():
        print(f"reusing {path}")
    else:
        simulate(path, users, days)
    began = time.monotonic()
    built = prepare_store(path)
    if built is not None:
        print(f"built the web view's indexes in {time.monotonic() - began:.1f}s (once per store)")


def simulate(path: Path, users: int, days: int) -> None:
    _model, db = big_proxy(users, days, NOW, path)
    began = time.monotonic()
    run_alerting(db, example_rules(), path.parent, NOW)
    print(f"one alerting cycle with the example rules in {time.monotonic() - began:.1f}s")
    began = time.monotonic()
    added = replay_alerts(db)
    print(f"{added} anomaly alerts replayed from {REPLAY_DAYS} days of detection in {time.monotonic() - began:.1f}s")
    db.conn.close()


def replay_alerts(db: sqlite_utils.Database) -> int:
    """Anomaly episodes of the recent weeks as alerts (resolved when they ended, else firing)."""
    end = NOW.date() - timedelta(days=1)
    since = end - timedelta(days=REPLAY_DAYS)
    data = detect_engine.load(db, since - timedelta(days=detect_engine.HISTORY_DAYS), end)
    made = []
    for rec in detect_engine.backtest(data, since, end):
        episode = rec["episode"]
        assert isinstance(episode, dict)
        starts = datetime.fromisoformat(str(rec["detected_at"]))
        ongoing = episode["state"] == "ongoing"
        labels = {
            "kind": "anomaly",
            "rule": "replayed",
            "severity": "warning",
            "entity_type": str(rec["entity_type"]),
            "entity_id": str(rec["entity_id"]),
            "direction": str(rec["direction"]),
        }
        made.append(
            Alert(
                fingerprint=f"replay-{rec['entity_type']}-{rec['entity_id']}-{rec['direction']}-{rec['date']}",
                status="firing" if ongoing else "resolved",
                rule="replayed",
                severity="warning",
                summary=f"{rec['entity_type']} {rec['entity_id']} spend {rec['direction']} since {episode['onset']}",
                labels=labels,
                starts_at=starts,
                ends_at=None if ongoing else starts + timedelta(days=int(str(episode["days"])) + 1),
                record=rec,
            )
        )
    with transaction(db):
        alert_store.save(db, made, NOW)
    return len(made)


def routes(db: sqlite_utils.Database) -> list[str]:
    """Every page, with the heaviest entity of each kind (the biggest team, the most popular model...)."""
    c = db.conn
    biggest = c.execute("SELECT team_id FROM keys WHERE team_id IS NOT NULL GROUP BY 1 ORDER BY COUNT(*) DESC")
    team = biggest.fetchone()[0]
    user = c.execute(
        "SELECT entity_id FROM daily_facts INDEXED BY daily_facts_user_days WHERE grain = 'user' "
        "AND entity_id != 'Unassigned' GROUP BY 1 ORDER BY SUM(spend) DESC LIMIT 1"
    ).fetchone()[0]
    model = c.execute(
        "SELECT entity_id FROM daily_facts WHERE grain = 'model' GROUP BY 1 ORDER BY SUM(spend) DESC LIMIT 1"
    ).fetchone()[0]
    key = c.execute(
        "SELECT detail_id FROM daily_facts INDEXED BY daily_facts_model_key WHERE grain = 'model_key' "
        "AND entity_id = ? GROUP BY 1 ORDER BY SUM(spend) DESC LIMIT 1",
        (model,),
    ).fetchone()[0]
    budgets = c.execute("SELECT COUNT(*) FROM budget_statuses").fetchone()[0]
    out = ["/", "/?days=90", "/?days=400"]
    for kind, ident in (("team", team), ("user", user), ("model", model), ("key", key)):
        out += [f"/{kind}/{quote(ident, safe='')}", f"/{kind}/{quote(ident, safe='')}?days=400"]
    out += [
        "/anomalies",
        "/anomalies?state=firing",
        "/budgets",
        f"/budgets?page={max(1, -(-budgets // 250))}",
        "/budgets?state=ok",
        "/user/nobody",
    ]
    return out


def reference_ms() -> float:
    """How fast this machine runs plain Python now (shared and virtual machines vary a lot)."""
    began = time.perf_counter()
    total = 0
    for i in range(3_000_000):
        total += i
    return (time.perf_counter() - began) * 1000


def time_pages(path: Path, runs: int) -> None:
    print(f"reference: a 3,000,000-step Python loop takes {reference_ms():.0f} ms on this machine now")
    app = WebApp(rules=example_rules)
    db = open_store(path)
    counts = {
        "anomaly alerts": db.conn.execute(
            "SELECT COUNT(*) FROM alerts WHERE json_extract(labels, '$.kind') = 'anomaly'"
        ).fetchone()[0],
        "budgets": db.conn.execute("SELECT COUNT(*) FROM budget_statuses").fetchone()[0],
        "fact rows": db.conn.execute("SELECT COUNT(*) FROM daily_facts").fetchone()[0],
    }
    pages = routes(db)
    db.conn.close()
    print(", ".join(f"{n:,} {what}" for what, n in counts.items()))
    print(f"server time per page, {runs} runs each (open the store, handle, close):")
    print(f"{'page':70s} {'status':>6} {'KB':>7} {'median ms':>10} {'max ms':>8}")
    worst = 0.0
    for page in pages:
        route, _, query = page.partition("?")
        times = []
        for _ in range(runs):
            began = time.perf_counter()
            store = open_store(path)
            response = app.handle("GET", route, query, {}, store, NOW)
            store.conn.close()
            times.append((time.perf_counter() - began) * 1000)
        worst = max(worst, max(times))
        shown = page if len(page) <= 70 else page[:67] + "..."
        print(
            f"{shown:70s} {response.status:>6} {len(response.body) / 1024:>7.0f} "
            f"{statistics.median(times):>10.1f} {max(times):>8.1f}"
        )
    print(f"slowest request: {worst:.1f} ms; reference loop now {reference_ms():.0f} ms")


def index_cost(path: Path) -> None:
    """Write the store's facts again into fresh stores, with and without the web view's indexes."""
    src = sqlite3.connect(path)
    days = [str(d) for (d,) in src.execute("SELECT DISTINCT date FROM daily_facts ORDER BY date")]
    columns = ",".join("?" * 13)
    print("writing every fact again, 7 days per transaction (a backfill's chunks), then 3 days (a poll):")
    indexes = [f"CREATE INDEX {name} {shape}" for name, shape in INDEXES.items()]
    for label, extra in (("without the indexes", []), ("with the web view's", indexes)):
        with tempfile.TemporaryDirectory() as tmp:
            conn = sqlite3.connect(Path(tmp) / "w.db", isolation_level=None)
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "cache_size=-65536"):
                conn.execute(f"PRAGMA {pragma}")
            for script in [*MIGRATIONS, *extra]:
                conn.executescript(script)
            spent = 0.0
            for i in range(0, len(days), 7):
                chunk = days[i : i + 7]
                rows = src.execute(
                    "SELECT * FROM daily_facts WHERE date BETWEEN ? AND ? ORDER BY source, grain, date, entity_id, "
                    "detail_id",
                    (chunk[0], chunk[-1]),
                ).fetchall()
                began = time.perf_counter()
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("DELETE FROM daily_facts WHERE date BETWEEN ? AND ?", (chunk[0], chunk[-1]))
                conn.executemany(f"INSERT INTO daily_facts VALUES ({columns})", rows)
                conn.execute("COMMIT")
                spent += time.perf_counter() - began
            rows = src.execute("SELECT * FROM daily_facts WHERE date >= ?", (days[-3],)).fetchall()
            began = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM daily_facts WHERE date >= ?", (days[-3],))
            conn.executemany(f"INSERT INTO daily_facts VALUES ({columns})", rows)
            conn.execute("COMMIT")
            poll = time.perf_counter() - began
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            size = os.path.getsize(Path(tmp) / "w.db") / 1e6
            conn.close()
        print(f"  {label:24s} backfill writes {spent:6.1f}s, a poll's writes {poll * 1000:6.0f} ms, {size:5.0f} MB")
    src.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--db", type=Path, help="Keep the store here (and reuse it when it exists).")
    parser.add_argument("--index-cost", action="store_true", help="Also measure the indexes' cost to writes.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "s.db"
        build(path, args.users, args.days)
        time_pages(path, args.runs)
        if args.index_cost:
            index_cost(path)


if __name__ == "__main__":
    main()
