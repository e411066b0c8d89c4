"""SQLite feature retrieval: the engine at concurrency = cores against one tight loop on one connection, and the plain 50-thread recipe.

Run: python benchmarks/sqlite_throughput.py [--db PATH] [--seconds 5] [--repeats 3]

Without --db a 100,000-user database is generated once into /tmp (default
GenerateParams) and reused. The cache is warmed first, users are drawn
uniformly from mlstress_user_stats, and the phases are repeated in turn
because a shared machine is noisy; medians and bests are printed, and the
verdict uses the best of each (other work can only slow a phase down):
  (a) one thread, one read-only connection, the feature query in a tight loop;
  (b) the engine, closed loop at concurrency = cores (one worker process per core);
  (c) the plain recipe: 50 threads in this process, each with its own connection;
  and, to tell harness overhead from a lack of free cores, the engine at
  concurrency 1 with one worker process against (a).
Target: (b) >= 0.8 x cores x (a). Prints figures and a verdict; always exits 0.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from mlstress_tui.load.engine import LoadEngine, LoadSpec
from mlstress_tui.session import RunSession
from mlstress_tui.load.targets.sqlite import SQLiteTarget, open_read_only
from mlstress_tui.pipeline.feature_query import FEATURE_QUERY, fetch_features

DEFAULT_DB = Path(tempfile.gettempdir()) / "mlstress-bench-100k.sqlite"
TARGET_FRACTION = 0.8
RECIPE_THREADS = 50


def ensure_database(path: Path) -> Path:
    if path.exists():
        return path
    try:
        from mlstress_tui.synth import GenerateParams, generate_sqlite
    except ImportError:
        sys.exit(f"no database at {path} and mlstress_tui.synth is not available: pass --db PATH")
    print(f"generating a 100,000-user database at {path} (once) ...", flush=True)
    result = generate_sqlite(GenerateParams(), path)
    print(f"  {result.users:,} users, {result.events:,} events, {result.file_size / 1e6:.0f} MB in {result.seconds:.0f} s",
          flush=True)
    return path


def user_draws(path: Path, count: int, seed: int) -> list[str]:
    connection = open_read_only(path)
    try:
        ids = [row[0] for row in connection.execute("SELECT user_id FROM mlstress_user_stats ORDER BY rowid")]
    finally:
        connection.close()
    picks = np.random.default_rng(seed).integers(0, len(ids), count)
    return [ids[i] for i in picks]


def warm(path: Path, users: list[str], seconds: float) -> None:
    """Read the file into the page cache, then run queries for a while."""
    with open(path, "rb") as handle:
        while handle.read(1 << 24):
            pass
    connection = open_read_only(path)
    deadline = time.perf_counter() + seconds
    index = 0
    while time.perf_counter() < deadline:
        fetch_features(connection, FEATURE_QUERY, users[index % len(users)])
        index += 1
    connection.close()


def tight_loop(connection, users: list[str], seconds: float) -> tuple[float, float]:
    """Queries/s of one thread querying back to back, and the share of a core it got."""
    clock = time.perf_counter
    deadline = clock() + seconds
    cpu = time.thread_time()
    started, done, count = clock(), 0.0, 0
    size = len(users)
    while (done := clock()) < deadline:
        fetch_features(connection, FEATURE_QUERY, users[count % size])
        count += 1
    return count / (done - started), (time.thread_time() - cpu) / (done - started)


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process, from /proc/<pid>/stat."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def engine_run(path: Path, seconds: float, run_dir: Path, cores: int, workers: int | None = None) -> dict:
    """The engine's summary, plus `worker_cpu_s`: CPU seconds its workers used while running (start-up excluded)."""
    engine = LoadEngine(SQLiteTarget(path),
                        LoadSpec(concurrency=cores, duration_s=seconds, workers=workers), run_dir=run_dir)
    session = RunSession(engine, run_dir=run_dir)
    session.start()
    pids = engine.backend.pids()
    first = {pid: process_cpu_s(pid) for pid in pids}
    last = dict(first)
    try:
        while not engine.finished:
            time.sleep(0.05)
            for pid in pids:
                reading = process_cpu_s(pid)
                if reading is not None:
                    last[pid] = reading
            session.pump()
    finally:
        summary = session.finish()
    summary["worker_cpu_s"] = sum(last[pid] - first[pid] for pid in pids if first[pid] is not None)
    return summary


def thread_recipe(path: Path, users: list[str], seconds: float) -> tuple[float, float]:
    """Queries/s and median latency (ms) of 50 threads in one process, each on its own connection."""
    latencies: list[float] = []
    go = threading.Event()
    stop = threading.Event()

    def user(offset: int) -> None:
        connection = open_read_only(path)
        index = offset
        go.wait()
        while not stop.is_set():
            started = time.perf_counter()
            fetch_features(connection, FEATURE_QUERY, users[index % len(users)])
            latencies.append(time.perf_counter() - started)
            index += RECIPE_THREADS
        connection.close()

    threads = [threading.Thread(target=user, args=(i,)) for i in range(RECIPE_THREADS)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    before = len(latencies)
    started = time.perf_counter()
    go.set()
    time.sleep(seconds)
    count = len(latencies) - before
    elapsed = time.perf_counter() - started
    stop.set()
    for thread in threads:
        thread.join()
    return count / elapsed, statistics.median(latencies) * 1000 if latencies else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=DEFAULT_DB, help=f"database to query (default {DEFAULT_DB}, generated if missing)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each measured phase (default 5)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of each phase; medians are reported (default 3)")
    args = parser.parse_args()
    path = ensure_database(args.db)
    cores = os.cpu_count() or 1
    print(f"sqlite throughput: {path}, {cores} cores, {args.repeats} x {args.seconds:g} s per phase; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    users = user_draws(path, 200_000, seed=7)
    warm(path, users, 3.0)

    plain = open_read_only(path)
    # The engine's own connection setup (mmap, deadline progress handler), for comparison with the plain one.
    engine_slot = SQLiteTarget(path).open(5.0).connect()
    engine_slot.deadline_ns = 2**62  # no request deadline in a tight loop
    single, single_engine_conn, engine_rps, engine_p50, recipe_rps, recipe_p50 = [], [], [], [], [], []
    one_worker, single_cpu, engine_cpu = [], [], []
    with tempfile.TemporaryDirectory(prefix="mlstress-sqlite-") as tmp:
        for repeat in range(args.repeats):
            single.append(tight_loop(plain, users, args.seconds)[0])
            rps, cpu = tight_loop(engine_slot.connection, users, args.seconds)
            single_engine_conn.append(rps)
            single_cpu.append(cpu)
            summary = engine_run(path, args.seconds, Path(tmp) / f"engine-{repeat}", cores)
            engine_rps.append(summary["throughput_rps"])
            engine_cpu.append(summary["worker_cpu_s"] / summary["duration_s"])
            engine_p50.append(summary["latency_ms"]["p50"])
            one_worker.append(engine_run(path, args.seconds, Path(tmp) / f"one-{repeat}", 1, workers=1)["throughput_rps"])
            rps, p50 = thread_recipe(path, users, args.seconds)
            recipe_rps.append(rps)
            recipe_p50.append(p50)
            print(f"  #{repeat + 1}: (a) tight loop {single[-1]:,.0f}/s (engine's connection setup {single_engine_conn[-1]:,.0f}/s) | "
                  f"(b) engine {engine_rps[-1]:,.0f}/s, p50 {engine_p50[-1]:.3f} ms, errors {summary['errors']}, "
                  f"workers got {engine_cpu[-1]:.2f} of {cores} cores; one worker {one_worker[-1]:,.0f}/s | "
                  f"(c) {RECIPE_THREADS} threads {rps:,.0f}/s, p50 {p50:.3f} ms", flush=True)
    plain.close()
    engine_slot.connection.close()

    median, best = statistics.median, max
    rows = [("(a) tight loop, plain read-only connection", single),
            ("(a) tight loop, the engine's connection setup", single_engine_conn),
            (f"(b) engine, concurrency {cores}", engine_rps),
            ("    engine, concurrency 1, one worker", one_worker),
            (f"(c) {RECIPE_THREADS} threads in one process", recipe_rps)]
    print(f"\n{'queries/s':<48} {'median':>9} {'best':>9}")
    for label, values in rows:
        print(f"{label:<48} {median(values):>9,.0f} {best(values):>9,.0f}")
    # Other work on the machine can only slow a phase down, so the best of the repeats is the
    # least disturbed figure (timeit's rule); the baseline is the faster tight loop, so the
    # engine's own connection settings (mmap, deadline handler) earn it nothing.
    a, a_plain = max(best(single), best(single_engine_conn)), best(single)
    b, c = best(engine_rps), best(recipe_rps)
    need = TARGET_FRACTION * cores * a
    median_a = max(median(single), median(single_engine_conn))
    print(f"(b) / (cores x (a)): best {b / (cores * a):.0%}, medians {median(engine_rps) / (cores * median_a):.0%} "
          f"(target ≥ {TARGET_FRACTION:.0%}); engine p50 {median(engine_p50):.3f} ms")
    # Queries per CPU-second: the harness's efficiency whatever share of the cores the machine left it.
    per_cpu_single = median(r / c for r, c in zip(single_engine_conn, single_cpu))
    per_cpu_engine = median(r / c for r, c in zip(engine_rps, engine_cpu))
    print(f"per CPU-second: tight loop {per_cpu_single:,.0f} queries (it got {median(single_cpu):.2f} of a core), "
          f"engine {per_cpu_engine:,.0f} (its workers got {median(engine_cpu):.2f} of {cores} cores, best "
          f"{best(engine_cpu):.2f}) = {per_cpu_engine / per_cpu_single:.0%} of the tight loop's efficiency")
    print(f"(c) / (a): {c / a_plain:.2f} x the plain loop, {c / a:.2f} x the faster loop; (c) p50 {median(recipe_p50):.3f} ms")
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (above {cores} means other work competed for the cores)")
    ok = b >= need
    print(f"verdict: {'PASS' if ok else 'MISS'} — engine {b:,.0f}/s vs target ≥ {TARGET_FRACTION:g} x {cores} x {a:,.0f} = "
          f"{need:,.0f}/s ({b / need:.2f} of target, best of {len(engine_rps)}); "
          f"the {RECIPE_THREADS}-thread recipe reaches {c / a_plain:.2f} x one plain loop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
