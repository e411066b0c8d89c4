"""The batch job's footprint on the default database: each strategy's users/s and peak RSS at 10k, 30k and
100k users (each point in a fresh process), the memory slope, and the extrapolation to --target-users.

Run: python benchmarks/batch.py [--db PATH] [--target-users 10000000]

No target: figures only (which strategy stays flat is the finding). Always exits 0.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="database (default: the one generated into the cache directory)")
    parser.add_argument("--target-users", type=int, default=10_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlstress-batch-") as out:
        argv = [sys.executable, "-m", "mlstress_tui", "batch", "--sweep", "--target-users", str(args.target_users),
                "--out", out]
        if args.db:
            argv += ["--db", args.db]
        subprocess.run(argv, check=False)


if __name__ == "__main__":
    main()
