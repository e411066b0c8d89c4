"""The online feature store: one Redis hash per user holding the serving query's feature vector, as `precompute` writes it.

Each field is one feature and its value is JSON, so an int stays an int, a
float comes back bit for bit and a NULL is `null`: a hash read back is the dict
the serving query returns for that user (a test compares them, heavy users,
users without events and NULL profile fields included). The vectors come from
the serving query itself, once per user, on SQLite or PostgreSQL.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from typing import Any

from mlstress_tui.pipeline import feature_query, postgres_features
from mlstress_tui.pipeline.feature_query import DEFAULT_REFERENCE_DATE, MissingUser

KEY_PREFIX = "mlstress:features:"
# Outside KEY_PREFIX, so no user id can collide with it.
META_KEY = "mlstress:precompute"
# Users per pipelined round trip: large enough that the round trip is noise, small enough to show progress.
WRITE_BATCH = 500


class CorruptCacheEntry(Exception):
    """A cached hash that is not what `precompute` writes: counted as its own kind, never served."""

    error_kind = "bad_cache_entry"


def user_key(user_id: str) -> str:
    return KEY_PREFIX + user_id


def encode(features: dict) -> dict[str, str]:
    """A feature vector as hash fields, each value JSON."""
    return {name: json.dumps(value) for name, value in features.items()}


def decode(fields: dict[str, str]) -> dict:
    """Hash fields back into the feature vector the serving query returns."""
    try:
        return {name: json.loads(value) for name, value in fields.items()}
    except ValueError as error:
        raise CorruptCacheEntry(f"a cached field is not JSON ({error})") from None


def _is_sqlite(connection: object) -> bool:
    return isinstance(connection, sqlite3.Connection)


def user_ids_at_least(connection: Any, events: int) -> list[str]:
    """Ids of the users with `events` events or more, from `mlstress_user_stats` (SQLite or PostgreSQL)."""
    placeholder = "?" if _is_sqlite(connection) else "%s"
    query = f"SELECT user_id FROM mlstress_user_stats WHERE event_count >= {placeholder} ORDER BY user_id"
    return [row[0] for row in connection.execute(query, (events,))]


def features_for(connection: Any, user_ids: Iterable[str],
                 reference_date: str = DEFAULT_REFERENCE_DATE) -> Iterator[tuple[str, dict | None]]:
    """(user id, the serving query's feature vector) for each id; None for an id the database does not hold."""
    for user_id in user_ids:
        try:
            if _is_sqlite(connection):
                yield user_id, feature_query.fetch_features(connection, feature_query.FEATURE_QUERY, user_id,
                                                            reference_date)
            else:
                yield user_id, postgres_features.fetch_features(connection, user_id, reference_date)
        except MissingUser:
            yield user_id, None


def used_memory(client: Any) -> int:
    """Bytes Redis reports in use (`INFO memory`, used_memory)."""
    return int(client.info("memory")["used_memory"])


def keys_memory(client: Any, user_ids: list[str]) -> int:
    """Bytes the users' hashes take as Redis counts them (`MEMORY USAGE`, pipelined), key names included."""
    total = 0
    for start in range(0, len(user_ids), WRITE_BATCH):
        pipe = client.pipeline(transaction=False)
        for user_id in user_ids[start:start + WRITE_BATCH]:
            pipe.memory_usage(user_key(user_id), samples=0)
        total += sum(size or 0 for size in pipe.execute())
    return total


def precompute(connection: Any, client: Any, user_ids: list[str], *, source: str, selection: dict,
               progress: Callable[[int, int, float], None] | None = None,
               reference_date: str = DEFAULT_REFERENCE_DATE) -> dict:
    """Compute each user's features and write one hash per user, pipelined; the figures of the job.

    A user's old hash is deleted in the same round trip as the new one is
    written, so no field of an earlier vector survives; the ones replaced are
    counted, since the memory delta only covers keys that are new. `INFO
    memory`'s delta also moves with everything else the server holds (client
    buffers, freed memory not yet returned), so the per-user figure comes from
    `MEMORY USAGE` of the keys written, measured after the timed writes.
    """
    memory_before = used_memory(client)
    started = time.perf_counter()
    replaced = 0
    written: list[str] = []
    missing: list[str] = []
    pipe = client.pipeline(transaction=False)
    queued = 0

    def flush() -> None:
        nonlocal replaced, queued
        # Each user queued a DEL then an HSET: the DELs' answers say which keys existed.
        replaced += sum(pipe.execute()[0::2])
        queued = 0

    for user_id, features in features_for(connection, user_ids, reference_date):
        if features is None:
            missing.append(user_id)
            continue
        key = user_key(user_id)
        pipe.delete(key)
        pipe.hset(key, mapping=encode(features))
        written.append(user_id)
        queued += 1
        if queued >= WRITE_BATCH:
            flush()
            if progress is not None:
                progress(len(written) + len(missing), len(user_ids), time.perf_counter() - started)
    if queued:
        flush()
    seconds = time.perf_counter() - started
    memory_after = used_memory(client)
    in_keys = keys_memory(client, written)
    client.hset(META_KEY, mapping={"users": len(written), "selection": json.dumps(selection), "source": source,
                                   "reference_date": reference_date, "seconds": round(seconds, 3),
                                   "keys_bytes": in_keys,
                                   "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    return {
        "users": len(written), "requested": len(user_ids), "not_found": len(missing), "not_found_ids": missing[:20],
        "replaced": replaced, "seconds": round(seconds, 3),
        "users_per_s": round(len(written) / seconds, 1) if seconds > 0 else None,
        "memory": {"used_before_bytes": memory_before, "used_after_bytes": memory_after,
                   "delta_bytes": memory_after - memory_before, "keys_bytes": in_keys,
                   "bytes_per_user": round(in_keys / len(written), 1) if written else None},
        "reference_date": reference_date, "key_prefix": KEY_PREFIX,
    }


def read_meta(client: Any) -> dict | None:
    """What the last `precompute` into this Redis database wrote (None when none did)."""
    meta = client.hgetall(META_KEY)
    return meta or None
