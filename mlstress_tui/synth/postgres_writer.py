"""`generate --dsn`: the same row stream COPYed into PostgreSQL, indexed after the load, swapped in atomically.

The rows go into new tables (`<table>__mlstress_new`) with COPY; indexes, the
user stats and `mlstress_meta` follow the load; then one transaction drops the
old tables (only with --force) and renames the new ones into place. An
interrupted or failed load drops its new tables and leaves the old ones (or
none) untouched. Dates and timestamps are text in collation "C", exactly as in
the SQLite file, so the feature query compares them the same way.

The events, nearly all the rows, reach COPY as text built from the row stream's
arrays (no Python object per value), in the producer thread, while the batch
before is sent; PostgreSQL parses it as it parses a file. The tables are logged
from the start: on the 2-core box that beat unlogged tables made logged after
the load (ALTER TABLE … SET LOGGED rewrites the table and rebuilds its indexes).
"""

from __future__ import annotations

import json
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import psycopg
from psycopg import sql

from mlstress_tui.errors import UsageError
from mlstress_tui.dsn import connect_checked, dsn_label, scrub
from mlstress_tui.synth.generator import EVENT_COLUMN_AT, AfterLoad, EventBatch, GenerateResult, Progress, generate_rows
from mlstress_tui.synth.params import GenerateParams
from mlstress_tui.synth.production_profile import PostgresSource, SchemaMap
from mlstress_tui.synth.copy_rows import CopyRows, columns_copy_text, escaped

NEW = "__mlstress_new"
TABLES = {
    "users": """(user_id text COLLATE "C" PRIMARY KEY, signup_date text COLLATE "C", segment text, country text,
                 device_type text, name text, email text, city text)""",
    "events": """(event_id text COLLATE "C", user_id text COLLATE "C", event_type text,
                  event_timestamp text COLLATE "C", item_id text, session_duration_seconds integer,
                  amount double precision)""",
    "mlstress_user_stats": """(user_id text COLLATE "C" PRIMARY KEY, event_count integer NOT NULL)""",
    "mlstress_meta": """(key text PRIMARY KEY, value text)""",
}
INDEXES = {"events_user_id": ("events", "user_id"), "events_event_timestamp": ("events", "event_timestamp")}


def _new(table: str) -> sql.Identifier:
    return sql.Identifier(table + NEW)


def generate_postgres(params: GenerateParams, dsn: str, *, force: bool = False,
                      progress: Progress | None = None, after_load: AfterLoad | None = None) -> GenerateResult:
    """Generate into the database at `dsn`; its old tables are replaced only when everything is in (and --force)."""
    params.validate()
    label = dsn_label(dsn)
    started = time.perf_counter()
    with connect_checked(dsn, autocommit=True) as connection:
        existing = _existing_tables(connection)
        if existing and not force:
            raise UsageError(f"{label} already holds table(s) {', '.join(sorted(existing))}; pass --force to "
                             "replace them")
        _drop_new_tables(connection)  # leftovers of an earlier interrupted load
        try:
            meta = _load(connection, params, progress)
            extra = {}
            if after_load:
                new_tables = SchemaMap().with_tables(users=f"users{NEW}", events=f"events{NEW}")
                extra = after_load(PostgresSource(connection, label), new_tables)
                _write_meta(connection, extra)
            _swap_in(connection)
        except BaseException as error:
            _drop_new_tables(connection)
            if isinstance(error, psycopg.Error):
                raise UsageError(f"could not write {label}: {scrub(' '.join(str(error).split()), dsn)[:300]}") from None
            raise
        size = connection.execute("SELECT pg_total_relation_size('events') + pg_total_relation_size('users')"
                                  ).fetchone()[0]
    return GenerateResult(path=Path(label), users=params.users, events=meta["events"],
                          seconds=time.perf_counter() - started, file_size=int(size),
                          events_per_user=meta["events_per_user"], edge_cases=meta["edge_cases"], after_load=extra)


def _existing_tables(connection: psycopg.Connection) -> set[str]:
    rows = connection.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
                              " AND table_name = ANY(%s)", (list(TABLES),)).fetchall()
    return {row[0] for row in rows}


def _drop_new_tables(connection: psycopg.Connection) -> None:
    for table in TABLES:
        connection.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(_new(table)))


def _load(connection: psycopg.Connection, params: GenerateParams, progress: Progress | None) -> dict:
    # One transaction for the whole load: one commit (one WAL flush), not one a COPY.
    with connection.transaction():
        return _load_rows(connection, params, progress)


def _load_rows(connection: psycopg.Connection, params: GenerateParams, progress: Progress | None) -> dict:
    create_new_tables(connection)
    cursor = connection.cursor()
    # One COPY a table, kept open from the table's first batch to the next table's, as a COPY of a file is.
    with ExitStack() as open_copy:
        current: list = [None, None]  # table, its COPY

        def sink(table: str, rows) -> None:
            if current[0] != table:
                open_copy.close()
                copy = open_copy.enter_context(cursor.copy(sql.SQL("COPY {} FROM STDIN").format(_new(table))))
                current[:] = [table, copy]
            current[1].write(rows if table == "events" else columns_copy_text(rows))

        meta = generate_rows(params, sink, progress, prepare_events=event_copy_text)
    _write_meta(connection, meta)
    finish_new_tables(connection)
    return meta


def create_new_tables(connection: psycopg.Connection) -> None:
    """The load's tables, beside any old ones."""
    for table, columns in TABLES.items():
        connection.execute(sql.SQL("CREATE TABLE {} " + columns).format(_new(table)))


def finish_new_tables(connection: psycopg.Connection) -> None:
    """After the rows: the indexes, and the planner's statistics.

    benchmarks/generate_postgres.py runs the same steps after COPYing the same rows from files (the floor).
    """
    for index, (table, column) in INDEXES.items():
        connection.execute(sql.SQL("CREATE INDEX {} ON {} ({})").format(
            sql.Identifier(index + NEW), _new(table), sql.Identifier(column)))
    for table in TABLES:
        connection.execute(sql.SQL("ANALYZE {}").format(_new(table)))


# Slot widths of the numbers in an event row: session seconds (at most a day) and an item number.
SESSION_DIGITS = 5
ITEM_DIGITS = 6


def event_copy_text(batch: EventBatch) -> bytes:
    """The batch's rows in COPY's text format, built column by column with numpy (copy_rows.CopyRows).

    An amount is written from its cents ('0012.34'), which PostgreSQL reads back as exactly the float the
    SQLite file holds (both are the double nearest to cents / 100).
    """
    cents = np.rint(batch.amount * 100).astype(np.int64)
    whole_digits = max(1, len(str(int(cents.max(initial=0)) // 100)))
    labels = [escaped(label) for label in batch.type_names]
    rows = CopyRows(len(batch), [12, 11, max(map(len, labels)), 19, 4 + ITEM_DIGITS, SESSION_DIGITS,
                                 whole_digits + 3])
    event_id, user_id, event_type, timestamp, item_id, session, amount = rows.starts
    rows.put_text(b"EVT", event_id)
    rows.put_digits(batch.numbers(), 9, event_id + 3)
    rows.put_text(b"USR", user_id)
    rows.put_digits(batch.users + 1, 8, user_id + 3)
    rows.put_choice(batch.types, labels, event_type)
    rows.put_timestamp(batch.seconds, batch.epoch, timestamp)
    rows.put_text(b"ITEM", item_id)
    rows.put_digits(batch.items, ITEM_DIGITS, item_id + 4)
    rows.put_digits(batch.session, SESSION_DIGITS, session)
    rows.put_digits(cents // 100, whole_digits, amount)
    rows.put_text(b".", amount + whole_digits)
    rows.put_digits(cents % 100, 2, amount + whole_digits + 1)
    for name, missing in batch.nulls:
        rows.put_null(missing, EVENT_COLUMN_AT[name])
    return rows.text()


def _write_meta(connection: psycopg.Connection, meta: dict) -> None:
    with connection.cursor().copy(sql.SQL("COPY {} (key, value) FROM STDIN").format(_new("mlstress_meta"))) as copy:
        for key, value in meta.items():
            copy.write_row((key, json.dumps(value, sort_keys=True)))


def _swap_in(connection: psycopg.Connection) -> None:
    """Old tables out, new ones in, in one transaction: a reader sees the old data or the new, never half."""
    with connection.transaction():
        for table in TABLES:
            connection.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(table)))
            connection.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(_new(table), sql.Identifier(table)))
        for index in INDEXES:
            connection.execute(sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                sql.Identifier(index + NEW), sql.Identifier(index)))
