"""The books of a run, case by case: what was owed, sent, answered, lost or unsent, beside the target's own count.

Run: python benchmarks/accounting.py [--seconds 4]

Each case is a real `mlstress-tui run --headless` (worker processes, a real
fault injected from outside where the case needs one). The target, where it
matters, is `counts_its_calls` from tests/pipeline_fixtures.py: it appends a
line per call it receives, so the tool's figures can be held against the
target's own. Columns:

  owed      what the run owed: --requests N, or the open loop's offered_arrivals
  requests  answered (ok + errors);  unfin.  still in a call at the end
  unsent    owed by the open loop, never sent;  paused  arrivals that fell in a pause (not owed)
  lost      sent by a worker that died, outcome unknown (never sent again)
  target    calls the target itself counted (where it counts)
  balance   owed − (requests + unfin. + unsent + paused + lost): 0 within a request per worker

Prints the table; always exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"


def run(args: list[str], run_dir: Path, *, env: dict[str, str] | None = None,
        during: object = None) -> tuple[dict, subprocess.Popen]:
    process = subprocess.Popen([sys.executable, "-m", "mlstress_tui", "run", "--headless", *args, "--out", str(run_dir)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=TESTS,
                               env={**os.environ, "PYTHONPATH": str(TESTS), **(env or {})})
    if during is not None:
        first = run_dir / "intervals.jsonl"
        deadline = time.monotonic() + 60
        while not (first.exists() and first.read_text().count("\n")) and time.monotonic() < deadline:
            time.sleep(0.05)
        during(process)  # type: ignore[operator]
    process.communicate(timeout=300)
    return json.loads((run_dir / "summary.json").read_text()), process


def worker(process: subprocess.Popen, slot: int) -> int:
    found = subprocess.run(["pgrep", "-P", str(process.pid), "-f", f"mlstress-tui worker {slot}:"],
                           capture_output=True, text=True).stdout.split()
    return int(found[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="length of the timed cases (default 4)")
    options = parser.parse_args()
    seconds = f"{options.seconds:g}"
    with tempfile.TemporaryDirectory(prefix="mlstress-accounting-") as tmp:
        root = Path(tmp)
        users = root / "users.sqlite"
        subprocess.run([sys.executable, "-m", "mlstress_tui", "generate", "--users", "2000", "--mean-events", "5",
                        "--out", str(users)], check=True, capture_output=True)
        rows = []

        def case(name: str, args: list[str], *, owed: int | None = None, counting: bool = False,
                 during: object = None) -> None:
            run_dir = root / name.replace(" ", "-")
            calls = root / f"{run_dir.name}.calls"
            env = {"MLSTRESS_CALL_LOG": str(calls)} if counting else None
            summary, process = run(args, run_dir, env=env, during=during)
            owed_n = owed if owed is not None else summary.get("offered_arrivals")
            accounted = (summary["requests"] + summary["unfinished"] + summary["unsent"]
                         + summary.get("paused_arrivals", 0) + summary["faults"]["requests_lost"])
            target = len(calls.read_text().splitlines()) if counting and calls.exists() else None
            rows.append((name, owed_n, summary, target, None if owed_n is None else owed_n - accounted,
                         process.returncode))

        rate = 1000
        case("open loop, steady", ["--target", "sleep:2ms", "--rate", str(rate), "--duration", seconds])


        case("open loop, a kill -9", ["--target", "python:pipeline_fixtures:counts_its_calls", "--users-db",
                                      str(users), "--rate", "200", "--duration", seconds, "--workers", "2"],
             counting=True, during=lambda process: os.kill(worker(process, 1), signal.SIGKILL))
        case("requests, a kill -9", ["--target", "python:pipeline_fixtures:counts_its_calls", "--users-db",
                                     str(users), "--concurrency", "8", "--workers", "2", "--requests", "2000"],
             owed=2000, counting=True, during=lambda process: os.kill(worker(process, 1), signal.SIGKILL))
        case("requests, hung calls", ["--target", "python:pipeline_fixtures:hangs_every_fourth", "--users-db",
                                      str(users), "--concurrency", "4", "--requests", "200", "--timeout", "0.5"],
             owed=200)
        case("requests, a fork", ["--target", "python:pipeline_fixtures:forks_once", "--users-db", str(users),
                                  "--concurrency", "2", "--workers", "1", "--requests", "500"], owed=500)
        case("open loop, quota", ["--target", "sleep:1ms", "--rate", "2000", "--requests", "1000"], owed=1000)

    print(f"accounting on {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    print(f"  {'case':<24} {'owed':>7} {'requests':>9} {'unfin.':>7} {'unsent':>7} {'paused':>7} {'lost':>6} "
          f"{'target':>7} {'balance':>8}  exit")
    for name, owed, summary, target, balance, code in rows:
        print(f"  {name:<24} {'' if owed is None else f'{owed:,.0f}':>7} {summary['requests']:>9,} "
              f"{summary['unfinished']:>7,} {summary['unsent']:>7,} {summary.get('paused_arrivals', 0):>7,} "
              f"{summary['faults']['requests_lost']:>6,} {'' if target is None else f'{target:,}':>7} "
              f"{'' if balance is None else f'{balance:+,.0f}':>8}  {code}")
    print("  a target count above requests + lost would be a request sent twice; balance beyond ± a request per "
          "worker is a request in no field")
    return 0


if __name__ == "__main__":
    sys.exit(main())
