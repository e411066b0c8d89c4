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
from mlstress_tui.synth.text_columns import TextColumn, choice_table

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
            if table == "events":
                current[1].write(rows)
                return
            for row in zip(*rows):
                current[1].write_row(row)

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


# Widest value of each number in an event row: session seconds (at most a day) and the whole part of an amount.
SESSION_DIGITS = 5
ITEM_TEXT = 10  # 'ITEM' and six digits


def event_copy_text(batch: EventBatch) -> bytes:
    """The batch's rows in COPY's text format, built column by column with numpy.

    Each field has a fixed slot in a byte matrix; what a shorter value leaves is a zero byte,
    dropped at the end. An amount is written from its cents ('12.34'), which PostgreSQL reads back as
    exactly the float the SQLite file holds (both are the double nearest to cents / 100).
    """
    size = len(batch)
    cents = np.rint(batch.amount * 100).astype(np.int64)
    whole_digits = max(1, len(str(int(cents.max(initial=0)) // 100)))
    labels = choice_table([_copy_escaped(label) for label in batch.type_names])
    slots = [12, 11, labels.shape[0], 19, ITEM_TEXT, SESSION_DIGITS, whole_digits + 3]
    at = [sum(slots[:column]) + column for column in range(len(slots))]
    rows = TextColumn(size, at[-1] + slots[-1], filler=True)
    for column in range(1, len(slots)):
        rows.put_text("\t", at=at[column] - 1)
    rows.put_text("EVT", at=at[0])
    rows.put_digits(batch.numbers(), 9, at=at[0] + 3)
    rows.put_text("USR", at=at[1])
    rows.put_digits(batch.users + 1, 8, at=at[1] + 3)
    rows.put_choice(batch.types, labels, at=at[2])
    days, second_of_day = np.divmod(batch.seconds, 86_400)
    rows.put_date(days, at=at[3], epoch=batch.epoch)
    rows.put_text(" ", at=at[3] + 10)
    for offset, part in ((11, second_of_day // 3600), (14, second_of_day // 60 % 60), (17, second_of_day % 60)):
        rows.put_digits(part, 2, at=at[3] + offset)
    for offset in (13, 16):
        rows.put_text(":", at=at[3] + offset)
    rows.put_text("ITEM", at=at[4])
    rows.put_digits(batch.items, 6, at=at[4] + 4)
    rows.put_number(batch.session, SESSION_DIGITS, at=at[5])
    rows.put_number(cents // 100, whole_digits, at=at[6])
    rows.put_text(".", at=at[6] + whole_digits)
    rows.put_digits(cents % 100, 2, at=at[6] + whole_digits + 1)
    for name, missing in batch.nulls:
        column = EVENT_COLUMN_AT[name]
        rows.put_null(missing, slots[column], at=at[column])
    return rows.compact_bytes()


def _copy_escaped(text: str) -> bytes:
    """Text as a field of COPY's text format: backslash, tab, newline and carriage return escaped."""
    for plain, escaped in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")):
        text = text.replace(plain, escaped)
    return text.encode("utf-8")


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
