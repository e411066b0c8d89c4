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
from mlstress_tui.pipeline.postgres_features import check_tables, fetch_features

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


class _LivePostgres(LiveTarget):
    def __init__(self, dsn: str, timeout_s: float) -> None:
        self.dsn = dsn
        self.timeout_s = timeout_s

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.dsn, **session_options(self.timeout_s))

    def request(self, connection: psycopg.Connection, user_id: str, deadline_ns: int) -> None:
        try:
            fetch_features(connection, user_id)
        except psycopg.errors.QueryCanceled:
            raise RequestTimeout() from None
        except psycopg.OperationalError as error:
            # The pool discards a broken connection when it comes back and opens a new one.
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
        size = max(self._size + self._extra, 1)
        if self._pool is None:
            self._pool = ConnectionPool(self._dsn, kwargs=self._options, min_size=size, max_size=size,
                                        open=True, name="mlstress", reconnect_timeout=60.0)
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
