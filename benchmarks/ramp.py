"""The ramp: where it puts the knee of a known cliff, what it finds on the default database, and what it costs.

Run: python benchmarks/ramp.py [--truth] [--database] [--cost] [--repeats 3] [--step-duration 2]
                               [--db-step-duration 5] [--db PATH] [--out DIR]

With none of --truth, --database, --cost, all three parts run.

1. Ground truth: `sleep:5ms` through a pool of 4 saturates at 4 users (800
   req/s). The ramp 1, 2, … 8 (`--step 1 --max 8`) and the doubling ramp 1, 2,
   4 … 64 each run --repeats times; per run the knee, the safe level and the
   USL fit (σ, κ, N*, r²), then medians. Target: median knee in 3–6 and median
   N* in 2.5–8, for both ramps.
2. The default database: `mlstress-tui ramp --db PATH --max 64 --headless`
   (closed loop, 1 → 64 users doubling) as a user runs it; its steps table,
   knee, safe level and why, and USL fit. No target: figures only.
3. The ramp's cost: `sleep:1ms` with a slot per user, 1 → 128 users doubling
   (8 levels) and an SLA no step breaks. Wall time from `session.start()` (worker
   start-up included, and shown apart) to `session.finish()` returning, against
   8 × the step duration, --repeats times. Target: median overhead
   (wall − 8 × step) at most one step's duration.

Prints figures and MET/MISSED per target; always exits 0.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from mlstress_tui.commands.ramp import print_ramp
from mlstress_tui.load.engine import LoadEngine, LoadSpec
from mlstress_tui.load.targets import parse_target
from mlstress_tui.session import RampPlan, RunSession

TRUTH_TARGET, TRUTH_POOL, TRUTH_SATURATION = "sleep:5ms", 4, 4
KNEE_RANGE = (3.0, 6.0)
PEAK_RANGE = (2.5, 8.0)
COST_TARGET, COST_LEVELS = "sleep:1ms", 8
# An SLA and an error budget no step of the cost ramp can break, so it runs all its levels.
NEVER_BREAKS_MS = 1e9
# The run's own bound is a safety net only: the ramp's end stops every run here.
SAFETY_SLACK_S = 30.0


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def median_or_none(values: list[float | None]) -> float | None:
    """Median where None (no peak: κ = 0) counts as infinitely far; None when that is where the median falls."""
    ordered = sorted(math.inf if value is None else value for value in values)
    if not ordered:
        return None
    middle = statistics.median(ordered)
    return None if math.isinf(middle) else middle


def show(value: float | None, spec: str = ".1f") -> str:
    return "none" if value is None else format(value, spec)


def ramp_session(target: str, plan: RampPlan, run_dir: Path, *, pool_size: int | None,
                 marks: dict[str, float] | None = None) -> RunSession:
    """A session that runs `plan` and stops when the ramp ends; `marks` gets the clock time the ramp ended."""
    bound = len(plan.levels()) * plan.step_duration_s * 2 + SAFETY_SLACK_S
    engine = LoadEngine(parse_target(target), LoadSpec(concurrency=int(plan.start), pool_size=pool_size,
                                                       duration_s=bound), run_dir=run_dir)
    session = RunSession(engine, run_dir=run_dir, sla_p95_ms=plan.sla_p95_ms)

    def ended(_ramp: object) -> None:
        if marks is not None:
            marks["ramp_end"] = time.perf_counter()
        session.stop()

    session.start_ramp(plan, on_end=ended)
    return session


# -- 1. ground truth ------------------------------------------------------------


def truth(args: argparse.Namespace, root: Path) -> None:
    plans = {
        "step 1 to 8": RampPlan(start=1, maximum=8, step=1, factor=None, step_duration_s=args.step_duration),
        "doubling to 64": RampPlan(start=1, maximum=64, factor=2.0, step_duration_s=args.step_duration),
    }
    print(f"\n== 1. ground truth: {TRUTH_TARGET} through a pool of {TRUTH_POOL} saturates at {TRUTH_SATURATION} users "
          f"({TRUTH_POOL * 1000 / 5:.0f} req/s); {args.repeats} runs per ramp, {args.step_duration:g} s steps; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    for name, plan in plans.items():
        print(f"\n-- ramp {name} (levels {', '.join(f'{level:g}' for level in plan.levels())})")
        print(f"  {'run':>3} {'knee':>5} {'safe':>5} {'sigma':>8} {'kappa':>9} {'N*':>6} {'r2':>6}  steps (users: req/s) / stopped because")
        knees: list[float | None] = []
        peaks: list[float | None] = []
        for run in range(1, args.repeats + 1):
            run_dir = root / f"truth-{name.split()[0]}-{run}"
            session = ramp_session(TRUTH_TARGET, plan, run_dir, pool_size=TRUTH_POOL)
            session.run_bounded(poll_s=0.05)
            report = session.ramp_report or {}
            usl = report.get("usl") or {}
            knees.append(report.get("knee_concurrency"))
            peaks.append(usl.get("peak_concurrency"))
            steps = "  ".join(f"{s['level']:g}: {s['throughput_rps']:.0f}" for s in report.get("steps", []))
            print(f"  {run:>3} {show(report.get('knee_concurrency'), 'g'):>5} {show(report.get('safe_concurrency'), 'g'):>5} "
                  f"{show(usl.get('sigma'), '.4f'):>8} {show(usl.get('kappa'), '.2e'):>9} "
                  f"{show(usl.get('peak_concurrency')):>6} {show(usl.get('r2'), '.3f'):>6}  {steps}", flush=True)
            print(f"{'':>52}{report.get('stopped_because')}")
        knee = median_or_none(knees)
        peak = median_or_none(peaks)
        knee_ok = knee is not None and KNEE_RANGE[0] <= knee <= KNEE_RANGE[1]
        peak_ok = peak is not None and PEAK_RANGE[0] <= peak <= PEAK_RANGE[1]
        print(f"  median: knee {show(knee, 'g')} users (target {KNEE_RANGE[0]:g}–{KNEE_RANGE[1]:g}): {verdict(knee_ok)}; "
              f"N* {show(peak)} (target {PEAK_RANGE[0]:g}–{PEAK_RANGE[1]:g}): {verdict(peak_ok)}")


# -- 2. the default database ------------------------------------------------------


def database(args: argparse.Namespace, root: Path) -> None:
    if args.db is None:
        from mlstress_tui.commands.options import ensure_default_database

        args.db = ensure_default_database()
    run_dir = root / "database"
    command = [sys.executable, "-m", "mlstress_tui", "ramp", "--db", str(args.db), "--max", "64",
               "--step-duration", f"{args.db_step_duration:g}", "--headless", "--out", str(run_dir)]
    print(f"\n== 2. the default database: closed loop 1 → 64 users doubling, {args.db_step_duration:g} s steps; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    print(f"  $ mlstress-tui {' '.join(command[3:])}", flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    ramp_file = run_dir / "ramp.json"
    if done.returncode != 0 or not ramp_file.exists():
        print(f"  the ramp command failed (exit {done.returncode}):\n{done.stderr}{done.stdout}")
        return
    report = json.loads(ramp_file.read_text())
    print_ramp(report, sys.stdout)
    summary = json.loads((run_dir / "summary.json").read_text())
    print(f"  {len(report['steps'])} steps in {wall:.1f} s of wall time (command start to exit); "
          f"{summary['transition_s']:.2f} s in transitions; "
          f"workers: {summary['harness'].get('verdict')} overall; no target: figures only")


# -- 3. the ramp's cost -------------------------------------------------------------


def cost_run(args: argparse.Namespace, run_dir: Path) -> dict:
    plan = RampPlan(start=1, maximum=2 ** (COST_LEVELS - 1), factor=2.0, step_duration_s=args.step_duration,
                    sla_p95_ms=NEVER_BREAKS_MS, max_error_rate=1.0)
    marks: dict[str, float] = {}
    session = ramp_session(COST_TARGET, plan, run_dir, pool_size=None, marks=marks)
    began = time.perf_counter()
    session.start()
    started = time.perf_counter()
    summary = session.run_until_finished(threading.Event(), poll_s=0.1)
    finished = time.perf_counter()
    report = session.ramp_report or {}
    steps = report.get("steps", [])
    ramp_end = marks.get("ramp_end", finished)
    return {
        "levels": len(plan.levels()), "steps": len(steps), "stopped_because": report.get("stopped_because"),
        "wall": finished - began, "startup": started - began, "ramping": ramp_end - started,
        "finish": finished - ramp_end, "step_sum": sum(s["seconds"] + s.get("warmup_s", 0.0) for s in steps),
        "shortest": min((s["seconds"] + s.get("warmup_s", 0.0) for s in steps), default=0.0),
        "transition": summary["transition_s"], "engine_s": summary["duration_s"], "load_s": summary["load_s"],
        "top_rps": max((s["throughput_rps"] for s in steps), default=0.0),
    }


def cost(args: argparse.Namespace, root: Path) -> None:
    nominal = COST_LEVELS * args.step_duration
    print(f"\n== 3. the ramp's cost: {COST_TARGET}, a slot per user, 1 → {2 ** (COST_LEVELS - 1)} users doubling "
          f"({COST_LEVELS} levels of {args.step_duration:g} s = {nominal:g} s), SLA never broken; "
          f"{args.repeats} runs; load average {os.getloadavg()[0]:.2f}", flush=True)
    print(f"  {'run':>3} {'wall':>7} {'start-up':>8} {'ramping':>8} {'finish':>7} {'Σ steps':>8} {'load':>7} "
          f"{'transit.':>8} {'shortest':>8} {'overhead':>9} {'/ step':>7}  top req/s")
    overheads: list[float] = []
    transitions: list[float] = []
    startups: list[float] = []
    load_gaps: list[float] = []
    shortest: list[float] = []
    for run in range(1, args.repeats + 1):
        row = cost_run(args, root / f"cost-{run}")
        overhead = row["wall"] - nominal
        overheads.append(overhead)
        transitions.append(row["transition"])
        startups.append(row["startup"])
        load_gaps.append(abs(row["load_s"] - row["step_sum"]))
        shortest.append(row["shortest"])
        print(f"  {run:>3} {row['wall']:>6.2f}s {row['startup']:>7.2f}s {row['ramping']:>7.2f}s {row['finish']:>6.2f}s "
              f"{row['step_sum']:>7.2f}s {row['load_s']:>6.2f}s {row['transition']:>7.2f}s {row['shortest']:>7.2f}s "
              f"{overhead:>8.2f}s {overhead / args.step_duration:>6.0%}  {row['top_rps']:,.0f}", flush=True)
        if row["steps"] != row["levels"]:
            print(f"      stopped after {row['steps']} of {row['levels']} steps: {row['stopped_because']} "
                  "(the overhead above is against all levels, so it is not the ramp's cost)")
    overhead = statistics.median(overheads)
    print("  wall = start-up (spawning workers) + ramping (start() returned → the ramp ended) + finish (→ finish() returned);"
          "\n  'transit.' is summary transition_s: ticks in which the workers were still applying a level change")
    print(f"  median: overhead {overhead:.2f} s = {overhead / args.step_duration:.0%} of one step "
          f"(start-up {statistics.median(startups):.2f} s, transitions {statistics.median(transitions):.2f} s); "
          f"target ≤ {args.step_duration:g} s (one step): {verdict(overhead <= args.step_duration)}")
    gap, short = statistics.median(load_gaps), min(shortest)
    print(f"  load time against the sum of the steps (each held warm-up included): median gap {gap:.2f} s, target "
          f"≤ 0.5 s: {verdict(gap <= 0.5)}; shortest step held {short:.2f} s of {args.step_duration:g} s: "
          f"{verdict(short >= args.step_duration - 1e-3)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--truth", action="store_true", help="part 1: the knee of sleep:5ms through a pool of 4")
    parser.add_argument("--database", action="store_true", help="part 2: the ramp on the default database")
    parser.add_argument("--cost", action="store_true", help="part 3: wall time of an 8-step ramp against its steps")
    parser.add_argument("--repeats", type=int, default=3, help="runs per ramp in parts 1 and 3 (default 3)")
    parser.add_argument("--step-duration", type=float, default=2.0, help="seconds per step in parts 1 and 3 (default 2)")
    parser.add_argument("--db-step-duration", type=float, default=5.0, help="seconds per step in part 2 (default 5)")
    parser.add_argument("--db", type=Path, help="database for part 2 (default: the embedded one, generated if missing)")
    parser.add_argument("--out", type=Path, help="keep every run's ramp.json, summary.json and intervals.jsonl here")
    args = parser.parse_args()
    everything = not (args.truth or args.database or args.cost)
    print(f"ramp benchmark on {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="mlstress-ramp-") as tmp:
        root = args.out or Path(tmp)
        if everything or args.truth:
            truth(args, root)
        if everything or args.database:
            database(args, root)
        if everything or args.cost:
            cost(args, root)
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
