"""`mlstress-tui batch`: the nightly job that computes every user's features, and its memory footprint at scale."""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlstress_tui.bounds import Bound
from mlstress_tui.commands.options import bounded, ensure_default_database
from mlstress_tui.errors import EXIT_OK, UsageError
from mlstress_tui.paths import default_run_dir

SCHEMA = "mlstress.batch/1"
DEFAULT_SWEEP = (10_000, 30_000, 100_000)
# The user id format holds 99,999,999 users; a chunk is held in memory whole.
USERS = Bound(1, 99_999_999, whole=True, noun="users")
CHUNK_ROWS = Bound(1, 10_000_000, whole=True, noun="rows")
TARGET_USERS = Bound(1, 10**12, whole=True, noun="users")
REPEATS = Bound(2, 100, whole=True, noun="runs of each size")
# A line through fewer sizes is not a measurement of a slope.
MIN_SIZES = 3
# Each size is measured at least this often (its spread is the noise), and more, up to --repeats, while the
# growth is neither clearly above that noise nor within it.
MIN_REPEATS = 2
DEFAULT_REPEATS = 4
# Growth counts when it is this many times the largest spread between repeats of one size, and its slope this
# many standard errors from zero; growth within one spread is flat.
GROWTH_OVER_SPREAD = 2.0
SLOPE_STANDARD_ERRORS = 3.0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from mlstress_tui.pipeline.batch_features import STRATEGIES

    parser = subparsers.add_parser(
        "batch", help="the nightly feature job: every user's features to Parquet, with its time and memory",
        description="Compute the feature vector of every user (or --users N) as a nightly scoring job does, "
                    "write them to features.parquet, and report users/s, wall time, peak RSS and output size "
                    "(batch.json). --sweep measures peak memory at three user counts or more, each run in a "
                    "fresh process and repeated, and extrapolates to --target-users only growth that rises "
                    "above the spread of the repeats.")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--db", type=Path, metavar="PATH", help="SQLite database (default: the one generated into the cache directory)")
    where.add_argument("--dsn", metavar="URL", help="PostgreSQL made by 'generate --dsn'")
    parser.add_argument("--users", type=bounded(USERS), metavar="N", help="the first N users by id (default: all)")
    parser.add_argument("--strategy", choices=STRATEGIES, default=None, help="per-user queries, one set-based pass, or the set-based pass streamed in chunks (default chunked; with --sweep, all three)")
    parser.add_argument("--chunk-size", type=bounded(CHUNK_ROWS), default=10_000, metavar="N", help="rows per chunk written (default 10,000)")
    parser.add_argument("--sweep", action="store_true", help=f"measure peak memory at {', '.join(f'{n:,}' for n in DEFAULT_SWEEP)} users (three sizes spread over the database's users when it has fewer), each run in a fresh process and repeated, and fit only growth above the spread of the repeats")
    parser.add_argument("--repeats", type=bounded(REPEATS), default=DEFAULT_REPEATS, metavar="N", help=f"with --sweep: most runs of each size; {MIN_REPEATS} first, more while growth and noise cannot be told apart (default {DEFAULT_REPEATS})")
    parser.add_argument("--target-users", type=bounded(TARGET_USERS), metavar="N", help="the production size to extrapolate a growing footprint to (default 10x the database's users)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="where features.parquet and batch.json go (default ./mlstress-runs/<UTC timestamp>/)")
    parser.set_defaults(func=run)


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _connect(db: Path | None, dsn: str | None):
    """A read-only connection to the database the job reads: SQLite file or PostgreSQL."""
    if dsn is not None:
        from mlstress_tui.dsn import connect_checked

        return connect_checked(dsn, autocommit=True, options="-c default_transaction_read_only=on")
    from mlstress_tui.load.targets.sqlite import open_read_only

    return open_read_only(db)


def run_job(db: Path | None, strategy: str, users: int, chunk_size: int, out: Path, progress: bool,
            dsn: str | None = None) -> dict:
    """Compute and write the features; the figures of the run. features.parquet appears whole or not at all."""
    import pyarrow.parquet as pq

    from mlstress_tui.pipeline.batch_features import RUNNERS, FeatureValueError, feature_schema, feature_table

    connection = _connect(db, dsn)
    started = time.perf_counter()
    baseline = peak_rss_mb()
    written = 0
    path = out / "features.parquet"
    schema = feature_schema()
    temporary = _temporary_beside(path)
    try:
        with pq.ParquetWriter(temporary, schema) as writer:
            for frame in RUNNERS[strategy](connection, users, chunk_size):
                writer.write_table(feature_table(frame, schema))
                written += len(frame)
                if progress:
                    rate = written / max(time.perf_counter() - started, 1e-9)
                    print(f"\r  {written:,}/{users:,} users  {rate:,.0f} users/s  peak RSS {peak_rss_mb():,.0f} MB ",
                          end="", file=sys.stderr, flush=True)
        os.replace(temporary, path)
    except FeatureValueError as error:
        raise UsageError(f"batch --strategy {strategy}: {error}; the database does not hold what the feature "
                         "query expects") from None
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror}; check free disk space or choose another --out") from None
    finally:
        temporary.unlink(missing_ok=True)
        connection.close()
        if progress:
            print(file=sys.stderr)
    seconds = time.perf_counter() - started
    return {"strategy": strategy, "users": written, "seconds": round(seconds, 3),
            "users_per_s": round(written / seconds, 1) if seconds else None,
            "peak_rss_mb": round(peak_rss_mb(), 1), "rss_before_mb": round(baseline, 1),
            "output_bytes": path.stat().st_size, "chunk_size": chunk_size}


def _temporary_beside(path: Path) -> Path:
    """A fresh name in the output's directory, so the final rename is atomic."""
    try:
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise UsageError(f"cannot write to {path.parent} ({error.strerror}); choose another --out") from None
    os.close(handle)
    return Path(name)


def _write_atomically(path: Path, text: str) -> None:
    temporary = _temporary_beside(path)
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror}; check free disk space or choose another --out") from None
    finally:
        temporary.unlink(missing_ok=True)


def _database_users(db: Path | None, dsn: str | None = None) -> int:
    connection = _connect(db, dsn)
    try:
        return connection.execute("SELECT count(*) FROM users").fetchone()[0]
    finally:
        connection.close()


def _point(source: list[str], strategy: str, users: int, chunk_size: int, out: Path) -> dict:
    """One sweep point in a fresh process: its peak RSS is the job's own, not an earlier point's."""
    point_dir = Path(tempfile.mkdtemp(prefix=f"{strategy}-{users}-", dir=out))
    done = subprocess.run([sys.executable, "-m", "mlstress_tui", "batch", *source, "--users", str(users),
                           "--strategy", strategy, "--chunk-size", str(chunk_size), "--out", str(point_dir)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise UsageError(f"the {strategy} job at {users:,} users failed: {last}")
    return json.loads((point_dir / "batch.json").read_text())


def sweep_sizes(available: int) -> list[int]:
    """The sweep's user counts: the defaults the database holds, else three spread over what it has."""
    sizes = sorted({count for count in DEFAULT_SWEEP if count <= available})
    if len(sizes) < MIN_SIZES:
        sizes = sorted({max(1, round(available / 9)), max(1, round(available / 3)), available})
    return sizes


def footprint_fit(points: list[dict], target_users: int) -> dict:
    """What the points say about peak memory against users: growth above the repeats' spread, flat, or too few sizes.

    `points` are batch.json documents (users, peak_rss_mb). The spread is the widest range between repeats of
    one size; a slope is reported (and extrapolated) only when the growth across the sizes is well above it.
    """
    import numpy as np

    users = np.array([point["users"] for point in points], dtype=float)
    peaks = np.array([point["peak_rss_mb"] for point in points], dtype=float)
    by_size = {size: peaks[users == size] for size in np.unique(users)}
    spread = max((float(values.max() - values.min()) for values in by_size.values()), default=0.0)
    result = {"sizes": len(by_size), "runs": len(points), "spread_mb": round(spread, 1),
              "mean_peak_rss_mb": round(float(peaks.mean()), 1) if peaks.size else None}
    if len(by_size) < MIN_SIZES:
        return {**result, "verdict": "not enough sizes", "settled": True,
                "says": f"not enough sizes ({len(by_size)} of the {MIN_SIZES} a slope needs): no extrapolation"}
    slope, intercept = np.polyfit(users, peaks, 1)
    residuals = peaks - (slope * users + intercept)
    dof = max(1, users.size - 2)
    slope_error = float(np.sqrt(residuals @ residuals / dof / max(((users - users.mean()) ** 2).sum(), 1e-12)))
    growth = float(slope * (users.max() - users.min()))
    noise = max(spread, 0.1)  # ru_maxrss counts KiB: a tenth of a MB is the finest difference it shows
    standard_errors = slope / slope_error if slope_error > 0 else float("inf") if slope > 0 else 0.0
    grows = bool(growth > GROWTH_OVER_SPREAD * noise and standard_errors > SLOPE_STANDARD_ERRORS)
    flat = bool(growth <= noise)
    result.update(mb_per_100k_users=round(float(slope) * 100_000, 2), growth_mb=round(growth, 1),
                  settled=grows or flat)
    if grows:
        at_target = float(intercept + slope * target_users)
        return {**result, "verdict": "grows", "peak_rss_mb_at_target": round(at_target, 1),
                "says": f"grows {slope * 100_000:,.1f} MB per 100,000 users -> {at_target:,.0f} MB peak RSS at "
                        f"{target_users:,} users"}
    return {**result, "verdict": "flat within noise",
            "says": f"flat within noise (±{noise / 2:,.1f} MB): about {peaks.mean():,.0f} MB peak RSS at any size"}


def sweep(db: Path | None, chunk_size: int, out: Path, target_users: int | None, dsn: str | None = None,
          strategies: tuple[str, ...] | None = None, repeats: int = DEFAULT_REPEATS) -> dict:
    from mlstress_tui.pipeline.batch_features import STRATEGIES

    available = _database_users(db, dsn)
    source = ["--dsn", dsn] if dsn is not None else ["--db", str(db)]
    sizes = sweep_sizes(available)
    target = target_users or available * 10
    figures = {}
    for strategy in strategies or STRATEGIES:
        points: list[dict] = []
        fit: dict = {}
        for round_ in range(max(repeats, MIN_REPEATS)):
            for count in sizes:
                point = _point(source, strategy, count, chunk_size, out)
                points.append(point)
                print(f"  {strategy:10} {point['users']:>9,} users  {point['users_per_s']:>10,.0f} users/s  "
                      f"peak RSS {point['peak_rss_mb']:>7,.1f} MB", flush=True)
            fit = footprint_fit(points, target)
            if round_ + 1 >= MIN_REPEATS and fit["settled"]:
                break
        figures[strategy] = {"points": points, **fit}
    return {"target_users": target, "sizes": sizes, "strategies": figures}


def run(args: argparse.Namespace) -> int:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise UsageError("batch writes Parquet with pyarrow: pip install pyarrow") from None
    db = None
    if args.dsn is not None:
        from mlstress_tui.load.targets.postgres import PostgresTarget

        PostgresTarget(args.dsn).check()
    else:
        from mlstress_tui.load.targets.sqlite import SQLiteTarget

        db = args.db if args.db is not None else ensure_default_database()
        SQLiteTarget(db).check()
    out = args.out if args.out is not None else default_run_dir()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create {str(out)!r}: {error.strerror}") from None
    if args.sweep:
        strategies = (args.strategy,) if args.strategy else None
        document = {"schema": SCHEMA, **sweep(db, args.chunk_size, out, args.target_users, args.dsn, strategies,
                                              args.repeats)}
        print(f"\n  peak memory against users ({', '.join(f'{size:,}' for size in document['sizes'])}):")
        for strategy, figures in document["strategies"].items():
            print(f"  {strategy:10} {figures['says']} ({figures['runs']} runs)")
    else:
        users = args.users or _database_users(db, args.dsn)
        document = {"schema": SCHEMA, **run_job(db, args.strategy or "chunked", users, args.chunk_size, out,
                                                 sys.stderr.isatty(), dsn=args.dsn)}
        print(f"{document['strategy']}: {document['users']:,} users in {document['seconds']:.1f} s "
              f"({document['users_per_s']:,.0f} users/s), peak RSS {document['peak_rss_mb']:,.0f} MB "
              f"({document['rss_before_mb']:,.0f} MB before the job), output {document['output_bytes'] / 1e6:,.1f} MB "
              f"-> {out / 'features.parquet'}")
    _write_atomically(out / "batch.json", json.dumps(document, indent=2) + "\n")
    return EXIT_OK
