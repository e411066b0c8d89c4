"""`compare`'s noise rule measured: how often it cries wolf on identical runs, and the smallest slowdown it catches.

Run: python benchmarks/compare.py [--sleep] [--database] [--pairs 10] [--duration 8] [--concurrency 4]
                                  [--slowdowns 2,5,10,20] [--db-slowdowns 10,20,50,100] [--db PATH] [--out DIR]
                                  [--judge-only]

With neither --sleep nor --database, both parts run. Each part makes, in
turn, pairs+1 base runs and `pairs` runs at each slowdown, interleaved (base,
+2%, +5%, … then the next base) so the machine's drift falls on all of them
alike; each run is `mlstress-tui run --headless` at --concurrency users for
--duration seconds, the issue's shape (4 users, 8 s).

- False alarms: consecutive base runs compared (`mlstress-tui compare` with its
  defaults), pairs of them: how many pairs had any verdict other than "no
  change" (or "too short to judge"), and how many failed the gate (exit 1).
- Slowdowns: base run i against slowed run i: how many pairs had some metric
  judged "slower" outside the noise (caught), how many failed the default 10%
  gate, and which metric caught it. The smallest slowdown caught in at least
  95% of pairs is the figure.

1. `--sleep`: `sleep:2ms` against `sleep:2.04ms`, `sleep:2.1ms`, … (the
   slowdown is exact: the target's service time).
2. `--database`: the feature query on the default database (generated into the
   cache directory on first use, ~1 min), through a python target that runs the
   same SQL and then spins for the slowdown's share of the CPU time the query
   took in its thread (a query that needs that much more CPU). Base runs go through the same
   target at 0%, so both sides take the same path.

Prints figures; always exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

CATCH_RATE = 0.95
JUDGED_OUT = ("no change", "too short to judge", "not measured")

# The database target with a slowdown: the reference feature query, then busy work for `slowdown` × its time.
SLOWED_TARGET = '''
import os, sqlite3, threading, time
from mlstress_tui.pipeline.feature_query import FEATURE_QUERY, fetch_features

_SLOWDOWN = float(os.environ["BENCH_SLOWDOWN"])
_DB = os.environ["BENCH_DB"]
_local = threading.local()


def features(user_id):
    connection = getattr(_local, "connection", None)
    if connection is None:
        connection = sqlite3.connect(f"file:{_DB}?mode=ro", uri=True, check_same_thread=False)
        connection.execute("PRAGMA mmap_size = 4294967296")
        _local.connection = connection
    # CPU time of this thread, not wall time: waiting for a core or the GIL is not the query's work.
    started = time.thread_time()
    row = fetch_features(connection, FEATURE_QUERY, user_id)
    until = time.thread_time() + (time.thread_time() - started) * _SLOWDOWN
    while time.thread_time() < until:
        pass
    return row
'''


def run(argv: list[str], out: Path, env: dict | None = None) -> None:
    """One real `mlstress-tui run --headless`, as a user makes it."""
    process = subprocess.run([sys.executable, "-m", "mlstress_tui", "run", "--headless", "--out", str(out), *argv],
                             capture_output=True, text=True, env=env)
    if process.returncode != 0:
        raise SystemExit(f"run failed ({process.returncode}): {process.stderr[-2000:]}")


def compare(base: Path, new: Path, out: Path) -> tuple[int, dict]:
    """`mlstress-tui compare` with its defaults: exit code (2: nothing could be judged) and compare.json."""
    shutil.rmtree(out, ignore_errors=True)  # compare never overwrites: a kept comparison would be read instead
    process = subprocess.run([sys.executable, "-m", "mlstress_tui", "compare", str(base), str(new), "--out", str(out)],
                             capture_output=True, text=True)
    if process.returncode not in (0, 1) and not (out / "compare.json").is_file():
        raise SystemExit(f"compare failed ({process.returncode}): {process.stderr[-2000:]}")
    return process.returncode, json.loads((out / "compare.json").read_text())


def verdicts(document: dict) -> list[tuple[str, str, float | None]]:
    """(metric label, verdict, change) for every gated metric of every level (the harness lag is the machine's)."""
    return [(metric["label"], metric["verdict"], metric["change"]) for section in document["sections"]
            for level in section["levels"] for metric in level["metrics"] if metric.get("gated", True)]


def part(name: str, base_argv: list[str], slowed_argv, slowdowns: list[float], pairs: int, scratch: Path,
         env_for, *, judge_only: bool = False) -> None:
    """Make the runs in interleaved order (or, judge_only, take those kept in scratch), then the two tables."""
    print(f"\n== {name}: {pairs + 1} base runs and {pairs} at each of "
          + ", ".join(f"+{s:.0%}" for s in slowdowns) + f" ({(pairs + 1) + pairs * len(slowdowns)} runs"
          + (", kept from before: judged again)" if judge_only else ")"), flush=True)
    started = time.monotonic()
    bases, slowed = [], {s: [] for s in slowdowns}
    for index in range(pairs + 1):
        out = scratch / name / f"base-{index}"
        if not judge_only:
            run(base_argv, out, env_for(0.0))
        bases.append(out)
        if index == pairs:
            break
        for slowdown in slowdowns:
            out = scratch / name / f"slow{slowdown:g}-{index}"
            if not judge_only:
                run(slowed_argv(slowdown), out, env_for(slowdown))
            slowed[slowdown].append(out)
        if not judge_only:
            print(f"  round {index + 1}/{pairs}: {time.monotonic() - started:.0f} s", flush=True)

    alarms, gate_fails, unjudged, alarm_metrics = 0, 0, 0, Counter()
    for index in range(pairs):
        code, document = compare(bases[index], bases[index + 1], scratch / name / f"cmp-base-{index}")
        unjudged += document["verdict"] == "UNJUDGED"
        flagged = [(label, verdict, change) for label, verdict, change in verdicts(document) if verdict not in JUDGED_OUT]
        alarms += bool(flagged)
        gate_fails += code == 1
        alarm_metrics.update(label for label, _, _ in flagged)
        if flagged:
            print(f"  identical pair {index}: " + ", ".join(f"{label} {verdict} {change:+.1%}"
                                                            for label, verdict, change in flagged))
    print(f"\n  {'pairs':>16} {'any verdict':>12} {'gate fails':>11} {'unjudged':>9}   "
          "(identical runs: each should be 'no change')")
    print(f"  {'false alarms':>16} {f'{alarms}/{pairs}':>12} {f'{gate_fails}/{pairs}':>11} {f'{unjudged}/{pairs}':>9}"
          + (f"   metrics: {dict(alarm_metrics)}" if alarm_metrics else ""))

    print(f"\n  {'slowdown':>9} {'caught':>8} {'gate fails':>11} {'unjudged':>9}  {'caught by (pairs)':<28} "
          "measured p50 change (median)")
    smallest = None
    for slowdown in slowdowns:
        caught, fails, short, by, p50_changes = 0, 0, 0, Counter(), []
        for index in range(pairs):
            code, document = compare(bases[index], slowed[slowdown][index],
                                     scratch / name / f"cmp-{slowdown:g}-{index}")
            short += document["verdict"] == "UNJUDGED"
            slower = [label for label, verdict, _ in verdicts(document) if verdict in ("slower", "more errors")]
            caught += bool(slower)
            fails += code == 1
            by.update(slower)
            p50_changes += [change for label, _, change in verdicts(document) if label == "p50" and change is not None]
        p50_changes.sort()
        median = p50_changes[len(p50_changes) // 2] if p50_changes else None
        print(f"  {f'+{slowdown:.0%}':>9} {f'{caught}/{pairs}':>8} {f'{fails}/{pairs}':>11} {f'{short}/{pairs}':>9}  "
              f"{', '.join(f'{k} {v}' for k, v in by.most_common()) or '-':<28} "
              f"{'n/a' if median is None else f'{median:+.1%}'}")
        if smallest is None and caught >= CATCH_RATE * pairs:
            smallest = slowdown
    print(f"\n  smallest slowdown caught in >= {CATCH_RATE:.0%} of pairs: "
          + (f"+{smallest:.0%}" if smallest is not None else f"none up to +{max(slowdowns):.0%}")
          + f"   ({time.monotonic() - started:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sleep", action="store_true")
    parser.add_argument("--database", action="store_true")
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--slowdowns", default="2,5,10,20", help="part 1's slowdowns, percent, comma-separated")
    # The feature query takes ~0.1 ms of CPU on two shared cores: its seconds spread far wider than a sleep's.
    parser.add_argument("--db-slowdowns", default="10,20,50,100", help="part 2's slowdowns, percent")
    parser.add_argument("--db", type=Path, help="database of part 2 (default: the default database)")
    parser.add_argument("--out", type=Path, help="keep every run and comparison here")
    parser.add_argument("--judge-only", action="store_true",
                        help="make no runs: judge again those an earlier benchmark kept in --out")
    args = parser.parse_args()
    if args.judge_only and args.out is None:
        parser.error("--judge-only needs --out DIR, where an earlier run of this benchmark kept its runs")
    both = not (args.sleep or args.database)
    slowdowns = [float(text) / 100 for text in args.slowdowns.split(",")]
    db_slowdowns = [float(text) / 100 for text in args.db_slowdowns.split(",")]
    load = ["--concurrency", str(args.concurrency), "--duration", f"{args.duration:g}"]
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}, "
          f"{os.cpu_count()} CPUs; runs of {args.duration:g} s at {args.concurrency} users")
    with tempfile.TemporaryDirectory(prefix="mlstress-compare-bench-") as temporary:
        scratch = args.out or Path(temporary)
        if args.sleep or both:
            part("sleep:2ms", ["--target", "sleep:2ms", *load],
                 lambda s: ["--target", f"sleep:{2 * (1 + s):g}ms", *load], slowdowns, args.pairs, scratch,
                 lambda s: None, judge_only=args.judge_only)
        if args.database or both:
            from mlstress_tui.commands.options import ensure_default_database
            from mlstress_tui.paths import default_database_path

            db = args.db or (default_database_path() if args.judge_only else ensure_default_database())
            module_dir = scratch / "module"
            module_dir.mkdir(parents=True, exist_ok=True)
            (module_dir / "bench_slowed_features.py").write_text(SLOWED_TARGET)
            python_path = os.pathsep.join([str(module_dir), os.environ.get("PYTHONPATH", "")])
            argv = ["--target", "python:bench_slowed_features:features", "--users-db", str(db), *load]
            part(f"database-{db.stem}", argv, lambda s: argv, db_slowdowns, args.pairs, scratch,
                 lambda s: {**os.environ, "PYTHONPATH": python_path, "BENCH_SLOWDOWN": f"{s:g}",
                            "BENCH_DB": str(db.resolve())}, judge_only=args.judge_only)
    print(f"\nload average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")


if __name__ == "__main__":
    main()
