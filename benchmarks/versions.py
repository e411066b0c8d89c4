"""This checkout against another version of the tool, in one run: no-op capacity and `sleep:2ms` fidelity.

Run: python benchmarks/versions.py --other PATH [--rounds 5] [--seconds 5]

PATH is another source tree of mlstress-tui (e.g. `git worktree add /tmp/old 5cea0de`);
it runs with this venv's packages, its own code first on the path. Rounds
alternate (this, other, other, this, …) so the box's drift falls on both, and
medians are reported:

  capacity   no-op requests/s (`--target sleep:0ms`, a user per core): the harness's own cost per request
  fidelity   `sleep:2ms` at 16 users: p50 and p99 against a bare loop's (what the harness adds to latency)

Prints the table and the ratios; always exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(tree: Path, args: list[str], out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    subprocess.run([sys.executable, "-c", "import sys; from mlstress_tui.cli import main; sys.exit(main(sys.argv[1:]))",
                    "run", "--headless", *args, "--out", str(out)], env=env, cwd=tree, check=True,
                   capture_output=True)
    return json.loads((out / "summary.json").read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", type=Path, required=True, help="another source tree of mlstress-tui")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    options = parser.parse_args()
    cores = os.cpu_count() or 1
    trees = {"this": ROOT, "other": options.other.resolve()}
    figures: dict[str, dict[str, list[float]]] = {name: {"capacity": [], "p50": [], "p99": []} for name in trees}
    seconds = f"{options.seconds:g}"
    with tempfile.TemporaryDirectory(prefix="mlstress-versions-") as tmp:
        for round_ in range(options.rounds):
            order = ["this", "other"] if round_ % 2 == 0 else ["other", "this"]
            for name in order:
                out = Path(tmp) / f"{name}-{round_}"
                noop = run(trees[name], ["--target", "sleep:0ms", "--concurrency", str(cores), "--duration", seconds],
                           out / "noop")
                sleep = run(trees[name], ["--target", "sleep:2ms", "--concurrency", "16", "--duration", seconds],
                            out / "sleep")
                figures[name]["capacity"].append(noop["throughput_rps"])
                figures[name]["p50"].append(sleep["latency_ms"]["p50"])
                figures[name]["p99"].append(sleep["latency_ms"]["p99"])
                print(f"  round {round_ + 1} {name:5}: {noop['throughput_rps']:>9,.0f} no-op req/s   sleep:2ms p50 "
                      f"{sleep['latency_ms']['p50']:.3f} ms p99 {sleep['latency_ms']['p99']:.3f} ms", flush=True)
    medians = {name: {key: statistics.median(values) for key, values in data.items()} for name, data in figures.items()}
    this, other = medians["this"], medians["other"]
    print(f"\nmedians of {options.rounds} rounds on {cores} cores (load average {os.getloadavg()[0]:.2f}):")
    print(f"  {'':6} {'no-op req/s':>12} {'sleep:2ms p50':>14} {'p99':>9}")
    for name in trees:
        print(f"  {name:6} {medians[name]['capacity']:>12,.0f} {medians[name]['p50']:>12.3f}ms {medians[name]['p99']:>7.3f}ms")
    print(f"  this/other: capacity {this['capacity'] / other['capacity']:.3f}, p50 {this['p50'] / other['p50']:.3f}, "
          f"p99 {this['p99'] / other['p99']:.3f} (within 3% is no cost)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
