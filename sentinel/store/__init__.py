"""SQLite store: one typed function per query, over a ``sqlite_utils.Database``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlite_utils

from sentinel.store.db import SCHEMA_VERSION, open_store

__all__ = ["SCHEMA_VERSION", "open_store", "transaction"]


@contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[None]:
    """One write transaction: all of it lands, or none of it (also on Ctrl-C)."""
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.conn.execute("ROLLBACK")
        raise
    db.conn.execute("COMMIT")
