"""A read-only web view of the store: spend per day with the baseline band, drill-downs per team,
user, model and key, anomaly alerts and budgets, as server-rendered HTML with inline SVG charts.

``app`` routes (pure-ish: one request in, one response out), ``data`` reads the page values,
``queries`` holds the query shapes that stay fast on a big store, ``pages`` renders the templates
and ``charts`` draws the SVG. ``observe.HealthServer`` serves it next to /metrics and /healthz.
"""

import ipaddress
import logging
import time
from pathlib import Path

from sentinel.store import open_store
from sentinel.web import queries
from sentinel.web.app import Response, WebApp, handle

__all__ = ["Response", "WebApp", "handle", "is_loopback", "prepare_store"]

log = logging.getLogger("sentinel.web")


def prepare_store(path: Path) -> float | None:
    """Make the store at ``path`` ready to be served: migrated, with the indexes the view reads by
    (``queries.prepare``). Returns the seconds spent building them, or None if it had them."""
    db = open_store(path)
    try:
        began = time.monotonic()
        built = queries.prepare(db)
    finally:
        db.conn.close()
    if not built:
        return None
    seconds = time.monotonic() - began
    level = logging.INFO if seconds >= 1 else logging.DEBUG  # a small store's (the demo's) is not news
    log.log(level, "built the web view's indexes (%s) in %.1f s", ", ".join(built), seconds)
    return seconds


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach ``host`` (else a view without basic auth is open to others)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
