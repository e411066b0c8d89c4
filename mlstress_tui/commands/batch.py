"""`mlstress-tui batch`: the nightly job that computes every user's features, and its memory footprint at scale."""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from mlstress_tui.commands.options import bounded, ensure_default_database
from mlstress_tui.bounds import Bound
from mlstress_tui.errors import EXIT_OK, UsageError
from mlstress_tui.paths import default_run_dir

SCHEMA = "mlstress.batch/1"
DEFAULT_SWEEP = (10_000, 30_000, 100_000)
# A strategy whose peak memory grows by less than this per 100,000 users stays flat.
FLAT_MB_PER_100K = 10.0
# The user id format holds 99,999,999 users; a chunk is held in memory whole.
USERS = Bound(1, 99_999_999, whole=True, noun="users")
CHUNK_ROWS = Bound(1, 10_000_000, whole=True, noun="rows")
TARGET_USERS = Bound(1, 10**12, whole=True, noun="users")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from mlstress_tui.pipeline.batch_features import STRATEGIES

    parser = subparsers.add_parser(
        "batch", help="the nightly feature job: every user's features to Parquet, with its time and memory",
        description="Compute the feature vector of every user (or --users N) as a nightly scoring job does, "
                    "write them to features.parquet, and report users/s, wall time, peak RSS and output size "
                    "(batch.json). --sweep measures growing user counts, each in a fresh process, and "
                    "extrapolates the footprint to --target-users.")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--db", type=Path, metavar="PATH", help="SQLite database (default: the one generated into the cache directory)")
    where.add_argument("--dsn", metavar="URL", help="PostgreSQL made by 'generate --dsn'")
    parser.add_argument("--users", type=bounded(USERS), metavar="N", help="the first N users by id (default: all)")
    parser.add_argument("--strategy", choices=STRATEGIES, default="chunked", help="per-user queries, one set-based pass, or the set-based pass streamed in chunks (default chunked)")
    parser.add_argument("--chunk-size", type=bounded(CHUNK_ROWS), default=10_000, metavar="N", help="rows per chunk written (default 10,000)")
    parser.add_argument("--sweep", action="store_true", help=f"run at {', '.join(f'{n:,}' for n in DEFAULT_SWEEP)} users (capped at the database's), each strategy, each in a fresh process")
    parser.add_argument("--target-users", type=bounded(TARGET_USERS), metavar="N", help="the production size to extrapolate the sweep's footprint to (default 10x the database's users)")
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
    """Compute and write the features; the figures of the run."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlstress_tui.pipeline.batch_features import RUNNERS

    connection = _connect(db, dsn)
    started = time.perf_counter()
    baseline = peak_rss_mb()
    written = 0
    writer = None
    path = out / "features.parquet"
    try:
        for frame in RUNNERS[strategy](connection, users, chunk_size):
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table.cast(writer.schema))
            written += len(frame)
            if progress:
                rate = written / max(time.perf_counter() - started, 1e-9)
                print(f"\r  {written:,}/{users:,} users  {rate:,.0f} users/s  peak RSS {peak_rss_mb():,.0f} MB ",
                      end="", file=sys.stderr, flush=True)
    finally:
        if writer is not None:
            writer.close()
        connection.close()
        if progress:
            print(file=sys.stderr)
    seconds = time.perf_counter() - started
    return {"strategy": strategy, "users": written, "seconds": round(seconds, 3),
            "users_per_s": round(written / seconds, 1) if seconds else None,
            "peak_rss_mb": round(peak_rss_mb(), 1), "rss_before_mb": round(baseline, 1),
            "output_bytes": path.stat().st_size if path.exists() else 0, "chunk_size": chunk_size}


def _database_users(db: Path | None, dsn: str | None = None) -> int:
    connection = _connect(db, dsn)
    try:
        return connection.execute("SELECT count(*) FROM users").fetchone()[0]
    finally:
        connection.close()


def _point(source: list[str], strategy: str, users: int, chunk_size: int, out: Path) -> dict:
    """One sweep point in a fresh process: its peak RSS is the job's own, not an earlier point's."""
    point_dir = out / f"{strategy}-{users}"
    done = subprocess.run([sys.executable, "-m", "mlstress_tui", "batch", *source, "--users", str(users),
                           "--strategy", strategy, "--chunk-size", str(chunk_size), "--out", str(point_dir)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise UsageError(f"the {strategy} job at {users:,} users failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads((point_dir / "batch.json").read_text())


def sweep(db: Path | None, chunk_size: int, out: Path, target_users: int | None, dsn: str | None = None) -> dict:
    from mlstress_tui.pipeline.batch_features import STRATEGIES

    available = _database_users(db, dsn)
    source = ["--dsn", dsn] if dsn is not None else ["--db", str(db)]
    counts = sorted({min(count, available) for count in DEFAULT_SWEEP})
    target = target_users or available * 10
    strategies = {}
    for strategy in STRATEGIES:
        points = [_point(source, strategy, count, chunk_size, out) for count in counts]
        for point in points:
            print(f"  {strategy:10} {point['users']:>9,} users  {point['users_per_s']:>10,.0f} users/s  "
                  f"peak RSS {point['peak_rss_mb']:>7,.0f} MB", flush=True)
        first, last = points[0], points[-1]
        span = max(last["users"] - first["users"], 1)
        slope = (last["peak_rss_mb"] - first["peak_rss_mb"]) / span
        at_target = last["peak_rss_mb"] + slope * (target - last["users"])
        strategies[strategy] = {"points": points, "mb_per_100k_users": round(slope * 100_000, 2),
                                "peak_rss_mb_at_target": round(at_target, 1),
                                "flat": slope * 100_000 < FLAT_MB_PER_100K}
    return {"target_users": target, "strategies": strategies}


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
        document = {"schema": SCHEMA, **sweep(db, args.chunk_size, out, args.target_users, args.dsn)}
        print(f"\n  extrapolated to {document['target_users']:,} users:")
        for strategy, figures in document["strategies"].items():
            shape = "stays flat" if figures["flat"] else "grows with the users"
            print(f"  {strategy:10} {figures['mb_per_100k_users']:>8,.1f} MB per 100,000 users -> "
                  f"{figures['peak_rss_mb_at_target']:>9,.0f} MB peak RSS ({shape})")
    else:
        users = args.users or _database_users(db, args.dsn)
        document = {"schema": SCHEMA, **run_job(db, args.strategy, users, args.chunk_size, out, sys.stderr.isatty(),
                                                 dsn=args.dsn)}
        print(f"{document['strategy']}: {document['users']:,} users in {document['seconds']:.1f} s "
              f"({document['users_per_s']:,.0f} users/s), peak RSS {document['peak_rss_mb']:,.0f} MB "
              f"({document['rss_before_mb']:,.0f} MB before the job), output {document['output_bytes'] / 1e6:,.1f} MB "
              f"-> {out / 'features.parquet'}")
    (out / "batch.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return EXIT_OK
