"""The reference feature query: one row of features per user from `users LEFT JOIN events`."""

from __future__ import annotations

import re
import sqlite3

from mlstress_tui.errors import UsageError

DEFAULT_REFERENCE_DATE = "2026-03-01"

# Events after the reference date are not counted: the join condition keeps only
# events up to its first instant, so a user with none left still gets one row.
FEATURE_QUERY = """
SELECT
    u.user_id,
    u.segment,
    u.device_type,
    u.country,
    CAST(julianday(:reference_ts) - julianday(u.signup_date) AS INTEGER) AS account_age_days,
    COUNT(e.event_id) AS total_events,
    COALESCE(SUM(e.event_type = 'purchase'), 0) AS purchases,
    COALESCE(SUM(e.amount), 0.0) AS total_spend,
    AVG(e.session_duration_seconds) AS mean_session_duration_s,
    COALESCE(SUM(e.event_timestamp >= datetime(:reference_ts, '-30 days')), 0) AS events_last_30d,
    julianday(:reference_ts) - julianday(MAX(e.event_timestamp)) AS days_since_last_event
FROM users AS u
LEFT JOIN events AS e
    ON e.user_id = u.user_id AND e.event_timestamp < :reference_ts
WHERE u.user_id = :user_id
GROUP BY u.user_id
"""

REQUIRED_TABLES = ("users", "events", "mlstress_user_stats")
_NAMED_PARAMETER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


class MissingUser(Exception):
    """The requested user does not exist: an error of its own kind, not an empty success."""

    error_kind = "missing_user"


class DatabaseLocked(Exception):
    """Another process holds a lock on the database past the request's deadline: kind `locked`."""

    error_kind = "locked"


def is_locked(error: Exception) -> bool:
    """SQLite's busy wait ended with the file still locked by another process."""
    return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)


def locked_database(label: str) -> UsageError:
    """The one line for a database another process holds locked (the file itself is fine)."""
    return UsageError(f"{label} is locked by another process (a writer holds it): wait until that process "
                      "finishes, or copy the file and point --db at the copy")


def query_parameters(user_id: str, reference_date: str = DEFAULT_REFERENCE_DATE) -> dict[str, str]:
    """Bound parameters for the feature query (and for user queries, which may use any of them)."""
    return {
        "user_id": user_id,
        "reference_date": reference_date,
        "reference_ts": f"{reference_date} 00:00:00",
    }


def load_query_file(path: str) -> str:
    """A user's own feature query; it must take the user as the named parameter `:user_id`."""
    try:
        with open(path, encoding="utf-8") as handle:
            sql = handle.read()
    except OSError as error:
        raise UsageError(f"cannot read query file {path!r}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise UsageError(f"query file {path!r} is not UTF-8 text (byte {error.start}): save it as UTF-8") from None
    if not sql.strip():
        raise UsageError(f"query file {path!r} is empty: write one SELECT with a :user_id parameter")
    names = set(_NAMED_PARAMETER.findall(sql))
    if "user_id" not in names:
        raise UsageError(f"query file {path!r} has no :user_id parameter: the user must be bound, not formatted in")
    unknown = names - set(query_parameters("x"))
    if unknown:
        raise UsageError(
            f"query file {path!r} uses unknown parameters {sorted(unknown)}: only :user_id, :reference_date and :reference_ts are bound"
        )
    return sql


def check_database(connection: sqlite3.Connection, label: str, sql: str) -> None:
    """Fail with a one-line UsageError unless the database has the schema and the query compiles."""
    try:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as error:
        if is_locked(error):
            raise locked_database(label) from None
        raise UsageError(f"{label} is not a readable SQLite database ({error}): generate one with 'mlstress-tui generate'") from None
    missing = [name for name in REQUIRED_TABLES if name not in tables]
    if missing:
        raise UsageError(
            f"{label} lacks table(s) {', '.join(missing)}: point --db at a database made by 'mlstress-tui generate'"
        )
    try:
        connection.execute(f"EXPLAIN {sql}", query_parameters("USR00000001")).fetchall()
    except sqlite3.Error as error:
        raise UsageError(f"the feature query does not run on {label}: {error}") from None


def fetch_features(connection: sqlite3.Connection, sql: str, user_id: str, reference_date: str = DEFAULT_REFERENCE_DATE) -> dict:
    """The feature vector of one user as a dict; MissingUser when the query returns no row."""
    cursor = connection.execute(sql, query_parameters(user_id, reference_date))
    row = cursor.fetchone()
    if row is None:
        raise MissingUser(user_id)
    return dict(zip((column[0] for column in cursor.description), row))
