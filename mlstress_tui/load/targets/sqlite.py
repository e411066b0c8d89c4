"""Feature retrieval from the SQLite database, opened read-only, one connection per pool slot."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

from mlstress_tui.errors import UsageError
from mlstress_tui.load.targets import LiveTarget, RequestTimeout, Target, UserLocation
from mlstress_tui.pipeline.feature_query import (FEATURE_QUERY, DatabaseLocked, check_database, fetch_features,
                                                 is_locked)

# How often (in SQLite VM steps) a running query checks its deadline.
_PROGRESS_STEPS = 10_000
# How long the start-up check waits on a lock before saying the file is locked.
PROBE_BUSY_S = 1.0


def open_read_only(path: Path, busy_timeout_s: float = PROBE_BUSY_S) -> sqlite3.Connection:
    """A read-only connection (the database under test is never written) that waits on a lock at most `busy_timeout_s`."""
    if path.is_dir():
        raise UsageError(f"database {str(path)!r} is a directory: point --db at a database file inside it, e.g. "
                         f"{str(path / 'events.sqlite')!r}")
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


@dataclass(frozen=True)
class SQLiteTarget(Target):
    """`--db PATH`: the feature query on a SQLite file, opened read-only, one connection per pool slot."""

    kind: ClassVar[str] = "sqlite"
    db_path: Path = Path()
    query_sql: str | None = None
    query_file: str | None = None

    @property
    def label(self) -> str:
        return self.db_path.name

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "db": str(self.db_path), "query": self.query_file or "builtin:feature_query"}

    def check(self) -> None:
        """The file, its tables and the query, before any process starts."""
        probe = open_read_only(self.db_path)
        try:
            check_database(probe, repr(str(self.db_path)), self.query_sql or FEATURE_QUERY)
        finally:
            probe.close()

    def users(self) -> UserLocation:
        return UserLocation(db_path=self.db_path)

    def open(self, timeout_s: float) -> LiveTarget:
        self.check()
        return _LiveSQLite(self.db_path, self.query_sql or FEATURE_QUERY, timeout_s)


class _LiveSQLite(LiveTarget):
    def __init__(self, db_path: Path, sql: str, timeout_s: float) -> None:
        self.db_path = db_path
        self.sql = sql
        # SQLite's busy wait on another process's lock ends with the request's deadline, not Python's 5 s.
        self.busy_timeout_s = timeout_s

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
