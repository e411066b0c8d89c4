"""Open loop under overload: `sleep:10ms` behind a pool of 2 offered 400 requests/s, twice what it can serve.

Run: python benchmarks/open_loop.py [--seconds 5] [--out DIR]

Expected: about 200 requests/s achieved, latency (from each request's scheduled
start) climbing into seconds as the queue grows, service time (from the actual
send) staying near 10 ms. Prints each interval from the run's intervals.jsonl
and the summary, with a verdict; always exits 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from mlstress_tui.load.engine import LoadEngine, LoadSpec
from mlstress_tui.session import RunSession
from mlstress_tui.results.kinds import OPEN
from mlstress_tui.load.targets import parse_target

SLEEP_MS = 10.0
POOL = 2
RATE = 400.0
CAPACITY = POOL * 1000.0 / SLEEP_MS


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="run length (default 5)")
    parser.add_argument("--out", type=Path, help="keep the run's summary.json and intervals.jsonl here (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlstress-open-loop-") as tmp:
        run_dir = args.out or Path(tmp)
        engine = LoadEngine(parse_target(f"sleep:{SLEEP_MS:g}ms"),
                            LoadSpec(mode=OPEN, rate=RATE, pool_size=POOL, duration_s=args.seconds, timeout_s=30.0),
                            run_dir=run_dir)
        summary = RunSession(engine, run_dir=engine.run_dir).run_bounded()
        lines = [json.loads(line) for line in (run_dir / "intervals.jsonl").read_text().splitlines()]

    print(f"open loop: sleep:{SLEEP_MS:g}ms, pool {POOL} (capacity {CAPACITY:.0f}/s), offered {RATE:.0f}/s for {args.seconds:g} s\n")
    print(f"{'t (s)':>6} {'achieved/s':>11} {'p50 ms':>9} {'p99 ms':>9} {'service p50':>12} {'service p99':>12} {'pool wait p99':>14} {'late':>6}")
    previous_t = 0.0
    for line in lines:
        # The run's last line covers only what was left after the last full interval.
        partial = "  (partial)" if line["t"] - previous_t < 0.5 else ""
        previous_t = line["t"]
        print(f"{line['t']:>6.2f} {line['throughput_rps']:>11.1f} {line['latency_ms']['p50']:>9.1f} {line['latency_ms']['p99']:>9.1f} "
              f"{line['service_ms']['p50']:>12.2f} {line['service_ms']['p99']:>12.2f} {line['pool_wait_ms']['p99']:>14.1f} "
              f"{line.get('late_starts', 0):>6}{partial}")
    latency, service = summary["latency_ms"], summary["service_ms"]
    print(f"\nsummary: {summary['requests']} requests in {summary['duration_s']:.2f} s = {summary['throughput_rps']:.1f}/s achieved "
          f"of {summary.get('offered_rps') or RATE:.0f}/s offered; "
          f"{summary.get('harness', {}).get('late_starts', 0)} could not start on time; errors {summary['errors']} {summary['errors_by_kind'] or ''}")
    print(f"latency (scheduled start -> done) p50 {latency['p50']:.1f} p99 {latency['p99']:.1f} max {latency['max']:.1f} ms; "
          f"service (send -> done) p50 {service['p50']:.2f} p99 {service['p99']:.2f} ms; "
          f"pool wait p99 {summary['pool_wait_ms']['p99']:.1f} ms")

    full = [line for line in lines if line["requests"]]
    climbing = len(full) >= 2 and full[-1]["latency_ms"]["p99"] > full[0]["latency_ms"]["p99"] * 4
    achieved_ok = abs(summary["throughput_rps"] / CAPACITY - 1) <= 0.10
    seconds_ok = latency["p99"] >= 1000.0
    service_ok = abs(service["p50"] / SLEEP_MS - 1) <= 0.10
    ok = achieved_ok and seconds_ok and service_ok and climbing
    print(f"verdict: {'PASS' if ok else 'MISS'} — achieved {summary['throughput_rps']:.0f}/s "
          f"({'≈' if achieved_ok else 'not'} {CAPACITY:.0f}/s), p99 {latency['p99'] / 1000:.2f} s "
          f"({'in seconds' if seconds_ok else 'below 1 s'}, {'climbing' if climbing else 'not climbing'} per interval), "
          f"service p50 {service['p50']:.2f} ms ({'near' if service_ok else 'far from'} {SLEEP_MS:g} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
