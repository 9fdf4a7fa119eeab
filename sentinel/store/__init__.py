"""SQLite store: one typed function per query, over a ``sqlite_utils.Database``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlite_utils

from sentinel.store.db import SCHEMA_VERSION, open_reader, open_store

__all__ = ["SCHEMA_VERSION", "open_reader", "open_store", "read_snapshot", "transaction"]


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


@contextmanager
def read_snapshot(db: sqlite_utils.Database) -> Iterator[None]:
    """One consistent view of the store across several reads, while another process may commit
    (WAL: readers never block writers). Inside a transaction already, that one is the view."""
    if db.conn.in_transaction:
        yield
        return
    db.conn.execute("BEGIN")
    try:
        yield
    finally:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
