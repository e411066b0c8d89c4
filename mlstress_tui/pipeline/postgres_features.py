"""The reference feature query in PostgreSQL's dialect: the same feature vector as the SQLite one, row for row."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import psycopg

from mlstress_tui.errors import UsageError
from mlstress_tui.pipeline.feature_query import DEFAULT_REFERENCE_DATE, REQUIRED_TABLES, MissingUser

# Timestamps are stored as text ('YYYY-MM-DD HH:MM:SS', collation "C") exactly as in
# the SQLite file, so the join's cut-off and the 30-day window compare the same way.
FEATURE_QUERY = """
SELECT
    u.user_id,
    u.segment,
    u.device_type,
    u.country,
    (%(reference_date)s::date - u.signup_date::date) AS account_age_days,
    COUNT(e.event_id) AS total_events,
    COALESCE(SUM((e.event_type = 'purchase')::int), 0) AS purchases,
    COALESCE(SUM(e.amount), 0.0) AS total_spend,
    AVG(e.session_duration_seconds)::float8 AS mean_session_duration_s,
    COALESCE(SUM((e.event_timestamp >= %(window_start_ts)s)::int), 0) AS events_last_30d,
    EXTRACT(EPOCH FROM (%(reference_ts)s::timestamp - MAX(e.event_timestamp)::timestamp))::float8 / 86400.0
        AS days_since_last_event
FROM users AS u
LEFT JOIN events AS e
    ON e.user_id = u.user_id AND e.event_timestamp < %(reference_ts)s
WHERE u.user_id = %(user_id)s
GROUP BY u.user_id
"""


def query_parameters(user_id: str, reference_date: str = DEFAULT_REFERENCE_DATE) -> dict[str, str]:
    """Bound parameters of the PostgreSQL feature query (the 30-day window computed here, as SQLite's datetime() does)."""
    window = date.fromisoformat(reference_date) - timedelta(days=30)
    return {"user_id": user_id, "reference_date": reference_date, "reference_ts": f"{reference_date} 00:00:00",
            "window_start_ts": f"{window.isoformat()} 00:00:00"}


def fetch_features(connection: psycopg.Connection, user_id: str, reference_date: str = DEFAULT_REFERENCE_DATE) -> dict:
    """The feature vector of one user as a dict; MissingUser when there is no such user. A prepared statement."""
    cursor = connection.cursor()
    row = feature_row(cursor, user_id, query_parameters(user_id, reference_date))
    return dict(zip((column.name for column in cursor.description or ()), row))


def feature_row(cursor: psycopg.Cursor[Any], user_id: str, parameters: dict[str, str]) -> tuple[Any, ...]:
    """One user's feature row as a tuple, through a cursor the caller keeps (the load's path: no dict, no new cursor);
    `parameters` are `query_parameters` of any user, the date fields reused. MissingUser when there is no such user."""
    row: tuple[Any, ...] | None = cursor.execute(FEATURE_QUERY, {**parameters, "user_id": user_id},
                                                 prepare=True).fetchone()
    if row is None:
        raise MissingUser(user_id)
    return row


def check_tables(connection: psycopg.Connection, label: str) -> None:
    """Fail with one line unless the database holds the reference schema and the tool's tables."""
    present = {row[0] for row in connection.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        " AND table_name = ANY(%s)", (list(REQUIRED_TABLES),))}
    missing = [name for name in REQUIRED_TABLES if name not in present]
    if missing:
        raise UsageError(f"{label} lacks table(s) {', '.join(missing)}: create them with "
                         f"'mlstress-tui generate --dsn …'")


def read_meta(connection: psycopg.Connection) -> dict:
    """The generation parameters stored in `mlstress_meta`, decoded; {} when the table is missing."""
    import json

    try:
        rows = connection.execute("SELECT key, value FROM mlstress_meta").fetchall()
    except psycopg.errors.UndefinedTable:
        return {}
    return {key: json.loads(value) for key, value in rows}
