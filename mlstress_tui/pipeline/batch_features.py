"""The nightly batch job's three ways to compute every user's feature vector, each yielding DataFrame chunks.

- `per_user`: the serving path's query once per user (what a job built from the online code does);
- `set_based`: one pass, the same features for every user from one GROUP BY over the whole events table;
- `chunked`: the set-based query streamed through pandas `read_sql` in chunks of `chunk_size` rows.

All three give the same columns and values for the same users (a test compares them), so their time and
memory can be set side by side, on SQLite (a `sqlite3` connection) or PostgreSQL (a psycopg one).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pandas as pd

from mlstress_tui.pipeline import postgres_features
from mlstress_tui.pipeline.feature_query import FEATURE_QUERY, fetch_features, query_parameters

STRATEGIES = ("per-user", "set-based", "chunked")
# The feature vector's columns and their types, declared once: every strategy and chunk size writes this
# schema, whatever the first rows hold (a chunk of NULLs is not a column of type null).
FEATURE_COLUMNS = (
    ("user_id", "string"),
    ("segment", "string"),
    ("device_type", "string"),
    ("country", "string"),
    ("account_age_days", "int64"),
    ("total_events", "int64"),
    ("purchases", "int64"),
    ("total_spend", "float64"),
    ("mean_session_duration_s", "float64"),
    ("events_last_30d", "int64"),
    ("days_since_last_event", "float64"),
)


class FeatureValueError(ValueError):
    """A value the feature vector's declared type cannot hold (text in a count, a fraction in a whole number)."""


def feature_schema():
    """The feature vector as a pyarrow schema."""
    import pyarrow as pa

    return pa.schema([(name, pa.string() if kind == "string" else pa.from_numpy_dtype(kind))
                      for name, kind in FEATURE_COLUMNS])


def feature_table(frame: pd.DataFrame, schema=None):
    """A chunk of feature rows as a pyarrow table of the declared schema; FeatureValueError names a bad column."""
    import pyarrow as pa

    schema = schema or feature_schema()
    columns = []
    for field in schema:
        try:
            columns.append(pa.array(frame[field.name], type=field.type, from_pandas=True))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as error:
            raise FeatureValueError(f"feature {field.name!r} is not {field.type}: {str(error).splitlines()[0]}") from None
    return pa.Table.from_arrays(columns, schema=schema)

# The serving query with the user filter replaced by "the first :limit users by id" (all of them by default).
SET_BASED_QUERY = FEATURE_QUERY.replace(
    "WHERE u.user_id = :user_id",
    "WHERE u.user_id IN (SELECT user_id FROM users ORDER BY user_id LIMIT :limit)",
) + "ORDER BY u.user_id\n"
SET_BASED_QUERY_PG = postgres_features.FEATURE_QUERY.replace(
    "WHERE u.user_id = %(user_id)s",
    "WHERE u.user_id IN (SELECT user_id FROM users ORDER BY user_id LIMIT %(limit)s)",
) + "ORDER BY u.user_id\n"


def _is_sqlite(connection: object) -> bool:
    return isinstance(connection, sqlite3.Connection)


def user_ids(connection, limit: int) -> list[str]:
    placeholder = "?" if _is_sqlite(connection) else "%s"
    query = f"SELECT user_id FROM users ORDER BY user_id LIMIT {placeholder}"
    return [row[0] for row in connection.execute(query, (limit,))]


def _fetch_one(connection, user_id: str) -> dict:
    if _is_sqlite(connection):
        return fetch_features(connection, FEATURE_QUERY, user_id)
    return postgres_features.fetch_features(connection, user_id)


def per_user(connection, limit: int, chunk_size: int) -> Iterator[pd.DataFrame]:
    rows: list[dict] = []
    for user_id in user_ids(connection, limit):
        rows.append(_fetch_one(connection, user_id))
        if len(rows) >= chunk_size:
            yield pd.DataFrame(rows)
            rows = []
    if rows:
        yield pd.DataFrame(rows)


def _set_parameters(connection, limit: int) -> dict:
    parameters = query_parameters("") if _is_sqlite(connection) else postgres_features.query_parameters("")
    del parameters["user_id"]
    return {**parameters, "limit": limit}


def set_based(connection, limit: int, chunk_size: int) -> Iterator[pd.DataFrame]:
    """Every row fetched at once, then framed: the simple job whose memory grows with the users."""
    query = SET_BASED_QUERY if _is_sqlite(connection) else SET_BASED_QUERY_PG
    cursor = connection.execute(query, _set_parameters(connection, limit))
    columns = [column[0] for column in cursor.description]
    yield pd.DataFrame(cursor.fetchall(), columns=columns)


def chunked(connection, limit: int, chunk_size: int) -> Iterator[pd.DataFrame]:
    """The set-based query streamed: at most `chunk_size` rows in memory at a time."""
    if _is_sqlite(connection):
        yield from pd.read_sql(SET_BASED_QUERY, connection, params=_set_parameters(connection, limit),
                               chunksize=chunk_size)
        return
    # PostgreSQL: a server-side cursor, so the server, not this process, holds what is not yet read.
    with connection.transaction(), connection.cursor(name="mlstress_batch") as cursor:
        cursor.execute(SET_BASED_QUERY_PG, _set_parameters(connection, limit))
        columns = None
        while rows := cursor.fetchmany(chunk_size):
            columns = columns or [column.name for column in cursor.description]
            yield pd.DataFrame(rows, columns=columns)


RUNNERS = {"per-user": per_user, "set-based": set_based, "chunked": chunked}
