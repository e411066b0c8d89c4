"""Harness capacity: no-op requests/s through the engine on every core against Locust's no-op figure, same box, same run.

Run: python benchmarks/harness_capacity.py [--seconds 10] [--locust /tmp/locust-venv/bin/locust]

Locust 2.47 lives in its own virtualenv so its gevent never meets this project:
    python3 -m venv /tmp/locust-venv && /tmp/locust-venv/bin/pip install locust==2.47.0
Its user's task only fires a request event around an empty operation; it runs
with `--processes 2` and in one process. Also shows latency resolution: our
no-op p50/p99 in microseconds against Locust's, which rounds to whole
milliseconds. Prints figures and a verdict; always exits 0.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from mlstress_tui.load.engine import LoadEngine, LoadSpec
from mlstress_tui.session import RunSession
from mlstress_tui.load.targets import parse_target

DEFAULT_LOCUST = "/tmp/locust-venv/bin/locust"

LOCUSTFILE = '''
import time
from locust import User, constant, task


class NoopUser(User):
    wait_time = constant(0)

    @task
    def noop(self):
        started = time.perf_counter()
        response_time = (time.perf_counter() - started) * 1000.0
        self.environment.events.request.fire(request_type="noop", name="noop", response_time=response_time,
                                             response_length=0, exception=None, context={})
'''


def ours(seconds: float, run_dir: Path) -> dict:
    cores = os.cpu_count() or 1
    engine = LoadEngine(parse_target("sleep:0ms"), LoadSpec(concurrency=cores, duration_s=seconds), run_dir=run_dir)
    return RunSession(engine, run_dir=engine.run_dir).run_bounded()


def locust(binary: str, seconds: float, processes: int, workdir: Path) -> dict | None:
    """Locust's aggregated figures from its stats CSV; None when the run produced none."""
    locustfile = workdir / "locustfile.py"
    locustfile.write_text(LOCUSTFILE)
    prefix = workdir / f"locust-p{processes}"
    command = [binary, "-f", str(locustfile), "--headless", "-u", "100", "-r", "100", "-t", f"{seconds:g}s",
               "--csv", str(prefix), "--loglevel", "WARNING"]
    if processes > 1:
        command += ["--processes", str(processes)]
    log = workdir / f"locust-p{processes}.log"
    with open(log, "w") as handle:
        subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, cwd=workdir, timeout=seconds + 120)
    stats = Path(f"{prefix}_stats.csv")
    if not stats.exists():
        print(f"  locust ({processes} process(es)) wrote no CSV; its log:\n{log.read_text()[-2000:]}")
        return None
    with open(stats, newline="") as handle:
        for row in csv.DictReader(handle):
            if row["Name"] == "Aggregated":
                return {"rps": float(row["Requests/s"]), "requests": int(row["Request Count"]),
                        "p50_ms": float(row["50%"]), "p99_ms": float(row["99%"]),
                        "median_ms": float(row["Median Response Time"])}
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each run (default 10)")
    parser.add_argument("--locust", default=DEFAULT_LOCUST, help=f"Locust 2.47 executable (default {DEFAULT_LOCUST})")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    print(f"harness capacity: sleep:0ms at concurrency {cores} on {cores} cores, {args.seconds:g} s per run; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    binary = args.locust if Path(args.locust).exists() else shutil.which(args.locust)

    with tempfile.TemporaryDirectory(prefix="mlstress-capacity-") as tmp:
        workdir = Path(tmp)
        summary = ours(args.seconds, workdir / "ours")
        ours_rps = summary["throughput_rps"]
        p50_us, p99_us = summary["latency_ms"]["p50"] * 1000, summary["latency_ms"]["p99"] * 1000
        print(f"mlstress engine:      {ours_rps:>10,.0f} requests/s ({summary['requests']:,} requests), "
              f"latency p50 {p50_us:.1f} µs, p99 {p99_us:.1f} µs", flush=True)
        if binary is None:
            print(f"locust not found at {args.locust}: install it in its own venv with\n"
                  "    python3 -m venv /tmp/locust-venv && /tmp/locust-venv/bin/pip install locust==2.47.0\n"
                  "verdict: INCOMPLETE — no Locust figure to compare with")
            return 0
        multi = locust(binary, args.seconds, 2, workdir)
        single = locust(binary, args.seconds, 1, workdir)

    for label, result in (("locust --processes 2:", multi), ("locust, one process:", single)):
        if result:
            print(f"{label:<21} {result['rps']:>10,.0f} requests/s ({result['requests']:,} requests), "
                  f"latency p50 {result['p50_ms'] * 1000:.0f} µs, p99 {result['p99_ms'] * 1000:.0f} µs "
                  f"(Locust reports whole milliseconds: p50 {result['p50_ms']:g} ms, p99 {result['p99_ms']:g} ms)")
    print(f"load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    if not multi:
        print("verdict: INCOMPLETE — the two-process Locust run gave no figure")
        return 0
    ratio = ours_rps / multi["rps"]
    resolved = p50_us > 0 and p99_us > 0
    ok = ratio >= 1.0 and resolved
    single_note = f", {ours_rps / single['rps']:.2f}x Locust in one process" if single else ""
    print(f"verdict: {'PASS' if ok else 'MISS'} — ours {ratio:.2f}x Locust --processes 2 (target ≥ 1.0){single_note}; "
          f"sub-millisecond latency {'resolved' if resolved else 'NOT resolved'} (p50 {p50_us:.1f} µs vs Locust "
          f"{multi['p50_ms']:g} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
