"""The service's database side: a bounded pool of read-only connections and the feature query, SQLite or PostgreSQL."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlstress_tui.pipeline.feature_query import FEATURE_QUERY, fetch_features


class PoolExhausted(Exception):
    """No database connection came free in time: the service answers 503."""


class SQLiteStore:
    """`--db`: a fixed pool of read-only SQLite connections; a request waits for one (the pool wait)."""

    def __init__(self, path: Path, pool_size: int, wait_s: float) -> None:
        from mlstress_tui.load.targets.sqlite import open_read_only

        self._free: queue.Queue = queue.Queue()
        for _ in range(pool_size):
            connection = open_read_only(path, wait_s)
            self._free.put(connection)
        self._wait_s = wait_s

    @contextmanager
    def connection(self) -> Iterator[Any]:
        try:
            connection = self._free.get(timeout=self._wait_s)
        except queue.Empty:
            raise PoolExhausted from None
        try:
            yield connection
        finally:
            self._free.put(connection)

    def features(self, user_id: str, hold_s: float = 0.0) -> dict:
        """`hold_s`: extra time the request keeps its connection (a slower query), so a small pool saturates."""
        with self.connection() as connection:
            if hold_s:
                time.sleep(hold_s)
            return fetch_features(connection, FEATURE_QUERY, user_id)

    def close(self) -> None:
        while not self._free.empty():
            self._free.get_nowait().close()


class PostgresStore:
    """`--dsn`: psycopg_pool with `pool_size` connections, read-only statements."""

    def __init__(self, dsn: str, pool_size: int, wait_s: float) -> None:
        from psycopg_pool import ConnectionPool

        from mlstress_tui.load.targets.postgres import session_options

        self._pool = ConnectionPool(dsn, kwargs=session_options(wait_s), min_size=pool_size, max_size=pool_size,
                                    open=True, name="mlstress-serve")
        self._pool.wait(timeout=10)
        self._wait_s = wait_s

    def features(self, user_id: str, hold_s: float = 0.0) -> dict:
        from psycopg_pool import PoolTimeout

        from mlstress_tui.pipeline.postgres_features import fetch_features as fetch

        try:
            with self._pool.connection(timeout=self._wait_s) as connection:
                if hold_s:
                    time.sleep(hold_s)
                return fetch(connection, user_id)
        except PoolTimeout:
            raise PoolExhausted from None

    def close(self) -> None:
        self._pool.close()
