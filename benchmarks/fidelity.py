"""Fidelity: the engine's `sleep:2ms` at concurrency 16 against 16 bare sleepers, alone and beside a chart renderer.

Run: python benchmarks/fidelity.py [--seconds 10] [--repeats 5] [--slice 0.25]

The bare side is 16 sleep loops in Python threads over one process per core,
with no harness: what sixteen concurrent sleepers see on this machine. Each
trial runs both sides in one window, taking turns in short slices (the engine
paused while the sleepers run, the sleepers held while the engine runs), so
both see the same moments of a shared machine; `selfcheck` measures the same
way (mlstress_tui/commands/calibration.py). The "charts" phase runs a second process that builds
plotext figures of a few thousand points without pause: the dashboard's
situation. A single tight loop (one sleeper alone) is printed beside each phase
as the floor. Prints figures and a verdict against the targets (p99 within 10%
and p50 within 5% of the bare sleepers', in every trial); always exits 0.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlstress_tui.commands.calibration import engine_in_turns, noise_of_turns, tight_loop_truth

P50_TOLERANCE = 0.05
P99_TOLERANCE = 0.10
CONCURRENCY = 16
SLEEP_S = 0.002

CHART_LOOP = """
import random, time
import plotext as plt
random.seed(1)
xs = [random.lognormvariate(0, 1) for _ in range(4000)]
ys = [random.lognormvariate(1, 0.5) for _ in range(4000)]
frames = 0
while True:
    plt.clf()
    plt.subplots(1, 2)
    plt.subplot(1, 1)
    plt.scatter(xs, ys)
    plt.subplot(1, 2)
    plt.hist(ys, bins=60)
    plt.plotsize(160, 40)
    plt.build()
    frames += 1
"""


def trial(run_dir: Path, seconds: float, slice_s: float) -> dict[str, float]:
    """Engine and bare sleepers in turns of `slice_s`, `seconds` each: p50 and p99 (ms) of both sides."""
    turns = engine_in_turns(SLEEP_S * 1000, CONCURRENCY, seconds, run_dir, slice_s)
    return {"p50": turns.engine["latency_ms"]["p50"], "p99": turns.engine["latency_ms"]["p99"],
            "requests": turns.engine["requests"], "bare_p50": turns.sleepers.percentile_ms(50) or 0.0,
            "bare_p99": turns.sleepers.percentile_ms(99) or 0.0, "bare_requests": turns.sleepers.count,
            "p50_error": turns.error("p50"), "p99_error": turns.error("p99")}


def phase(label: str, seconds: float, repeats: int, slice_s: float, out: Path) -> list[dict[str, float]]:
    trials = []
    for repeat in range(repeats):
        result = trial(out / f"{label}-{repeat}", seconds, slice_s)
        trials.append(result)
        print(f"  {label} #{repeat + 1}: 16 bare sleepers p50 {result['bare_p50']:.3f} p99 {result['bare_p99']:.3f} ms "
              f"({result['bare_requests']:,}) | engine p50 {result['p50']:.3f} p99 {result['p99']:.3f} ms "
              f"({result['requests']:,}) | engine p50 {result['p50_error']:+.1%}, p99 {result['p99_error']:+.1%}",
              flush=True)
    floor = tight_loop_truth(SLEEP_S * 1000, min(seconds, 3.0))
    print(f"  {label}: one sleeper alone (the floor) p50 {floor.percentile_ms(50):.3f} p99 {floor.percentile_ms(99):.3f} ms; "
          f"two identical groups of bare sleepers, in turns the same way: p99 {noise_of_turns(CONCURRENCY, SLEEP_S * 1000, seconds, slice_s):+.1%} "
          "apart (the noise of one trial)", flush=True)
    return trials


def verdict_line(label: str, trials: list[dict[str, float]]) -> bool:
    p50s, p99s = [t["p50_error"] for t in trials], [t["p99_error"] for t in trials]
    within = sum(abs(p50) <= P50_TOLERANCE and p99 <= P99_TOLERANCE for p50, p99 in zip(p50s, p99s))
    ok = within == len(trials)
    print(f"{label:<8} engine against 16 bare sleepers: p99 median {statistics.median(p99s):+.1%}, worst {max(p99s):+.1%}; "
          f"p50 median {statistics.median(p50s):+.1%}; {within} of {len(trials)} trials within target -> "
          f"{'PASS' if ok else 'MISS'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="time each side runs in a trial (default 10)")
    parser.add_argument("--repeats", type=int, default=5, help="trials per phase (default 5)")
    parser.add_argument("--slice", type=float, default=0.25, dest="slice_s",
                        help="length of one side's turn within a trial, seconds (default 0.25)")
    args = parser.parse_args()
    print(f"fidelity: sleep:{SLEEP_S * 1000:g}ms at concurrency {CONCURRENCY}, {os.cpu_count()} cores, {args.repeats} trials x "
          f"{args.seconds:g} s a side in {args.slice_s:g} s turns; load average {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="mlstress-fidelity-") as tmp:
        out = Path(tmp)
        alone = phase("alone", args.seconds, args.repeats, args.slice_s, out)
        charts = subprocess.Popen([sys.executable, "-c", CHART_LOOP], stdout=subprocess.DEVNULL)
        try:
            time.sleep(1.0)  # let the renderer import plotext and reach its loop
            busy = phase("charts", args.seconds, args.repeats, args.slice_s, out)
        finally:
            charts.terminate()
            charts.wait(5)

    print(f"\ntargets: engine p99 within {P99_TOLERANCE:.0%} and p50 within {P50_TOLERANCE:.0%} of the bare sleepers' "
          "in every trial")
    ok_alone = verdict_line("alone:", alone)
    ok_busy = verdict_line("charts:", busy)
    print(f"load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"verdict: {'PASS' if ok_alone and ok_busy else 'MISS'} — alone {'pass' if ok_alone else 'miss'}, "
          f"beside charts {'pass' if ok_busy else 'miss'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
