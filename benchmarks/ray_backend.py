"""Beyond one box: the Ray backend against local worker processes, same machine, same run.

Run: python benchmarks/ray_backend.py [--seconds 8] [--rounds 2]

Starts Ray's multi-node test cluster (two fake nodes of one CPU each on this
machine) and measures, alternating the backends round by round:
  - fidelity: sleep:2ms at concurrency 16, p50 and p99 through Ray vs local (goal: p50 within 5%, p99 within 15%);
  - capacity: no-op requests/s (sleep:0ms, one worker per CPU) through Ray vs local (goal: within 20%);
  - the open-loop split: 1,000 requests/s for 10 s over the two nodes, requests per node, total vs scheduled;
  - time from command to the first request: `mlstress-tui run --headless` local, and with --ray local
    (which starts and stops a cluster of its own).
Medians of the rounds; figures and verdicts only, always exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

from mlstress_tui.load.engine import LoadEngine, LoadSpec
from mlstress_tui.load.targets import parse_target
from mlstress_tui.session import RunSession


def measure(target: str, spec: LoadSpec, work: Path, name: str) -> dict:
    run_dir = work / name
    session = RunSession(LoadEngine(parse_target(target), spec, run_dir=run_dir), run_dir=run_dir)
    session.start()
    return session.run_until_finished(threading.Event())


def both(target: str, rounds: int, work: Path, **load) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {"local": [], "ray": []}
    for round_ in range(rounds):
        for backend in ("local", "ray"):
            spec = LoadSpec(ray="auto" if backend == "ray" else None, workers=2, **load)
            runs[backend].append(measure(target, spec, work, f"{target}-{backend}-{round_}"))
    return runs


def median(runs: list[dict], *path: str) -> float:
    values = []
    for run in runs:
        value = run
        for key in path:
            value = value[key]
        values.append(value)
    return statistics.median(values)


def first_request_s(extra: list[str], work: Path, name: str) -> float:
    """Seconds from launching the command to its run's start instant (summary.json's started_at)."""
    out = work / name
    launched = time.time()
    subprocess.run([sys.executable, "-m", "mlstress_tui", "run", "--headless", "--target", "sleep:0ms",
                    "--requests", "1", "--out", str(out), *extra], capture_output=True, check=False,
                   env={**os.environ, "RAY_AUTH_MODE": "disabled"})
    started = datetime.fromisoformat(json.loads((out / "summary.json").read_text())["started_at"]).timestamp()
    return started - launched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    import ray
    from ray.cluster_utils import Cluster

    began = time.perf_counter()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
    print(f"Ray {ray.__version__}: two fake nodes of one CPU each up in {time.perf_counter() - began:.1f} s")
    try:
        with tempfile.TemporaryDirectory(prefix="mlstress-ray-") as temporary:
            work = Path(temporary)
            fidelity = both("sleep:2ms", args.rounds, work, concurrency=16, duration_s=args.seconds)
            p50 = {backend: median(runs, "latency_ms", "p50") for backend, runs in fidelity.items()}
            p99 = {backend: median(runs, "latency_ms", "p99") for backend, runs in fidelity.items()}
            p50_off, p99_off = p50["ray"] / p50["local"] - 1, p99["ray"] / p99["local"] - 1
            print(f"\nfidelity, sleep:2ms at concurrency 16 (median of {args.rounds} rounds each):")
            for backend in ("local", "ray"):
                print(f"  {backend:<6} p50 {p50[backend]:.3f} ms  p99 {p99[backend]:.3f} ms  "
                      f"{median(fidelity[backend], 'throughput_rps'):,.0f} req/s")
            print(f"  ray vs local: p50 {p50_off:+.1%} ({'MET' if abs(p50_off) <= 0.05 else 'NOT MET'}, within 5%), "
                  f"p99 {p99_off:+.1%} ({'MET' if abs(p99_off) <= 0.15 else 'NOT MET'}, within 15%)")

            capacity = both("sleep:0ms", args.rounds, work, concurrency=2, duration_s=args.seconds)
            rps = {backend: median(runs, "throughput_rps") for backend, runs in capacity.items()}
            ratio = rps["ray"] / rps["local"]
            print(f"\ncapacity, no-op requests/s with 2 workers (median of {args.rounds} rounds each):")
            print(f"  local {rps['local']:,.0f} req/s   ray (2 fake nodes) {rps['ray']:,.0f} req/s   "
                  f"ratio {ratio:.2f} ({'MET' if ratio >= 0.8 else 'NOT MET'}, goal within 20%)")
            for run in capacity["ray"][:1]:
                print("  ray per node: " + ", ".join(f"{node['node']} {node['throughput_rps']:,.0f} req/s "
                                                      f"({node['harness_verdict']})" for node in run["nodes"]))

            split = measure("sleep:1ms", LoadSpec(ray="auto", workers=2, mode="open", rate=1000.0, duration_s=10.0),
                            work, "split")
            scheduled = 1000.0 * split["duration_s"]
            sent = split["requests"] + (split.get("unsent") or 0)
            print("\nopen-loop split, 1,000 requests/s for 10 s over 2 fake nodes:")
            for node in split["nodes"]:
                print(f"  {node['node']:<20} rate {node['rate']:,.0f}/s  requests {node['requests']:,}  "
                      f"p99 {node['p99_ms']:.2f} ms  clock offset {node['clock_offset_ms']:+.3f} ms")
            print(f"  total {split['requests']:,} answered + {split.get('unsent') or 0} unsent = {sent:,.0f} "
                  f"vs {scheduled:,.0f} scheduled over {split['duration_s']:.3f} s ({sent - scheduled:+,.0f})")

            local_s = first_request_s([], work, "first-local")
            ray_s = first_request_s(["--ray", "local"], work, "first-ray")
            print(f"\ncommand to first request: local {local_s:.2f} s, --ray local {ray_s:.2f} s "
                  "(starting a one-machine cluster included)")
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main()
