"""The nightly batch job's three ways to compute every user's feature vector, each yielding DataFrame chunks.

- `per_user`: the serving path's query once per user (what a job built from the online code does);
- `set_based`: one pass, the same features for every user from one GROUP BY over the whole events table;
- `chunked`: the set-based query streamed through pandas `read_sql` in chunks of `chunk_size` rows.

All three give the same columns and values for the same users (a test compares them), so their time and
memory can be set side by side.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pandas as pd

from mlstress_tui.pipeline.feature_query import FEATURE_QUERY, fetch_features, query_parameters

STRATEGIES = ("per-user", "set-based", "chunked")

# The serving query with the user filter replaced by "the first :limit users by id" (all of them by default).
SET_BASED_QUERY = FEATURE_QUERY.replace(
    "WHERE u.user_id = :user_id",
    "WHERE u.user_id IN (SELECT user_id FROM users ORDER BY user_id LIMIT :limit)",
) + "ORDER BY u.user_id\n"


def user_ids(connection: sqlite3.Connection, limit: int) -> list[str]:
    return [row[0] for row in connection.execute("SELECT user_id FROM users ORDER BY user_id LIMIT ?", (limit,))]


def per_user(connection: sqlite3.Connection, limit: int, chunk_size: int) -> Iterator[pd.DataFrame]:
    rows: list[dict] = []
    for user_id in user_ids(connection, limit):
        rows.append(fetch_features(connection, FEATURE_QUERY, user_id))
        if len(rows) >= chunk_size:
            yield pd.DataFrame(rows)
            rows = []
    if rows:
        yield pd.DataFrame(rows)


def _set_parameters(limit: int) -> dict:
    parameters = query_parameters("")
    del parameters["user_id"]
    return {**parameters, "limit": limit}


def set_based(connection: sqlite3.Connection, limit: int, chunk_size: int) -> Iterator[pd.DataFrame]:
    """Every row fetched at once, then framed: the simple job whose memory grows with the users."""
    cursor = connection.execute(SET_BASED_QUERY, _set_parameters(limit))
    columns = [column[0] for column in cursor.description]
    yield pd.DataFrame(cursor.fetchall(), columns=columns)


def chunked(connection: sqlite3.Connection, limit: int, chunk_size: int) -> Iterator[pd.DataFrame]:
    """The set-based query streamed: at most `chunk_size` rows in memory at a time."""
    yield from pd.read_sql(SET_BASED_QUERY, connection, params=_set_parameters(limit), chunksize=chunk_size)


RUNNERS = {"per-user": per_user, "set-based": set_based, "chunked": chunked}
