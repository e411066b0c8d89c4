"""`mlstress-tui precompute`: the heavy users' feature vectors into Redis, as the heavy-user advice says, with its cost."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from mlstress_tui.commands.options import ensure_default_database
from mlstress_tui.errors import EXIT_OK, UsageError
from mlstress_tui.paths import default_run_dir

SCHEMA = "mlstress.precompute/1"
RESULT_NAME = "precompute.json"
PROGRESS_EVERY_S = 1.0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "precompute", help="write users' feature vectors into Redis (one hash per user) for --cache",
        description="Compute the feature vector of each chosen user with the serving query itself and write it "
                    "to Redis as one hash per user (pipelined), reporting users/s, the time taken and the memory "
                    "Redis reports before and after (precompute.json). Then 'run', 'ramp', 'outliers' and "
                    "'accept' take --cache URL --cache-above N to serve those users from Redis.")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--db", type=Path, metavar="PATH", help="SQLite database made by 'generate' (default: the one generated into the cache directory)")
    where.add_argument("--dsn", metavar="URL", help="PostgreSQL made by 'generate --dsn'")
    parser.add_argument("--redis", required=True, metavar="URL", help="the Redis database to write: redis://[user:password@]host:6379/N")
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--above", type=int, metavar="EVENTS", help="users with EVENTS events or more ('outliers' gives the breach event count; default: every user)")
    who.add_argument("--users", type=Path, metavar="FILE", help="the users listed in FILE, one id a line")
    parser.add_argument("--out", type=Path, metavar="DIR", help=f"where {RESULT_NAME} goes (default ./mlstress-runs/<UTC timestamp>/)")
    parser.set_defaults(func=run)


def _connect(db: Path | None, dsn: str | None) -> tuple[Any, str]:
    """A read-only connection to the database the features come from, checked first, and its label."""
    if dsn is not None:
        from mlstress_tui.dsn import connect_checked
        from mlstress_tui.load.targets.postgres import PostgresTarget

        target = PostgresTarget(dsn)
        target.check()
        return connect_checked(dsn, autocommit=True, options="-c default_transaction_read_only=on"), target.label
    from mlstress_tui.load.targets.sqlite import SQLiteTarget, open_read_only

    db = db if db is not None else ensure_default_database()
    SQLiteTarget(db).check()
    return open_read_only(db), str(db)


def read_user_file(path: Path) -> list[str]:
    """User ids from a file, one a line (blank lines and # comments skipped), in order, each once."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        why = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise UsageError(f"cannot read --users {str(path)!r}: {why}") from None
    ids = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not ids:
        raise UsageError(f"--users {str(path)!r} lists no user ids: write one id a line")
    return list(dict.fromkeys(ids))


class Progress:
    """Users written, users/s and the share done: redrawn in place on a terminal, a line a second otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._shown_at = 0.0
        self._drawn = False

    def __call__(self, done: int, total: int, seconds: float) -> None:
        now = time.monotonic()
        if now - self._shown_at < (0.1 if self._tty else PROGRESS_EVERY_S):
            return
        self._shown_at = now
        rate = done / seconds if seconds > 0 else 0.0
        line = f"  {done:,}/{total:,} users ({done / total:.0%})  {rate:,.0f} users/s  {seconds:.1f} s"
        self._stream.write(f"\r{line} " if self._tty else f"{line}\n")
        self._stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn and self._tty:
            self._stream.write("\r\033[K")
            self._stream.flush()


def summary_line(document: dict) -> str:
    memory = document["memory"]
    per_user = memory["bytes_per_user"]
    per_user_text = f" ({per_user:,.0f} B per user)" if per_user is not None else ""
    replaced = f" ({document['replaced']:,} replaced: the used_memory delta counts the new keys only)" \
        if document["replaced"] else ""
    missing = f"; {document['not_found']:,} id(s) not in the database: {', '.join(document['not_found_ids'][:5])}" \
        if document["not_found"] else ""
    rate = f"{document['users_per_s']:,.0f} users/s" if document["users_per_s"] else "no users"
    return (f"precomputed {document['users']:,} users into {document['redis']} in {document['seconds']:.1f} s "
            f"({rate}){replaced}; the hashes take {memory['keys_bytes'] / 1e6:,.2f} MB{per_user_text}; Redis "
            f"used_memory {memory['used_before_bytes'] / 1e6:,.1f} MB -> {memory['used_after_bytes'] / 1e6:,.1f} MB "
            f"({memory['delta_bytes'] / 1e6:+,.2f} MB){missing}")


def _write_result(path: Path, document: dict) -> None:
    """precompute.json appears whole or not at all."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        temporary.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise UsageError(f"cannot write {str(path)!r}: {error.strerror}; choose another --out") from None


def run(args: argparse.Namespace) -> int:
    import redis

    from mlstress_tui.pipeline.feature_store import precompute, user_ids_at_least
    from mlstress_tui.redis_url import connect_checked, reason, redis_label

    if args.above is not None and args.above < 0:
        raise UsageError(f"--above {args.above} is negative: give an event count of 0 or more")
    label = redis_label(args.redis, "--redis")
    client = connect_checked(args.redis, "--redis")
    ids = read_user_file(args.users) if args.users is not None else None
    out = args.out if args.out is not None else default_run_dir()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create {str(out)!r}: {error.strerror}") from None
    connection, source = _connect(args.db, args.dsn)
    progress = Progress(sys.stderr)
    try:
        if ids is None:
            ids = user_ids_at_least(connection, args.above or 0)
        selection = {"users_file": str(args.users)} if args.users is not None else {"above": args.above or 0}
        print(f"precompute: {len(ids):,} users from {source} into {label}", file=sys.stderr)
        document = precompute(connection, client, ids, source=source, selection=selection, progress=progress)
    except redis.RedisError as error:
        raise UsageError(f"Redis at {label} failed during the writes: {reason(error, args.redis)}") from None
    finally:
        progress.close()
        connection.close()
    document = {"schema": SCHEMA, "source": source, "redis": label, "selection": selection, **document}
    print(summary_line(document))
    path = out / RESULT_NAME
    _write_result(path, document)
    print(f"  written: {path}")
    return EXIT_OK
