"""`mlstress-tui serve`: the reference feature service over HTTP, to aim the load (and the dashboard) at."""

from __future__ import annotations

import argparse
import os
import socket
from pathlib import Path

from mlstress_tui.commands.options import bounded, ensure_default_database
from mlstress_tui.errors import EXIT_OK, UsageError
from mlstress_tui.bounds import BOUNDS, Bound, HOUR_S

PORT = BOUNDS["port"]
EXTRA_LATENCY_MS = Bound(0, HOUR_S * 1000, noun="milliseconds", note="an hour")


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
    parser.add_argument("--port", type=bounded(PORT), default=8000, help="port (default 8000)")
    parser.add_argument("--workers", type=bounded("workers"), default=1, help="uvicorn worker processes (default 1)")
    parser.add_argument("--pool-size", type=bounded("pool_size"), default=4, help="database connections per worker (default 4)")
    parser.add_argument("--fail-rate", type=bounded("share"), default=0.0, metavar="P", help="fault injection: answer 503 to this share of requests (default 0)")
    parser.add_argument("--extra-latency-ms", type=bounded(EXTRA_LATENCY_MS), default=0.0, metavar="MS", help="fault injection: add this much latency to every request, spent holding its database connection as a slow query would (default 0)")
    parser.set_defaults(func=run)


def check_listen(host: str, port: int) -> None:
    """Bind --host:--port once (as uvicorn will) before saying 'serving': a taken port or a foreign address is one line."""
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                                flags=socket.AI_PASSIVE)[0]
    except (socket.gaierror, UnicodeError) as error:
        reason = getattr(error, "strerror", None) or "not an address"
        raise UsageError(f"--host {host!r} is not an address to listen on ({reason}): use 127.0.0.1, 0.0.0.0 or an "
                         "address of this machine") from None
    with socket.socket(family, kind, protocol) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            raise UsageError(f"cannot listen on {host}:{port} ({(error.strerror or str(error)).lower()}): stop what "
                             "holds it, or pick another --port") from None


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn
    except ImportError:
        raise UsageError("serve needs the serve extra: pip install 'mlstress-tui[serve]'") from None
    check_listen(args.host, args.port)
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
