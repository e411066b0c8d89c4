"""`mlstress-tui selfcheck`: how much of a measured latency is the harness's own?"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mlstress_tui.bounds import Bound, HOUR_S
from mlstress_tui.commands.calibration import TURN_S, engine_in_turns
from mlstress_tui.commands.options import bounded
from mlstress_tui.errors import EXIT_CRITERIA_FAILED, EXIT_OK
from mlstress_tui.load.engine import LoadEngine
from mlstress_tui.load.spec import LoadSpec
from mlstress_tui.load.targets import Target
from mlstress_tui.load.targets.sleep import SleepTarget
from mlstress_tui.paths import default_run_dir
from mlstress_tui.session import RunSession

# The fidelity bounds of the load engine issue: the engine against as many bare sleepers, in turns.
P50_TOLERANCE = 0.05
P99_TOLERANCE = 0.15
CALIBRATION_MS = 2.0
CALIBRATION_CONCURRENCY = 16


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("selfcheck", help="measure the harness's own overhead and fidelity",
                                   description="Run the calibration target and report the harness's overhead and accuracy.")
    parser.add_argument("--seconds", type=bounded(Bound(0, HOUR_S, above=True, noun="seconds", note="an hour")), default=3.0, metavar="S", help="length of each measured phase; in the calibration the engine and the bare sleepers each run S s, taking turns (default 3)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="where the phases' runs go (default ./mlstress-runs/<UTC timestamp>/)")
    parser.set_defaults(func=run)


def measure(target: Target, load: LoadSpec, run_dir: Path) -> dict:
    return RunSession(LoadEngine(target, load, run_dir=run_dir), run_dir=run_dir, seed=load.seed).run_bounded()


def run(args: argparse.Namespace) -> int:
    out = args.out or default_run_dir()
    cores = os.cpu_count() or 1
    print(f"selfcheck: {cores} cores, {args.seconds:g} s per phase -> {out}", file=sys.stderr)

    noop = measure(SleepTarget(0.0),
                   LoadSpec(concurrency=cores, duration_s=args.seconds), out / "noop")
    overhead_us = noop["latency_ms"]["p50"] * 1000
    print(f"harness:     {noop['throughput_rps']:,.0f} no-op requests/s on {cores} processes, "
          f"overhead per request p50 {overhead_us:.1f} µs, p99 {noop['latency_ms']['p99'] * 1000:.1f} µs")

    turns = engine_in_turns(CALIBRATION_MS, CALIBRATION_CONCURRENCY, args.seconds, out / "sleep-2ms")
    bare, measured = turns.sleepers, turns.engine["latency_ms"]
    p50_error, p99_error = turns.error("p50"), turns.error("p99")
    print(f"sleep:{CALIBRATION_MS:g}ms at concurrency {CALIBRATION_CONCURRENCY}: bare sleepers (no harness) p50 "
          f"{bare.percentile_ms(50):.3f} ms p99 {bare.percentile_ms(99):.3f} ms; through the engine, taking turns "
          f"with them every {TURN_S:g} s: p50 {measured['p50']:.3f} ms ({p50_error:+.1%}) "
          f"p99 {measured['p99']:.3f} ms ({p99_error:+.1%})")
    trustworthy = abs(p50_error) <= P50_TOLERANCE and abs(p99_error) <= P99_TOLERANCE
    if trustworthy:
        print(f"verdict: OK — measured latency is within {P50_TOLERANCE:.0%} (p50) and {P99_TOLERANCE:.0%} (p99) of the bare sleepers'")
        return EXIT_OK
    print(f"verdict: NOT TRUSTWORTHY — the harness or a busy machine adds latency beyond {P50_TOLERANCE:.0%} (p50) / "
          f"{P99_TOLERANCE:.0%} (p99); close other load and run again")
    return EXIT_CRITERIA_FAILED
