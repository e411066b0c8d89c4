"""Benchmark `mlstress-tui generate` against SQLite's own bulk speed and a per-event Python loop.

Prints, for one population (default 100,000 users at a mean of 45 events):
  - the generator: wall time and events/s, indexes included;
  - the baseline: a C-level INSERT ... SELECT of the same number of event rows
    of similar width (a recursive CTE and printf), plus the same two indexes
    built the same way (timestamp before the load, user id after), with the
    generator's own bulk-load PRAGMAs (page size included);
  - the per-event-loop recipe the generator replaces (one Python iteration and
    one INSERT per event), timed on a subset of users and extrapolated as events/s.
With --memory (alone, or beside --speed): the peak RSS of `mlstress-tui generate`
at 250,000, 500,000 and 1,000,000 users (2 events a user), each size in a fresh
process (its peak is its own, from wait4), and the growth from the smallest to
the largest size against issue 29's goal (at most 60 MB over those 750,000 users),
and the peak 10,000,000 users would reach at that growth a user (goal: under 1 GB).

Usage: python benchmarks/generate.py [--speed] [--memory] [--users N] [--mean-events M] [--loop-users N]
                                     [--memory-sizes 250000,500000,1000000] [--repeats 3] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

from mlstress_tui.synth import GenerateParams, generate_sqlite
from mlstress_tui.synth.bulk_insert import apply_bulk_load_pragmas
from mlstress_tui.synth.schema import INDEXES, INDEXES_AFTER_LOAD, INDEXES_BEFORE_LOAD, TABLES

# Rows as wide as the generator's (same column widths), built with SQLite's
# cheapest expressions: random user ids (so the user index sorts as much) and
# increasing timestamps (as the generator's are).
BASELINE_SQL = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :rows)
INSERT INTO events
SELECT 'EVT' || substr(1000000000 + i, 2),
       'USR' || substr(100000000 + abs(random()) % :users + 1, 2),
       CASE i % 5 WHEN 0 THEN 'view' WHEN 1 THEN 'click' WHEN 2 THEN 'purchase'
                  WHEN 3 THEN 'add_to_cart' ELSE 'search' END,
       '2025-' || substr(100000000000000 + i, 2),
       'ITEM' || substr(1000000 + abs(random()) % 50000 + 1, 2),
       abs(random()) % 900,
       CASE WHEN i % 10 = 2 THEN (abs(random()) % 10000) / 100.0 ELSE 0.0 END
FROM n
"""


def time_generator(params: GenerateParams, directory: Path) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (all threads) and events of one generation."""
    out = directory / "generated.sqlite"
    cpu = time.process_time()
    result = generate_sqlite(params, out, force=True)
    cpu = time.process_time() - cpu
    out.unlink()
    return result.seconds, cpu, result.events


def time_baseline(rows: int, users: int, directory: Path) -> tuple[float, float]:
    """Wall and CPU seconds of an INSERT ... SELECT of `rows` event rows and both indexes, all inside SQLite."""
    path = directory / "baseline.sqlite"
    path.unlink(missing_ok=True)
    started, cpu = time.perf_counter(), time.process_time()
    conn = sqlite3.connect(path, isolation_level=None)
    apply_bulk_load_pragmas(conn)
    for statement in TABLES + INDEXES_BEFORE_LOAD:
        conn.execute(statement)
    conn.execute("BEGIN")
    conn.execute(BASELINE_SQL, {"rows": rows, "users": users})
    conn.execute("COMMIT")
    for statement in INDEXES_AFTER_LOAD:
        conn.execute(statement)
    conn.close()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    path.unlink()
    return seconds, cpu


def time_loop_recipe(users: int, mean_events: float, directory: Path) -> tuple[float, int]:
    """The per-event loop the issue describes: a Python iteration, date arithmetic and an INSERT per event."""
    path = directory / "loop.sqlite"
    path.unlink(missing_ok=True)
    rng = random.Random(42)
    started = time.perf_counter()
    conn = sqlite3.connect(path)
    for statement in TABLES:
        conn.execute(statement)
    event_number = 0
    for user in range(1, users + 1):
        user_id = f"USR{user:08d}"
        signup = date(2023, 1, 1) + timedelta(days=rng.randint(0, 1096))
        conn.execute(
            "INSERT INTO users VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (user_id, signup.isoformat(), rng.choice(["free", "standard", "premium"]), rng.choice(["IN", "US"]),
             rng.choice(["mobile", "desktop"]), "Name", "name@example.com", "City"),
        )
        for _ in range(min(500, int(rng.paretovariate(1.5) * mean_events / 3))):
            event_number += 1
            when = datetime(2023, 1, 1) + timedelta(days=rng.randint(0, 1155))
            event_type = rng.choices(["view", "click", "purchase", "add_to_cart", "search"], [45, 25, 10, 12, 8])[0]
            conn.execute(
                "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)",
                (f"EVT{event_number:09d}", user_id, event_type, when.strftime("%Y-%m-%d %H:%M:%S"),
                 f"ITEM{rng.randint(1, 50000):06d}", int(rng.expovariate(1 / 180)), round(rng.uniform(1, 500), 2)),
            )
    conn.commit()
    for statement in INDEXES:
        conn.execute(statement)
    conn.close()
    seconds = time.perf_counter() - started
    path.unlink()
    return seconds, event_number


# Issue 29: peak RSS may grow by at most this much from the smallest to the largest memory size.
MEMORY_GROWTH_GOAL_MB = 60.0
PROJECTED_USERS, PROJECTED_GOAL_MB = 10_000_000, 1024


def peak_rss_mb(users: int, directory: Path) -> float:
    """Peak RSS of one `mlstress-tui generate` (2 events a user) in a process of its own."""
    out = directory / f"memory-{users}.sqlite"
    process = subprocess.Popen([sys.executable, "-m", "mlstress_tui", "generate", "--users", str(users),
                                "--mean-events", "2", "--out", str(out), "--force"], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    out.unlink(missing_ok=True)
    if process.returncode != 0:
        raise SystemExit(f"generate --users {users} failed with exit code {process.returncode}")
    return usage.ru_maxrss / 1024  # Linux reports KiB


def part_memory(sizes: list[int], repeats: int, directory: Path) -> None:
    print(f"peak RSS of generate, 2 events a user, each run a fresh process ({repeats} runs a size, median):")
    medians = {}
    for users in sizes:
        runs = [peak_rss_mb(users, directory) for _ in range(repeats)]
        medians[users] = statistics.median(runs)
        print(f"  {users:>10,} users   peak RSS {medians[users]:7.1f} MB   "
              f"(runs {', '.join(f'{run:.1f}' for run in runs)})", flush=True)
    smallest, largest = min(sizes), max(sizes)
    growth = medians[largest] - medians[smallest]
    per_user = growth * 1024 * 1024 / max(largest - smallest, 1)
    verdict = "MET" if growth <= MEMORY_GROWTH_GOAL_MB else "MISSED"
    print(f"  growth {smallest:,} -> {largest:,} users: {growth:+.1f} MB ({per_user:.0f} B/user); "
          f"goal <= {MEMORY_GROWTH_GOAL_MB:g} MB: {verdict}")
    # The reason for the goal: at this growth a user, what 10 M users would peak at.
    projected = medians[largest] + per_user * (PROJECTED_USERS - largest) / (1024 * 1024)
    print(f"  at {per_user:.0f} B/user, {PROJECTED_USERS:,} users would peak near {projected:,.0f} MB "
          f"(goal under {PROJECTED_GOAL_MB:,} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", action="store_true", help="the generator beside INSERT...SELECT and a loop")
    parser.add_argument("--memory", action="store_true", help="peak RSS at --memory-sizes, each in a fresh process")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--mean-events", type=float, default=45.0)
    parser.add_argument("--loop-users", type=int, default=5_000, help="users for the per-event loop (extrapolated)")
    parser.add_argument("--memory-sizes", default="250000,500000,1000000", help="comma-separated user counts")
    parser.add_argument("--repeats", type=int, default=3, help="runs per memory size (the median is reported)")
    parser.add_argument("--dir", type=Path, default=None, help="scratch directory (default: a temporary one)")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    if args.memory:
        with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
            part_memory([int(size) for size in args.memory_sizes.split(",")], args.repeats, Path(scratch))
        if not args.speed:
            return
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        directory = Path(scratch)
        params = GenerateParams(users=args.users, mean_events=args.mean_events)
        generator_seconds, generator_cpu, events = time_generator(params, directory)
        baseline_seconds, baseline_cpu = time_baseline(events, args.users, directory)
        loop_seconds, loop_events = time_loop_recipe(args.loop_users, args.mean_events, directory)
    generator_rate = events / generator_seconds
    loop_rate = loop_events / loop_seconds
    print(f"population            {args.users:,} users, mean {args.mean_events:g} -> {events:,} events")
    print(
        f"generator             {generator_seconds:8.2f} s   {generator_rate:12,.0f} events/s "
        f"(indexes included; {generator_cpu:.1f} s CPU over all threads)"
    )
    baseline_rate = events / baseline_seconds
    print(
        f"INSERT...SELECT       {baseline_seconds:8.2f} s   {baseline_rate:12,.0f} rows/s "
        f"(same rows, same indexes; {baseline_cpu:.1f} s CPU)"
    )
    print(f"  generator / baseline  {generator_seconds / baseline_seconds:.2f}x time (target <= 1.5x)")
    print(
        f"per-event loop        {loop_seconds:8.2f} s   {loop_rate:12,.0f} events/s "
        f"({loop_events:,} events, {args.loop_users:,} users)"
    )
    print(f"  generator / loop      {generator_rate / loop_rate:.1f}x events/s (target >= 10x)")


if __name__ == "__main__":
    main()
