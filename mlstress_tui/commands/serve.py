"""`mlstress-tui serve`: the reference feature service over HTTP, to aim the load (and the dashboard) at."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from mlstress_tui.commands.options import ensure_default_database, positive_int
from mlstress_tui.errors import EXIT_OK, UsageError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve", help="the reference feature service (HTTP) over a generated database",
        description="Serve GET /features/{user_id} (the feature vector as JSON), /predict/{user_id} (features -> "
                    "a small model -> a score) and /healthz over --db or --dsn, through a database pool of "
                    "--pool-size. Needs the serve extra: pip install 'mlstress-tui[serve]'.")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--db", type=Path, metavar="PATH", help="SQLite database (default: the one generated into the cache directory)")
    where.add_argument("--dsn", metavar="URL", help="PostgreSQL made by 'generate --dsn'")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--workers", type=positive_int, default=1, help="uvicorn worker processes (default 1)")
    parser.add_argument("--pool-size", type=positive_int, default=4, help="database connections per worker (default 4)")
    parser.add_argument("--fail-rate", type=float, default=0.0, metavar="P", help="fault injection: answer 503 to this share of requests (default 0)")
    parser.add_argument("--extra-latency-ms", type=float, default=0.0, metavar="MS", help="fault injection: add this much latency to every request, spent holding its database connection as a slow query would (default 0)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn
    except ImportError:
        raise UsageError("serve needs the serve extra: pip install 'mlstress-tui[serve]'") from None
    if not 0 <= args.fail_rate <= 1:
        raise UsageError(f"--fail-rate must be a share from 0 to 1, got {args.fail_rate}")
    if args.extra_latency_ms < 0:
        raise UsageError(f"--extra-latency-ms must be 0 or more, got {args.extra_latency_ms}")
    environment = {"MLSTRESS_SERVE_POOL_SIZE": str(args.pool_size), "MLSTRESS_SERVE_FAIL_RATE": str(args.fail_rate),
                   "MLSTRESS_SERVE_EXTRA_LATENCY_MS": str(args.extra_latency_ms)}
    if args.dsn is not None:
        from mlstress_tui.load.targets.postgres import PostgresTarget

        PostgresTarget(args.dsn).check()
        environment["MLSTRESS_SERVE_DSN"] = args.dsn
    else:
        from mlstress_tui.load.targets.sqlite import SQLiteTarget

        path = args.db if args.db is not None else ensure_default_database()
        SQLiteTarget(path).check()
        environment["MLSTRESS_SERVE_DB"] = str(path)
    # uvicorn's worker processes build the app from the environment, each with its own pool.
    os.environ.update(environment)
    print(f"serving http://{args.host}:{args.port}/features/{{user_id}}, /predict/{{user_id}}, /healthz "
          f"({args.workers} worker(s), pool {args.pool_size} each); Ctrl-C to stop", flush=True)
    uvicorn.run("mlstress_tui.serve.app:create_app", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_level="warning", access_log=False)
    return EXIT_OK
