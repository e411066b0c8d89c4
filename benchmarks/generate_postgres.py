"""`generate --dsn` beside PostgreSQL's own COPY floor, in one run: the same rows, the same tables and indexes.

After one untimed generation (whose rows the floor's files hold), for each of
--repeats rounds (medians reported; each round runs the two sides in the other
order, so neither always follows the other's checkpoint):
  - the tool: `generate_postgres` of --users users (default 100,000, mean 45:
    ~4.5 M events) into a database of its own, wall time from start to the
    tables swapped in;
  - the floor: the same rows, dumped once with COPY TO into files, COPYed back
    FROM those files into fresh tables (as psql's \\copy does), then the steps
    the tool takes after its rows (postgres_writer.finish_new_tables: the same
    indexes, ANALYZE), in one transaction as the tool's load is. What the tool
    costs beyond it is making the rows (and swapping the tables in).

Goal (issue 29): the tool at least 0.9x the floor's events/s.

Run: python benchmarks/generate_postgres.py [--users 100000] [--repeats 3]
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
from pathlib import Path

import psycopg
from psycopg import sql

from mlstress_tui.synth import GenerateParams
from mlstress_tui.synth.postgres_writer import (
    NEW,
    TABLES,
    create_new_tables,
    finish_new_tables,
    generate_postgres,
)

GOAL = 0.9


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


def floor_seconds(dsn: str, files: dict[str, Path]) -> float:
    """PostgreSQL's own path to the same tables: COPY FROM the files, then the tool's after-load steps."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        for table in TABLES:
            connection.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table + NEW)))
        started = time.perf_counter()
        with connection.transaction():
            create_new_tables(connection)
            for table, path in files.items():
                with open(path, "rb") as source, connection.cursor().copy(
                        sql.SQL("COPY {} FROM STDIN").format(sql.Identifier(table + NEW))) as copy:
                    while chunk := source.read(1 << 20):
                        copy.write(chunk)
            finish_new_tables(connection)
        elapsed = time.perf_counter() - started
        for table in TABLES:
            connection.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(table + NEW)))
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--mean-events", type=float, default=45.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--admin-dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    name = f"mlstress_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = args.admin_dsn.rsplit("/", 1)[0] + f"/{name}"
    params = GenerateParams(users=args.users, mean_events=args.mean_events)
    print(f"generate --dsn vs COPY floor: {args.users:,} users, mean {args.mean_events:g}, {args.repeats} rounds; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}", flush=True)
    tool, floor = [], []
    try:
        with tempfile.TemporaryDirectory(prefix="mlstress-pg-floor-") as scratch:
            result = generate_postgres(params, dsn, force=True)  # the rows for the floor's files; not timed
            files = dump_rows(dsn, Path(scratch))
            for round_ in range(args.repeats):
                # Each round in the other order, so neither side always follows the other's checkpoint.
                if round_ % 2:
                    floor.append(floor_seconds(dsn, files))
                started = time.perf_counter()
                result = generate_postgres(params, dsn, force=True)
                tool.append(time.perf_counter() - started)
                if not round_ % 2:
                    floor.append(floor_seconds(dsn, files))
                print(f"  round {round_ + 1}: tool {tool[-1]:6.2f} s   floor {floor[-1]:6.2f} s   "
                      f"ratio {floor[-1] / tool[-1]:.2f}", flush=True)
    finally:
        with psycopg.connect(args.admin_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    events = result.events
    tool_s, floor_s = statistics.median(tool), statistics.median(floor)
    print(f"  generate --dsn            {events / tool_s:>12,.0f} events/s  (median {tool_s:.2f} s, {events:,} events)")
    print(f"  COPY FROM files (floor)   {events / floor_s:>12,.0f} events/s  (median {floor_s:.2f} s)")
    ratio = floor_s / tool_s
    print(f"  tool / floor {ratio:.2f}x (goal >= {GOAL:g}: {'MET' if ratio >= GOAL else 'MISSED'})")


if __name__ == "__main__":
    main()
