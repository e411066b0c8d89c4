"""Feature retrieval from the SQLite database, opened read-only, one connection per pool slot."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from urllib.parse import quote

from mlstress_tui.errors import UsageError
from mlstress_tui.load.targets import RequestTimeout
from mlstress_tui.pipeline.feature_query import (FEATURE_QUERY, DatabaseLocked, check_database, fetch_features,
                                                 is_locked)

# How often (in SQLite VM steps) a running query checks its deadline.
_PROGRESS_STEPS = 10_000
# How long the start-up check waits on a lock before saying the file is locked.
PROBE_BUSY_S = 1.0


def open_read_only(path: Path, busy_timeout_s: float = PROBE_BUSY_S) -> sqlite3.Connection:
    """A read-only connection (the database under test is never written) that waits on a lock at most `busy_timeout_s`."""
    if not path.is_file():
        raise UsageError(f"database {str(path)!r} does not exist: create it with 'mlstress-tui generate --out {path}'")
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    try:
        connection = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=busy_timeout_s)
        connection.execute("PRAGMA query_only = ON")
    except sqlite3.Error as error:
        raise UsageError(f"cannot open database {str(path)!r} read-only: {error}") from None
    return connection


class _Slot:
    """A pool slot: a connection and the deadline of the request using it."""

    __slots__ = ("connection", "deadline_ns")

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self.deadline_ns = 0
        connection.set_progress_handler(self._past_deadline, _PROGRESS_STEPS)

    def _past_deadline(self) -> bool:
        return time.perf_counter_ns() > self.deadline_ns


class SQLiteFeatureTarget:
    def __init__(self, db_path: Path | None, query_sql: str | None, *, timeout_s: float = 5.0) -> None:
        if db_path is None:
            raise UsageError("the SQLite target needs --db PATH")
        self.db_path = db_path
        self.sql = query_sql or FEATURE_QUERY
        # SQLite's busy wait on another process's lock ends with the request's deadline, not Python's 5 s.
        self.busy_timeout_s = timeout_s
        probe = open_read_only(db_path)
        try:
            check_database(probe, repr(str(db_path)), self.sql)
        finally:
            probe.close()

    def connect(self) -> _Slot:
        connection = open_read_only(self.db_path, self.busy_timeout_s)
        # Memory-mapped reads: the warm-cache case pays no read() syscall per page.
        connection.execute("PRAGMA mmap_size = 4294967296")
        return _Slot(connection)

    def request(self, slot: _Slot, user_id: str, deadline_ns: int) -> None:
        slot.deadline_ns = deadline_ns
        try:
            fetch_features(slot.connection, self.sql, user_id)
        except sqlite3.OperationalError as error:
            if str(error) == "interrupted" or (is_locked(error) and time.perf_counter_ns() > deadline_ns):
                raise RequestTimeout() from None
            if is_locked(error):
                raise DatabaseLocked(str(error)) from None
            raise

    def close(self, slot: _Slot) -> None:
        slot.connection.close()
