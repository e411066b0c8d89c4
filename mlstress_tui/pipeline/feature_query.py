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
# What a --query may not ask the authorizer for: anything but reading (SELECT, READ, FUNCTION, RECURSIVE).
_ACTION_NAMES = {getattr(sqlite3, f"SQLITE_{name}"): name.replace("_", " ") for name in (
    "CREATE_INDEX", "CREATE_TABLE", "CREATE_TEMP_INDEX", "CREATE_TEMP_TABLE", "CREATE_TEMP_TRIGGER",
    "CREATE_TEMP_VIEW", "CREATE_TRIGGER", "CREATE_VIEW", "DELETE", "DROP_INDEX", "DROP_TABLE", "DROP_TEMP_INDEX",
    "DROP_TEMP_TABLE", "DROP_TEMP_TRIGGER", "DROP_TEMP_VIEW", "DROP_TRIGGER", "DROP_VIEW", "INSERT", "PRAGMA",
    "TRANSACTION", "UPDATE", "ATTACH", "DETACH", "ALTER_TABLE", "REINDEX", "ANALYZE", "CREATE_VTABLE",
    "DROP_VTABLE", "SAVEPOINT")}
_WRITE_ACTIONS = frozenset(_ACTION_NAMES)
_UNSAFE_FUNCTIONS = frozenset({"load_extension"})
_SCHEMA_TABLES = frozenset({"sqlite_master", "sqlite_schema", "sqlite_temp_master", "sqlite_temp_schema"})
# Opcodes of a program that changes a database file or the connection (sqlite3_stmt_readonly's own list, and more).
_WRITE_OPCODES = frozenset({"OpenWrite", "Vacuum", "IncrVacuum", "JournalMode", "Checkpoint", "CreateBtree",
                            "Destroy", "Clear", "ParseSchema", "SqlExec", "VUpdate", "VCreate", "VDestroy",
                            "AutoCommit", "Savepoint", "DropTable", "DropIndex", "DropTrigger"})
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
    problem = write_problem(connection, sql)
    if problem:
        raise UsageError(f"--query is not a single read-only SELECT ({problem}): the database under test is only "
                         "ever read; write one SELECT with a :user_id parameter")
    try:
        connection.execute(f"EXPLAIN {sql}", query_parameters("USR00000001")).fetchall()
    except sqlite3.Error as error:
        raise UsageError(f"the feature query does not run on {label}: {error}") from None


def write_problem(connection: sqlite3.Connection, sql: str) -> str | None:
    """Why `sql` is not one read-only SELECT (compiled, never run, on `connection`), or None when it is.

    Python's sqlite3 has no sqlite3_stmt_readonly, so the same facts are read
    from the two places SQLite exposes them: the authorizer (what the statement
    asks to do, as it is compiled) and its EXPLAIN program (VACUUM INTO asks
    the authorizer nothing, but compiles to a Vacuum opcode). The connection's
    schema must be loaded already, so its own reads are not mistaken for the query's.
    """
    actions: list[tuple[int, str | None, str | None]] = []

    def record(action: int, first: str | None, second: str | None, database: str | None, trigger: str | None) -> int:
        if trigger is None:
            actions.append((action, first, second))
        return sqlite3.SQLITE_OK

    connection.set_authorizer(record)
    try:
        program = connection.execute(f"EXPLAIN {sql}", query_parameters("USR00000001")).fetchall()
    except sqlite3.ProgrammingError as error:
        if "one statement" in str(error):
            return "it holds more than one statement"
        return None  # check_database says why it does not compile
    except sqlite3.Error:
        return None
    finally:
        connection.set_authorizer(None)
    writes = [row[1] for row in program if row[1] in _WRITE_OPCODES or row[1] == "Transaction" and row[3] != 0]
    if not actions or actions[0][0] != sqlite3.SQLITE_SELECT:
        # CREATE ... AS SELECT first asks to INSERT into the schema table: name the statement, not that step.
        schema = [action for action, *_ in actions if _ACTION_NAMES.get(action, "").startswith(("CREATE", "DROP"))]
        what = (_ACTION_NAMES[schema[0]] if schema else _ACTION_NAMES.get(actions[0][0], "another statement")
                if actions else "VACUUM" if "Vacuum" in writes else "another statement")
        return f"it is {what}, not a SELECT"
    for action, first, second in actions:
        # A table-valued pragma function (pragma_table_info) reports UPDATE on the schema table while it only reads.
        if action in _WRITE_ACTIONS and not (action == sqlite3.SQLITE_UPDATE and first in _SCHEMA_TABLES):
            return f"it asks for {_ACTION_NAMES[action]}{f' on {first}' if first else ''}"
        if action == sqlite3.SQLITE_FUNCTION and second in _UNSAFE_FUNCTIONS:
            return f"it calls {second}()"
    if writes:
        return f"its program writes ({writes[0]})"
    return None


def fetch_features(connection: sqlite3.Connection, sql: str, user_id: str, reference_date: str = DEFAULT_REFERENCE_DATE) -> dict:
    """The feature vector of one user as a dict; MissingUser when the query returns no row."""
    cursor = connection.execute(sql, query_parameters(user_id, reference_date))
    row = cursor.fetchone()
    if row is None:
        raise MissingUser(user_id)
    return dict(zip((column[0] for column in cursor.description), row))
