"""Memory: RSS of the engine's process and of each worker after 10 thousand no-op requests and after 10 million.

Run: python benchmarks/memory.py [--small 10000] [--large 10000000]

Each size is its own run (`sleep:0ms`, concurrency = cores, `--requests N`).
RSS (VmRSS from /proc/<pid>/status) is sampled every 10 ms while the workers
run; the figure is the last sample before the run ends and the peak. Stats are
histograms, so the large run should sit within 20 MB of the small one. Prints
figures and a verdict; always exits 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from mlstress_tui.load.engine import LoadEngine, LoadSpec
from mlstress_tui.session import RunSession
from mlstress_tui.load.targets import parse_target

BUDGET_MB = 20.0


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def measure(requests: int, run_dir: Path) -> dict:
    """Last and peak RSS per process (MB) over one run of `requests` no-ops."""
    cores = os.cpu_count() or 1
    engine = LoadEngine(parse_target("sleep:0ms"), LoadSpec(concurrency=cores, requests=requests), run_dir=run_dir)
    last: dict[str, float] = {}
    peak: dict[str, float] = {}
    done = threading.Event()

    def sample() -> None:
        pids = {"engine": os.getpid()} | {f"worker {i}": pid for i, pid in enumerate(engine.backend.pids())}
        while not done.is_set():
            reading = {name: rss_mb(pid) for name, pid in pids.items()}
            if None in reading.values() or not all(engine.backend.alive()):
                break  # a worker is exiting: its teardown is not the steady state
            last.update(reading)
            for name, value in reading.items():
                peak[name] = max(peak.get(name, 0.0), value)
            done.wait(0.01)

    started = time.perf_counter()
    session = RunSession(engine, run_dir=run_dir)
    session.start()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        while not engine.finished:
            time.sleep(0.05)
            session.pump()
    finally:
        summary = session.finish()
        done.set()
        sampler.join()
    return {"last": last, "peak": peak, "requests": summary["requests"], "seconds": time.perf_counter() - started,
            "rps": summary["throughput_rps"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000, help="requests in the small run (default 10,000)")
    parser.add_argument("--large", type=int, default=10_000_000, help="requests in the large run (default 10,000,000)")
    args = parser.parse_args()
    print(f"memory: sleep:0ms at concurrency {os.cpu_count()}, {args.small:,} then {args.large:,} requests; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="mlstress-memory-") as tmp:
        small = measure(args.small, Path(tmp) / "small")
        print(f"  small run: {small['requests']:,} requests in {small['seconds']:.1f} s", flush=True)
        large = measure(args.large, Path(tmp) / "large")
        print(f"  large run: {large['requests']:,} requests in {large['seconds']:.1f} s ({large['rps']:,.0f}/s)", flush=True)

    print(f"\n{'process':<10} {'RSS small (last/peak) MB':>26} {'RSS large (last/peak) MB':>26} {'growth MB':>10}")
    worst = 0.0
    totals = {"small": 0.0, "large": 0.0}
    for name in small["last"]:
        growth = large["last"].get(name, 0.0) - small["last"][name]
        worst = max(worst, growth)
        totals["small"] += small["last"][name]
        totals["large"] += large["last"].get(name, 0.0)
        print(f"{name:<10} {small['last'][name]:>15.1f} / {small['peak'][name]:<8.1f} "
              f"{large['last'].get(name, 0.0):>15.1f} / {large['peak'].get(name, 0.0):<8.1f} {growth:>+10.1f}")
    total_growth = totals["large"] - totals["small"]
    print(f"{'all':<10} {totals['small']:>15.1f}{'':<11} {totals['large']:>15.1f}{'':<11} {total_growth:>+10.1f}")
    print(f"load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    ok = worst <= BUDGET_MB
    print(f"verdict: {'PASS' if ok else 'MISS'} — largest per-process growth {worst:+.1f} MB from {args.small:,} to "
          f"{args.large:,} requests (target within {BUDGET_MB:g} MB); all processes together {total_growth:+.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
