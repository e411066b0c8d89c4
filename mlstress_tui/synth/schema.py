"""The reference schema (design.md) and the tool's metadata tables beside it."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping

TABLES = (
    """CREATE TABLE users(
        user_id TEXT PRIMARY KEY,
        signup_date TEXT, segment TEXT, country TEXT, device_type TEXT,
        name TEXT, email TEXT, city TEXT)""",
    """CREATE TABLE events(
        event_id TEXT, user_id TEXT, event_type TEXT, event_timestamp TEXT,
        item_id TEXT, session_duration_seconds INTEGER, amount REAL)""",
    "CREATE TABLE mlstress_meta(key TEXT PRIMARY KEY, value TEXT)",
    "CREATE TABLE mlstress_user_stats(user_id TEXT PRIMARY KEY, event_count INTEGER NOT NULL)",
)
# Events arrive in timestamp order, so the timestamp index is created before
# the load and each key lands at its b-tree's right edge; on the 2-core box that
# beat sorting the keys afterwards once page_size is 16384 (see bulk_insert.py).
INDEXES_BEFORE_LOAD = ("CREATE INDEX events_event_timestamp ON events(event_timestamp)",)
# User ids arrive in random order: one sort after the load costs less than
# updating the index b-tree row by row.
INDEXES_AFTER_LOAD = ("CREATE INDEX events_user_id ON events(user_id)",)
INDEXES = INDEXES_BEFORE_LOAD + INDEXES_AFTER_LOAD


def create_tables(conn: sqlite3.Connection) -> None:
    for statement in TABLES:
        conn.execute(statement)


def write_meta(conn: sqlite3.Connection, meta: Mapping[str, object]) -> None:
    """Store each entry JSON-encoded under its key."""
    conn.executemany(
        "INSERT OR REPLACE INTO mlstress_meta(key, value) VALUES (?, ?)",
        [(key, json.dumps(value, sort_keys=True)) for key, value in meta.items()],
    )


def read_meta(conn: sqlite3.Connection) -> dict:
    """The generation parameters and facts stored in `mlstress_meta`, decoded; {} for a foreign database."""
    has_meta = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'mlstress_meta'"
    ).fetchone()
    if not has_meta:
        return {}
    return {key: json.loads(value) for key, value in conn.execute("SELECT key, value FROM mlstress_meta")}
