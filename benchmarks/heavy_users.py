"""Heavy users: does `outliers` find a breach event count that is known in advance, and what does it say on real data?

Run: python benchmarks/heavy_users.py [--truth] [--database] [--db PATH] [--requests-per-stratum 40]

With neither --truth nor --database, both parts run.

1. Ground truth: a python target whose latency is a + b × the user's event count
   (a sleep, so 16 users run side by side without sharing a core), on the
   default database's users. For a threshold T the true breach count is
   (T − a) / b; the command must find it within ±25%. Three thresholds, so the
   breach falls in different strata: 50, 200 and 500 ms with a = 1 ms and
   b = 0.1 ms per event (true breach 490, 1,990 and 4,990 events).
2. The default database: `mlstress-tui outliers --db PATH --headless` (concurrency
   1, threshold 200 ms) as a user runs it: the strata table, the breach count,
   the population share above it and the action line. No target: figures only.

Prints figures and MET/MISSED per target; always exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

A_MS = 1.0
B_MS_PER_EVENT = 0.1
THRESHOLDS_MS = (50.0, 200.0, 500.0)
TOLERANCE = 0.25

TARGET_MODULE = '''
import os, sqlite3, time
_COUNTS = {}
def features(user_id):
    if not _COUNTS:
        connection = sqlite3.connect(f"file:{os.environ['BENCH_USERS_DB']}?mode=ro", uri=True)
        _COUNTS.update(connection.execute("SELECT user_id, event_count FROM mlstress_user_stats"))
        connection.close()
    time.sleep((%(a)r + %(b)r * _COUNTS.get(user_id, 0)) / 1000)
    return {"user_id": user_id}
'''


def default_database() -> Path:
    from mlstress_tui.commands.options import ensure_default_database

    return ensure_default_database()


def outliers(argv: list[str], out: Path, env: dict | None = None) -> tuple[dict, float, str]:
    """The real command, as a user runs it; its outliers.json, wall time and printed table."""
    started = time.monotonic()
    process = subprocess.run([sys.executable, "-m", "mlstress_tui", "outliers", "--headless", "--out", str(out), *argv],
                             capture_output=True, text=True, env=env)
    wall = time.monotonic() - started
    if process.returncode != 0:
        raise SystemExit(f"outliers failed ({process.returncode}): {process.stderr[-2000:]}")
    return json.loads((out / "outliers.json").read_text()), wall, process.stdout


def truth(db: Path, per_stratum: int, scratch: Path) -> None:
    print(f"\n== ground truth: latency {A_MS:g} ms + {B_MS_PER_EVENT:g} ms x events, users of {db}")
    module_dir = scratch / "module"
    module_dir.mkdir()
    (module_dir / "bench_linear.py").write_text(TARGET_MODULE % {"a": A_MS, "b": B_MS_PER_EVENT})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(module_dir), os.environ.get("PYTHONPATH", "")]),
           "BENCH_USERS_DB": str(db)}
    print(f"  {'threshold':>10} {'true':>8} {'found':>8} {'ratio':>7} {'share above':>12} {'users':>7} {'wall':>7}  target ±25%")
    for threshold in THRESHOLDS_MS:
        true = (threshold - A_MS) / B_MS_PER_EVENT
        report, wall, _ = outliers(["--target", "python:bench_linear:features", "--users-db", str(db),
                                    "--threshold-ms", f"{threshold:g}", "--concurrency", "16", "--timeout", "10",
                                    "--requests-per-stratum", str(per_stratum)],
                                   scratch / f"truth-{threshold:g}", env)
        found = report["breach_event_count"]
        ratio = found / true if found else float("nan")
        verdict = "MET" if found and abs(ratio - 1) <= TOLERANCE else "MISSED"
        print(f"  {threshold:>8g}ms {true:>8,.0f} {found if found is not None else 'none':>8} {ratio:>7.3f} "
              f"{report['population_share_above']:>12.4%} {report['users_above']:>7,} {wall:>6.1f}s  {verdict}")


def database(db: Path, per_stratum: int, scratch: Path) -> None:
    print(f"\n== the default database: mlstress-tui outliers --db {db} (concurrency 1, threshold 200 ms)")
    report, wall, printed = outliers(["--db", str(db), "--requests-per-stratum", str(per_stratum)],
                                     scratch / "database")
    table = printed[printed.index("    Stratum"):] if "    Stratum" in printed else printed[-3000:]
    print(table.rstrip())
    print(f"  wall time {wall:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--truth", action="store_true")
    parser.add_argument("--database", action="store_true")
    parser.add_argument("--db", type=Path, help="database (default: the embedded default one)")
    parser.add_argument("--requests-per-stratum", type=int, default=40)
    args = parser.parse_args()
    both = not (args.truth or args.database)
    db = args.db or default_database()
    with tempfile.TemporaryDirectory(prefix="mlstress-heavy-") as scratch:
        if args.truth or both:
            truth(db, args.requests_per_stratum, Path(scratch))
        if args.database or both:
            database(db, max(args.requests_per_stratum, 200), Path(scratch))


if __name__ == "__main__":
    main()
