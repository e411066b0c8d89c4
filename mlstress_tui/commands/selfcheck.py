"""`mlstress-tui selfcheck`: how much of a measured latency is the harness's own?"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from mlstress_tui.bounds import Bound, HOUR_S
from mlstress_tui.commands.options import bounded
from mlstress_tui.errors import EXIT_CRITERIA_FAILED, EXIT_OK
from mlstress_tui.load.engine import LoadEngine
from mlstress_tui.load.spec import LoadSpec
from mlstress_tui.load.targets import Target
from mlstress_tui.load.targets.sleep import SleepTarget
from mlstress_tui.paths import default_run_dir
from mlstress_tui.results.histogram import LatencyHistogram
from mlstress_tui.session import RunSession

# The fidelity bounds of the load engine issue: measured vs tight-loop truth.
P50_TOLERANCE = 0.05
P99_TOLERANCE = 0.15
CALIBRATION_MS = 2.0
CALIBRATION_CONCURRENCY = 16


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("selfcheck", help="measure the harness's own overhead and fidelity",
                                   description="Run the calibration target and report the harness's overhead and accuracy.")
    parser.add_argument("--seconds", type=bounded(Bound(0, HOUR_S, above=True, noun="seconds", note="an hour")), default=3.0, metavar="S", help="length of each measured phase (default 3)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="where the phases' runs go (default ./mlstress-runs/<UTC timestamp>/)")
    parser.set_defaults(func=run)


def tight_loop_truth(sleep_ms: float, seconds: float) -> LatencyHistogram:
    """The calibration target measured with nothing else around it: one thread, a bare loop."""
    clock, pause = time.perf_counter_ns, sleep_ms / 1000.0
    samples = []
    deadline = clock() + int(seconds * 1e9)
    while (started := clock()) < deadline:
        time.sleep(pause)
        samples.append(clock() - started)
    histogram = LatencyHistogram()
    histogram.record_many(np.array(samples, dtype=np.int64))
    return histogram


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

    truth = tight_loop_truth(CALIBRATION_MS, args.seconds)
    true_p50, true_p99 = truth.percentile_ms(50), truth.percentile_ms(99)
    measured = measure(SleepTarget(CALIBRATION_MS),
                       LoadSpec(concurrency=CALIBRATION_CONCURRENCY, duration_s=args.seconds), out / "sleep-2ms")
    p50, p99 = measured["latency_ms"]["p50"], measured["latency_ms"]["p99"]
    p50_error, p99_error = p50 / true_p50 - 1, p99 / true_p99 - 1
    print(f"sleep:{CALIBRATION_MS:g}ms: true (bare loop) p50 {true_p50:.3f} ms p99 {true_p99:.3f} ms; "
          f"measured at concurrency {CALIBRATION_CONCURRENCY} p50 {p50:.3f} ms ({p50_error:+.1%}) "
          f"p99 {p99:.3f} ms ({p99_error:+.1%})")
    trustworthy = abs(p50_error) <= P50_TOLERANCE and abs(p99_error) <= P99_TOLERANCE
    if trustworthy:
        print(f"verdict: OK — measured latency is within {P50_TOLERANCE:.0%} (p50) and {P99_TOLERANCE:.0%} (p99) of the truth")
        return EXIT_OK
    print(f"verdict: NOT TRUSTWORTHY — the harness or a busy machine adds latency beyond {P50_TOLERANCE:.0%} (p50) / "
          f"{P99_TOLERANCE:.0%} (p99); close other load and run again")
    return EXIT_CRITERIA_FAILED
