"""`--dsn postgresql://…`: the feature query on PostgreSQL through psycopg_pool, read-only, server-side timeouts.

One `ConnectionPool` per worker process (`--pool-size` split across them): the
worker times `getconn` as pool wait and the query as service, so a saturated
pool shows as pool wait climbing while the query stays flat. Every request runs
in a read-only transaction with `statement_timeout` = `--timeout`, so a slow
query is cancelled on the server and counted as `timeout`. A DSN's password
never reaches any output: labels, descriptions and error messages are scrubbed.
"""

from __future__ import annotations

import queue
from dataclasses import dataclass
from typing import Any, ClassVar

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from mlstress_tui.dsn import CONNECT_TIMEOUT_S, SECRET_KEYS, connect_checked, dsn_label, dsn_parts, scrub
from mlstress_tui.load.targets import ConnectionLost, LiveTarget, RequestTimeout, Target, UserLocation
from mlstress_tui.pipeline.postgres_features import check_tables, feature_row, query_parameters

# How the server lists this tool's connections (pg_stat_activity), e.g. to terminate them in a fault drill.
APPLICATION_NAME = "mlstress-tui"


@dataclass(frozen=True)
class PostgresTarget(Target):
    kind: ClassVar[str] = "postgres"
    dsn: str = ""

    @property
    def label(self) -> str:
        return dsn_label(self.dsn)

    def describe(self) -> dict[str, Any]:
        parts = {key: value for key, value in dsn_parts(self.dsn).items() if key not in SECRET_KEYS}
        return {**super().describe(), "dsn": parts, "query": "builtin:feature_query (postgres)"}

    def check(self) -> None:
        with connect_checked(self.dsn, autocommit=True) as connection:
            check_tables(connection, self.label)

    def users(self) -> UserLocation:
        return UserLocation(dsn=self.dsn)

    def open(self, timeout_s: float) -> LiveTarget:
        return _LivePostgres(self.dsn, timeout_s)


def session_options(timeout_s: float) -> dict[str, Any]:
    """Connection options: autocommit statements, each a read-only transaction cancelled by the server at the deadline."""
    statement_ms = max(int(timeout_s * 1000), 1)
    return {"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S, "application_name": APPLICATION_NAME,
            "options": f"-c default_transaction_read_only=on -c statement_timeout={statement_ms}"}


class FeatureConnection(psycopg.Connection[Any]):
    """A connection that keeps one cursor for the feature query: a cursor per request costs more than the query's
    own client work."""

    _feature_cursor: psycopg.Cursor[Any] | None = None

    @property
    def feature_cursor(self) -> psycopg.Cursor[Any]:
        cursor = self._feature_cursor
        if cursor is None:
            cursor = self._feature_cursor = self.cursor()
        return cursor


class _LivePostgres(LiveTarget):
    owns_connections = True

    def __init__(self, dsn: str, timeout_s: float) -> None:
        self.dsn = dsn
        self.timeout_s = timeout_s
        self._parameters = query_parameters("")  # the dates are the run's; only the user id changes

    def connect(self) -> FeatureConnection:
        """A connection of the target's own (a virtual user's); one that cannot be made is `connection_lost`."""
        try:
            return FeatureConnection.connect(self.dsn, **session_options(self.timeout_s))
        except psycopg.OperationalError as error:
            raise ConnectionLost(scrub(" ".join(str(error).split()), self.dsn)[:200]) from None

    def request(self, connection: FeatureConnection, user_id: str, deadline_ns: int) -> None:
        try:
            feature_row(connection.feature_cursor, user_id, self._parameters)
        except psycopg.errors.QueryCanceled:
            raise RequestTimeout() from None
        except psycopg.OperationalError as error:
            # A pooled connection broken here is discarded by the pool; an owned one by the send path.
            raise ConnectionLost(scrub(" ".join(str(error).split()), self.dsn)[:200]) from None

    def close(self, connection: psycopg.Connection) -> None:
        connection.close()

    def make_pool(self) -> PsycopgSlots:
        return PsycopgSlots(self.dsn, session_options(self.timeout_s))


class PsycopgSlots:
    """psycopg_pool's ConnectionPool behind the worker's pool interface (get, put, resize, replace, retire)."""

    def __init__(self, dsn: str, options: dict[str, Any]) -> None:
        self._dsn = dsn
        self._options = options
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._size = 0
        self._extra = 0  # connections left with calls stuck past their deadline

    def _apply_size(self) -> None:
        size = self._size + self._extra
        if self._pool is None and size == 0:
            return  # the users own their connections: no pool until a level needs one
        size = max(size, 1)
        if self._pool is None:
            self._pool = ConnectionPool(self._dsn, kwargs=self._options, min_size=size, max_size=size,
                                        open=True, name="mlstress", reconnect_timeout=60.0,
                                        connection_class=FeatureConnection)
            self._pool.wait(timeout=CONNECT_TIMEOUT_S * 2)
        else:
            self._pool.resize(min_size=size, max_size=size)

    @property
    def pool(self) -> ConnectionPool[psycopg.Connection[Any]]:
        assert self._pool is not None, "resize() opens the pool before any get()"
        return self._pool

    def get(self, timeout: float) -> psycopg.Connection[Any]:
        """A connection, waiting at most `timeout` seconds; queue.Empty (counted as `pool_timeout`) when none came."""
        try:
            return self.pool.getconn(timeout=timeout)
        except PoolTimeout:
            raise queue.Empty from None

    def put(self, connection: psycopg.Connection[Any]) -> None:
        self.pool.putconn(connection)

    def resize(self, slots: int) -> None:
        self._size = slots
        self._apply_size()

    def replace(self, connection: psycopg.Connection[Any]) -> None:
        self._extra += 1
        self._apply_size()

    def retire(self, connection: psycopg.Connection[Any]) -> None:
        self.pool.putconn(connection)
        self._extra = max(self._extra - 1, 0)
        self._apply_size()

    def close_idle(self, in_use: set[int]) -> None:
        if self._pool is not None:
            self._pool.close(timeout=1.0)
