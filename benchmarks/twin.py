"""The synthetic twin: a 100,000-user source with a non-default tail (mean 20, tail index 1.4 against the
default 2), its profile, and twins at scale 1 and 0.1 with the side-by-side fit table of each.

Run: python benchmarks/twin.py [--users 100000] [--mean-events 20] [--tail-index 1.4] [--dsn URL]

With --dsn the twins are generated into PostgreSQL (each into a schema of its own, dropped afterwards).
Figures only: seconds per step, and the fit tables. Always exits 0.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def step(title: str, argv: list[str]) -> None:
    print(f"\n$ mlstress-tui {' '.join(argv)}", flush=True)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mlstress_tui", *argv], check=False)
    print(f"[{title}: {time.perf_counter() - started:.1f} s]", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--mean-events", type=float, default=20.0)
    parser.add_argument("--tail-index", type=float, default=1.4)
    parser.add_argument("--dsn", help="generate the twins into PostgreSQL instead of SQLite files")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlstress-twin-") as work:
        source, profile = Path(work) / "source.sqlite", Path(work) / "profile.toml"
        step("source", ["generate", "--users", str(args.users), "--mean-events", str(args.mean_events),
                        "--tail-index", str(args.tail_index), "--seed", "11", "--out", str(source)])
        step("profile", ["profile", "--db", str(source), "--out", str(profile)])
        for scale in ("1", "0.1"):
            where = ["--out", str(Path(work) / f"twin-{scale}.sqlite")]
            if args.dsn:
                where = ["--dsn", _schema_dsn(args.dsn, f"mlstress_twin_{scale.replace('.', '_')}")]
            step(f"twin at scale {scale}", ["generate", "--profile", str(profile), "--scale", scale, *where])
        if args.dsn:
            _drop_schemas(args.dsn)
        _contrast(profile, args.users, args.mean_events)


def _contrast(profile_path: Path, users: int, mean: float) -> None:
    """What the default power law (tail index 2) at the same mean would give instead of the fitted tail."""
    import tomllib

    import numpy as np

    from mlstress_tui.synth.event_counts import TAIL_INDEX, draw_event_counts

    quantiles = tomllib.loads(profile_path.read_text())["events_per_user"]["quantiles"]
    default = draw_event_counts(np.random.default_rng(11), users, mean, round(1000 * mean), True).counts
    print(f"\nfor contrast, the default tail (index {TAIL_INDEX:g}) at the same mean, {users:,} users:")
    for key in ("p50", "p90", "p99", "p99.9"):
        value = float(np.percentile(default, float(key[1:])))
        print(f"  events/user {key:<6} profile {quantiles[key]:>9,.1f}  default law {value:>9,.1f}  "
              f"({value / max(quantiles[key], 1e-9) - 1:+.0%})")


def _schema_dsn(dsn: str, schema: str) -> str:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        connection.execute(f'CREATE SCHEMA "{schema}"')
    return dsn + ("&" if "?" in dsn else "?") + f"options=-csearch_path%3D{schema}"


def _drop_schemas(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as connection:
        for scale in ("1", "0_1"):
            connection.execute(f'DROP SCHEMA IF EXISTS "mlstress_twin_{scale}" CASCADE')


if __name__ == "__main__":
    main()
