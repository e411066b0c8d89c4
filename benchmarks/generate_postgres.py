"""`generate --dsn` beside PostgreSQL's own COPY floor, in one run: the same rows, the same tables and indexes.

After one untimed generation (whose rows the floor's files hold), for each of
--repeats rounds (medians reported; each round runs the two sides in the other
order, so neither always follows the other's checkpoint), both sides starting
from a database without the tables (the tool's previous ones are dropped before
its clock starts, as the floor's are, so neither side pays for dropping a table):
  - the tool: `generate_postgres` of --users users (default 100,000, mean 45:
    ~4.5 M events), wall time from the call to the tables swapped in, and the
    client CPU it took (making the rows, all threads);
  - the floor: the same rows, dumped once with COPY TO into files, COPYed back
    FROM those files into fresh tables (as psql's \\copy does), then the steps
    the tool takes after its rows (postgres_writer.finish_new_tables: the same
    indexes, ANALYZE), in one transaction as the tool's load is.
Each side's time is split into rows in (to the last COPY) and after-load (indexes
and statistics, the same statements on both sides): what the tool costs beyond
the floor is making the rows, which shows in the first column; the second shows
how much the box's load moved identical work between the two.

Goal (issue 29): the tool at least 0.9x the floor's events/s, judged on the median of the rounds' ratios
(each round's two sides run back to back, under the same load).

Run: python benchmarks/generate_postgres.py [--users 100000] [--repeats 5]
                                            [--admin-dsn postgresql://postgres@127.0.0.1:5432/postgres]
Creates a database of its own on the server at --admin-dsn and drops it at the end. Always exits 0.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from mlstress_tui.synth import GenerateParams, postgres_writer
from mlstress_tui.synth.postgres_writer import NEW, TABLES, create_new_tables, finish_new_tables, generate_postgres

GOAL = 0.9


@dataclass(frozen=True)
class Round:
    """One side's load: wall seconds to the rows in, and in all; client CPU seconds."""

    rows_in: float
    total: float
    client_cpu: float

    @property
    def after_load(self) -> float:
        return self.total - self.rows_in


def dump_rows(dsn: str, directory: Path) -> dict[str, Path]:
    """The generated tables as COPY text files, one a table."""
    files = {}
    with psycopg.connect(dsn, autocommit=True) as connection:
        for table in TABLES:
            files[table] = directory / f"{table}.copy"
            with open(files[table], "wb") as out, connection.cursor().copy(
                    sql.SQL("COPY {} TO STDOUT").format(sql.Identifier(table))) as copy:
                for chunk in copy:
                    out.write(chunk)
    return files


def floor_round(dsn: str, files: dict[str, Path]) -> Round:
    """PostgreSQL's own path to the same tables: COPY FROM the files, then the tool's after-load steps."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        for table in TABLES:
            connection.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table + NEW)))
        started, cpu = time.perf_counter(), time.process_time()
        with connection.transaction():
            create_new_tables(connection)
            for table, path in files.items():
                with open(path, "rb") as source, connection.cursor().copy(
                        sql.SQL("COPY {} FROM STDIN").format(sql.Identifier(table + NEW))) as copy:
                    while chunk := source.read(1 << 20):
                        copy.write(chunk)
            rows_in = time.perf_counter() - started
            finish_new_tables(connection)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
        for table in TABLES:
            connection.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(table + NEW)))
    return Round(rows_in, elapsed, cpu)


def tool_round(params: GenerateParams, dsn: str) -> Round:
    """`generate_postgres` into a database without the tables; rows in is when its after-load steps begin."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        for table in TABLES:
            connection.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))
    rows_in: list[float] = []

    def finish(connection: psycopg.Connection) -> None:
        rows_in.append(time.perf_counter() - started)
        finish_new_tables(connection)

    # The writer looks the step up in its module when it runs, so the clock sees when it begins.
    postgres_writer.finish_new_tables = finish
    try:
        started, cpu = time.perf_counter(), time.process_time()
        generate_postgres(params, dsn, force=True)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        postgres_writer.finish_new_tables = finish_new_tables
    return Round(rows_in[0], elapsed, cpu)


def median_round(rounds: list[Round]) -> Round:
    return Round(*(statistics.median(getattr(side, name) for side in rounds)
                   for name in ("rows_in", "total", "client_cpu")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--mean-events", type=float, default=45.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--admin-dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    name = f"mlstress_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = args.admin_dsn.rsplit("/", 1)[0] + f"/{name}"
    params = GenerateParams(users=args.users, mean_events=args.mean_events)
    print(f"generate --dsn vs COPY floor: {args.users:,} users, mean {args.mean_events:g}, {args.repeats} rounds; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}", flush=True)
    tool: list[Round] = []
    floor: list[Round] = []
    try:
        with tempfile.TemporaryDirectory(prefix="mlstress-pg-floor-") as scratch:
            result = generate_postgres(params, dsn, force=True)  # the rows for the floor's files; not timed
            files = dump_rows(dsn, Path(scratch))
            for round_ in range(args.repeats):
                # Each round in the other order, so neither side always follows the other's checkpoint.
                if round_ % 2:
                    floor.append(floor_round(dsn, files))
                tool.append(tool_round(params, dsn))
                if not round_ % 2:
                    floor.append(floor_round(dsn, files))
                print(f"  round {round_ + 1}: tool {tool[-1].total:6.2f} s ({tool[-1].rows_in:5.2f} rows in)   "
                      f"floor {floor[-1].total:6.2f} s ({floor[-1].rows_in:5.2f} rows in)   "
                      f"ratio {floor[-1].total / tool[-1].total:.2f}", flush=True)
    finally:
        with psycopg.connect(args.admin_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    events = result.events
    tool_m, floor_m = median_round(tool), median_round(floor)
    print(f"  {'median of ' + str(args.repeats) + ' rounds':26s} {'events/s':>12s}  {'total':>8s}  {'rows in':>8s}  "
          f"{'after-load':>10s}  {'client CPU':>10s}")
    for label, side in (("generate --dsn", tool_m), ("COPY FROM files (floor)", floor_m)):
        print(f"  {label:26s} {events / side.total:>12,.0f}  {side.total:7.2f}s  {side.rows_in:7.2f}s  "
              f"{side.after_load:9.2f}s  {side.client_cpu:9.2f}s")
    # The verdict is on each round's pair (run back to back, under the same load), not on medians of
    # totals that may come from different rounds.
    ratio = statistics.median(floor_side.total / tool_side.total for tool_side, floor_side in zip(tool, floor))
    print(f"  {events:,} events; tool / floor, median of the rounds' ratios {ratio:.2f}x "
          f"(goal >= {GOAL:g}: {'MET' if ratio >= GOAL else 'MISSED'}); of the medians {floor_m.total / tool_m.total:.2f}x, "
          f"rows in alone {floor_m.rows_in / tool_m.rows_in:.2f}x")


if __name__ == "__main__":
    main()
