"""`--cache redis://… --cache-above N`: the heavy-user advice applied, users with N events or more served from Redis.

A composite target around the database target (SQLite, PostgreSQL, or any
other): each worker reads, when it opens the target, the ids of the users with
N events or more from the users database's `mlstress_user_stats` (a bound
parameter), and sends those users to the Redis hashes `precompute` wrote,
everyone else to the database. What each request did is its return value, the
path the harness counts it under: `cache`, `db`, `cache_miss` (not in Redis,
served by the database) or `cache_down_fallback` (Redis did not answer and
`--cache-fallback` sent it to the database); a request that fails raises with
that path as the exception's `request_path`. Without `--cache-fallback` a
Redis that does not answer is an error of kind `cache_down`, and the run goes
on. A pool slot is the database connection: a request takes one whatever its
path, so the pool wait the worker times is the same queue for every path, and a
miss or a fallback is served on the connection it already holds. The Redis
side is redis-py's own pool, one per worker, kept as large as the slot pool, so
no request ever waits for a Redis connection. Staleness is out of scope: the
hashes are what `precompute` wrote, however old.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import redis

from mlstress_tui.errors import UsageError
from mlstress_tui.load.targets import LiveTarget, RequestTimeout, Target, UserLocation
from mlstress_tui.pipeline.feature_store import decode, read_meta, user_ids_at_least, user_key
from mlstress_tui.redis_url import client_options, connect_checked, reason, redis_label

CACHE = "cache"
DB = "db"
CACHE_MISS = "cache_miss"
CACHE_DOWN_FALLBACK = "cache_down_fallback"
PATHS = (CACHE, DB, CACHE_MISS, CACHE_DOWN_FALLBACK)


class CacheDown(Exception):
    """Redis did not answer (refused, reset, gone) and --cache-fallback was not given."""

    error_kind = "cache_down"


def on_path(error: BaseException, path: str) -> BaseException:
    """`error` marked with the path its request took (`request_path`), so a failed request is counted on its path too."""
    try:
        error.request_path = path  # type: ignore[attr-defined]
    except (AttributeError, TypeError):
        pass  # an exception type without attributes: counted without a path
    return error


def read_heavy_ids(where: UserLocation, at_least: int) -> frozenset[str]:
    """The ids of the users with `at_least` events or more, from the users database's `mlstress_user_stats`."""
    if where.dsn is not None:
        import psycopg

        from mlstress_tui.dsn import connect_checked

        with connect_checked(where.dsn, autocommit=True) as connection:
            try:
                return frozenset(user_ids_at_least(connection, at_least))
            except psycopg.Error as error:
                raise UsageError(f"cannot read event counts from PostgreSQL ({type(error).__name__}): create the "
                                 "tables with 'mlstress-tui generate --dsn …'") from None
    import sqlite3

    from mlstress_tui.load.targets.sqlite import open_read_only

    assert where.db_path is not None, "a users location is a SQLite path or a DSN"
    sqlite = open_read_only(where.db_path)
    try:
        return frozenset(user_ids_at_least(sqlite, at_least))
    except sqlite3.Error as error:
        raise UsageError(f"cannot read event counts from {str(where.db_path)!r} ({error}): --cache routes by "
                         "them; point at a database made by 'mlstress-tui generate'") from None
    finally:
        sqlite.close()


@dataclass(frozen=True)
class CachedTarget(Target):
    """Users with `at_least` events or more from Redis (`url`), the rest from `inner`, as the heavy-user advice says."""

    kind: ClassVar[str] = "cached"
    inner: Target | None = None
    url: str = field(default="", repr=False)  # may hold a password: never in a repr
    at_least: int = 0
    fallback: bool = False
    users_db: Path | None = None  # where event counts come from when `inner` holds no users (HTTP, python)

    @property
    def wrapped(self) -> Target:
        """The database target behind the cache (a dataclass field cannot be required after defaulted ones)."""
        assert self.inner is not None, "CachedTarget needs the target it fronts"
        return self.inner

    @property
    def cache_label(self) -> str:
        return redis_label(self.url, "--cache")

    @property
    def label(self) -> str:
        return f"{self.wrapped.label} + {self.cache_label} (users with {self.at_least:,}+ events)"

    def describe(self) -> dict[str, Any]:
        # The database's kind stays the target's kind: the rules keyed on it (SQLite runs inside the workers,
        # an HTTP pool is the client's) still describe where the database path runs.
        return {**self.wrapped.describe(), "label": self.label,
                "cache": {"redis": self.cache_label, "at_least_events": self.at_least, "fallback": self.fallback}}

    def user_location(self) -> UserLocation:
        """Where the event counts that route each user come from."""
        where = self.wrapped.users()
        if where.db_path is None and where.dsn is None and self.users_db is not None:
            return UserLocation(db_path=self.users_db)
        return where

    def check(self) -> None:
        """Redis answers and holds what `precompute` wrote; the users database has the event counts."""
        where = self.user_location()
        if where.db_path is None and where.dsn is None:
            raise UsageError("--cache routes users by their event count: it needs a users database "
                             "(--db, --dsn, or --users-db for this target)")
        client = connect_checked(self.url, "--cache")
        try:
            if read_meta(client) is None:
                raise UsageError(f"{self.cache_label} holds no features from 'mlstress-tui precompute': run "
                                 f"'mlstress-tui precompute --redis URL --above {self.at_least}' first")
        finally:
            client.close()
        read_heavy_ids(where, self.at_least)

    def users(self) -> UserLocation:
        return self.wrapped.users()

    def open(self, timeout_s: float) -> LiveTarget:
        inner = self.wrapped.open(timeout_s)
        heavy = read_heavy_ids(self.user_location(), self.at_least)
        pool = redis.ConnectionPool.from_url(self.url, max_connections=1, **client_options(timeout_s))
        return LiveCached(inner, redis.Redis(connection_pool=pool), heavy, fallback=self.fallback, url=self.url,
                          pool=pool)


class LiveCached(LiveTarget):
    """The composite inside a worker: routes each request, returns the path it took."""

    def __init__(self, inner: LiveTarget, client: Any, heavy: frozenset[str], *, fallback: bool, url: str,
                 pool: Any = None) -> None:
        self.inner = inner
        self.client = client
        self.heavy = heavy
        self.fallback = fallback
        self.url = url
        self.label = redis_label(url, "--cache")
        self.redis_pool = pool

    def connect(self) -> Any:
        return self.inner.connect()

    def close(self, connection: Any) -> None:
        self.inner.close(connection)

    def make_pool(self) -> Any:
        return CachedSlots(self.inner.make_pool(), self.redis_pool)

    def request(self, connection: Any, user_id: str, deadline_ns: int) -> str:
        """The path the request took; an exception it raises carries that path as `request_path`."""
        if user_id not in self.heavy:
            return self._database(connection, user_id, deadline_ns, DB)
        try:
            fields = self.client.hgetall(user_key(user_id))
        except redis.TimeoutError:
            # redis-py's socket timeout is the request's --timeout: the deadline has passed.
            raise on_path(RequestTimeout(), CACHE) from None
        except redis.ConnectionError as error:
            if isinstance(error, redis.exceptions.MaxConnectionsError):
                raise on_path(error, CACHE)  # the harness's own sizing, never a Redis outage
            if not self.fallback:
                down = CacheDown(f"Redis at {self.label} did not answer: {reason(error, self.url)}"[:200])
                raise on_path(down, CACHE) from None
            return self._database(connection, user_id, deadline_ns, CACHE_DOWN_FALLBACK)
        except BaseException as error:
            raise on_path(error, CACHE)
        if not fields:
            return self._database(connection, user_id, deadline_ns, CACHE_MISS)
        try:
            decode(fields)
        except BaseException as error:
            raise on_path(error, CACHE)
        return CACHE

    def _database(self, connection: Any, user_id: str, deadline_ns: int, path: str) -> str:
        try:
            self.inner.request(connection, user_id, deadline_ns)
        except BaseException as error:
            raise on_path(error, path)
        return path


class CachedSlots:
    """The database target's pool, with the worker's redis-py pool kept as large as it (stuck calls included)."""

    def __init__(self, inner: Any, redis_pool: Any) -> None:
        self._inner = inner
        self._redis_pool = redis_pool
        self._size = 0
        self._extra = 0  # slots added for calls stuck past their deadline (each may hold a Redis connection)
        self._lock = threading.Lock()

    def _size_redis(self, size: int | None = None, extra: int = 0) -> None:
        with self._lock:
            self._size = self._size if size is None else size
            self._extra = max(self._extra + extra, 0)
            if self._redis_pool is not None:
                # redis-py reads it under its own lock when it opens a connection: the pool grows with ours.
                self._redis_pool.max_connections = max(self._size + self._extra, 1)

    def get(self, timeout: float) -> Any:
        return self._inner.get(timeout)

    def put(self, connection: Any) -> None:
        self._inner.put(connection)

    def resize(self, slots: int) -> None:
        self._size_redis(size=slots)
        self._inner.resize(slots)

    def replace(self, connection: Any) -> None:
        self._size_redis(extra=1)
        self._inner.replace(connection)

    def retire(self, connection: Any) -> None:
        self._inner.retire(connection)
        self._size_redis(extra=-1)

    def close_idle(self, in_use: set[int]) -> None:
        self._inner.close_idle(in_use)
        if self._redis_pool is not None:
            self._redis_pool.disconnect(inuse_connections=False)
