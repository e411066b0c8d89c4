"""The option groups every measuring command shares (target, load, output) and how they become a run session."""

from __future__ import annotations

import argparse
import math
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from mlstress_tui.bounds import BOUNDS, Bound, WORKER_MB
from mlstress_tui.errors import UsageError
from mlstress_tui.load.engine import LoadEngine
from mlstress_tui.load.ray_address import check_ray_address
from mlstress_tui.load.spec import LoadSpec
from mlstress_tui.load.schedule import ARRIVALS
from mlstress_tui.load.targets import Target, parse_target
from mlstress_tui.load.targets.sqlite import SQLiteTarget
from mlstress_tui.load.users import USER_MIXES
from mlstress_tui.paths import default_database_path, default_run_dir
from mlstress_tui.pipeline.feature_query import load_query_file
from mlstress_tui.presets import Preset, available_presets, load_preset
from mlstress_tui.results.kinds import CLOSED, OPEN
from mlstress_tui.session import RunSession

if TYPE_CHECKING:
    from mlstress_tui.session.metrics_exporter import MetricsEndpoint

HEADLESS_DEFAULT_DURATION_S = 30.0


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def bounded(bound: Bound | str) -> Callable[[str], int | float]:
    """An argparse type: the number a flag's text says, finite and within `bound` (a name in BOUNDS), or one line why not."""
    bound = BOUNDS[bound] if isinstance(bound, str) else bound

    def parse(text: str) -> int | float:
        try:
            return bound.parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """TARGET options shared by every measuring command."""
    group = parser.add_argument_group("target")
    where = group.add_mutually_exclusive_group()
    where.add_argument("--db", type=Path, metavar="PATH", help="SQLite database made by 'generate' (default: the one generated into the cache directory)")
    where.add_argument("--dsn", metavar="URL", help="PostgreSQL made by 'generate --dsn': postgresql://user@host:5432/db (libpq's PG* variables and .pgpass apply)")
    where.add_argument("--url", metavar="URL", help="a service over HTTP: http://host:port/features/{user_id} ({user_id} in the path, the query or --body)")
    where.add_argument("--target", metavar="SPEC", help="sleep:2ms | python:pkg.module:function")
    group.add_argument("--method", choices=("GET", "POST"), default="GET", help="HTTP method for --url (default GET)")
    group.add_argument("--body", metavar="TEMPLATE", help="request body for --url, with {user_id} substituted")
    group.add_argument("-H", "--header", dest="headers", action="append", metavar="'NAME: VALUE'", help="an HTTP header for --url (repeatable; never shown in any output)")
    group.add_argument("--expect-status", metavar="CODES", help="status codes that count as ok for --url, e.g. 200,204 (default any 2xx)")
    group.add_argument("--expect-json", action=argparse.BooleanOptionalAction, default=None, help="for --url: an ok answer's body must parse as JSON, else it is bad_response (default: when its Content-Type says JSON)")
    group.add_argument("--query", metavar="FILE", help="your own feature query file (SQLite), with a :user_id parameter")
    group.add_argument("--users-db", type=Path, metavar="PATH", help="where sleep, python and HTTP targets take user ids and event counts from (default: the default database, generated into the cache directory)")
    group.add_argument("--pool-size", type=bounded("pool_size"), metavar="P", help="connection slots (default: one per virtual user; 64 in the open loop)")
    group.add_argument("--timeout", type=bounded("timeout_s"), metavar="S", help="per-request deadline in seconds, kept by the harness whatever the target does (default 5)")
    group.add_argument("--startup-timeout", type=bounded("startup_timeout_s"), metavar="S", help="how long the workers may take to open the target (import a model, connect) before the run is abandoned (default 60)")
    group.add_argument("--no-replace-stuck", dest="replace_stuck", action="store_false", default=None,
                       help="leave a user stuck in the target past its deadline in place (see the system's own back-pressure) instead of replacing it")
    cache = parser.add_argument_group("cache (the heavy-user advice applied)")
    cache.add_argument("--cache", metavar="URL", help="serve users with --cache-above events or more from the Redis hashes 'precompute' wrote: redis://host:6379/N")
    cache.add_argument("--cache-above", type=int, metavar="N", help="with --cache: users with N events or more go to Redis, the rest to the database ('outliers' gives the breach event count)")
    cache.add_argument("--cache-fallback", action="store_true", help="with --cache: a Redis that does not answer sends the request to the database (counted) instead of failing it as cache_down")


def add_load_arguments(parser: argparse.ArgumentParser, *, levels: bool = True, bounds: bool = True) -> None:
    """LOAD options shared by every measuring command (`levels`/`bounds`: whether it takes --concurrency/--rate, --duration/--requests)."""
    group = parser.add_argument_group("load")
    if levels:
        model = group.add_mutually_exclusive_group()
        model.add_argument("--concurrency", type=bounded("concurrency"), metavar="N", help="closed loop: N virtual users (default: the preset's, 4)")
        model.add_argument("--rate", type=bounded("rate"), metavar="R", help="open loop: R requests per second")
    if bounds:
        bound = group.add_mutually_exclusive_group()
        bound.add_argument("--duration", type=bounded("duration_s"), metavar="S", help="stop after S seconds (default: until q in the dashboard; 30 headless)")
        bound.add_argument("--requests", type=bounded("requests"), metavar="N", help="stop after N requests")
    group.add_argument("--arrivals", choices=ARRIVALS, help="open loop: evenly spaced (uniform, default) or bursty as real traffic (poisson, seeded)")
    group.add_argument("--user-mix", choices=USER_MIXES, help="which users are requested (default uniform)")
    group.add_argument("--seed", type=bounded("seed"), default=42, metavar="S", help="seed of the request sequence (default 42)")
    group.add_argument("--workers", type=bounded("workers"), metavar="N", help=f"worker processes (default: one per core; at most {BOUNDS['workers'].high:,.0f}, each takes ~{WORKER_MB} MB)")
    group.add_argument("--on-worker-death", choices=("replace", "stop"), help="a worker process that dies is replaced (default) or ends the run; either way it is said and the exit code is 3")
    add_ray_arguments(group)
    group.add_argument("--preset", metavar="NAME|FILE", help=f"load profile: {', '.join(available_presets())}, or a .toml file (default: default)")


def add_ray_arguments(group: argparse._ArgumentGroup) -> None:
    """--ray and --on-node-loss: every command that drives load takes them."""
    group.add_argument("--ray", metavar="ADDRESS", help="run the workers as Ray actors across a cluster: auto (a running cluster), local (start one here), host:port or ray://host:port (needs the [ray] extra)")
    group.add_argument("--on-node-loss", choices=("continue", "stop"), help="with --ray: a lost actor or node's share goes to the rest (default) or ends the run; either way it is said and the exit code is 3")


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """Where a measuring command writes its run directory."""
    group = parser.add_argument_group("output")
    group.add_argument("--out", type=Path, metavar="DIR", help="run directory (default ./mlstress-runs/<UTC timestamp>/)")
    add_label_argument(group)


def add_label_argument(group: argparse._ArgumentGroup) -> None:
    """--label: what the system under test is (a build, a commit), carried into every file and panel of the run."""
    group.add_argument("--label", type=run_label, metavar="TEXT",
                       help="name the system under test, e.g. a build or commit id (kept in summary.json and reports)")


def add_metrics_arguments(parser: argparse.ArgumentParser) -> None:
    """--metrics-port, --metrics-addr, --metrics-linger: every command that drives load serves its live figures."""
    group = parser.add_argument_group("metrics (Prometheus)")
    group.add_argument("--metrics-port", type=bounded("port"), metavar="PORT",
                       help="serve the run's live figures for Prometheus at http://ADDR:PORT/metrics while it runs")
    group.add_argument("--metrics-addr", metavar="ADDR",
                       help="address the metrics endpoint listens on (default 127.0.0.1; 0.0.0.0 for every interface)")
    group.add_argument("--metrics-linger", type=bounded("linger_s"), metavar="S",
                       help="after the run, keep serving until one scrape has read the final figures, at most S "
                            "seconds (default 0: stop with the command; give your scrape interval or more)")


@contextmanager
def metrics_served(args: argparse.Namespace) -> Iterator[MetricsEndpoint | None]:
    """The /metrics endpoint for the whole command, bound before anything starts; at the end it lingers as asked."""
    port = getattr(args, "metrics_port", None)
    if port is None:
        for flag, value in (("--metrics-addr", getattr(args, "metrics_addr", None)),
                            ("--metrics-linger", getattr(args, "metrics_linger", None))):
            if value is not None:
                raise UsageError(f"{flag} applies with --metrics-port only: add --metrics-port PORT or drop {flag}")
        yield None
        return
    from mlstress_tui.session.metrics_exporter import MetricsEndpoint

    endpoint = MetricsEndpoint(args.metrics_addr or "127.0.0.1", port)
    try:
        yield endpoint
        if args.metrics_linger:
            print(f"mlstress-tui: serving the final figures at {endpoint.url} until they are scraped "
                  f"(at most {args.metrics_linger:g} s)", file=sys.stderr, flush=True)
            if not endpoint.linger(args.metrics_linger):
                print(f"mlstress-tui: no scrape took the final figures within {args.metrics_linger:g} s",
                      file=sys.stderr, flush=True)
    finally:
        endpoint.close()


def watch_metrics(metrics: MetricsEndpoint | None, session: RunSession, *, run: str | None = None) -> None:
    """Serve `session`'s figures on the command's endpoint, if it has one, under `run` (default: the run directory's
    name); the first session says where (after its options were found good: bad input stays one line)."""
    if metrics is None:
        return
    if not metrics.watching:
        print(f"mlstress-tui: live figures for Prometheus at {metrics.url}", file=sys.stderr, flush=True)
    metrics.watch(session, run=run or session.run_dir.name)


def run_label(text: str) -> str:
    """A label a person typed: printable, one line, at most 80 characters."""
    if not text.strip() or len(text) > 80 or not text.isprintable():
        raise argparse.ArgumentTypeError(f"--label must be 1 to 80 printable characters on one line, got {text!r:.90}")
    return text.strip()


def ensure_default_database() -> Path:
    """The default database in the cache directory, generated on first use with visible progress."""
    path = default_database_path()
    if path.exists():
        return path
    from mlstress_tui.commands.generate import ProgressBar, summary
    from mlstress_tui.synth import GenerateParams, generate_sqlite

    params = GenerateParams()
    print(f"First run: generating the default database ({params.users:,} users) into {path}", file=sys.stderr)
    bar = ProgressBar(sys.stderr) if sys.stderr.isatty() else None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        result = generate_sqlite(params, path, progress=bar.update if bar else None)
    except OSError as error:
        raise UsageError(f"cannot create the default database in {str(path.parent)!r}: {error.strerror}; "
                         "set MLSTRESS_CACHE_DIR to a writable directory") from None
    finally:
        if bar:
            bar.close()
    print(summary(result, params), file=sys.stderr)
    return path


def database_info(path: Path) -> dict:
    """Generation parameters of a database (users, events, seed, …), empty when it has none."""
    from mlstress_tui.load.targets.sqlite import open_read_only
    from mlstress_tui.synth import read_meta

    connection = open_read_only(path)
    try:
        return read_meta(connection)
    except (sqlite3.Error, KeyError, ValueError):
        return {}
    finally:
        connection.close()


def resolve_target(args: argparse.Namespace, timeout_s: float | None = None) -> tuple[Target, dict, Path | None]:
    """The target (behind the Redis cache with --cache), its database's generation parameters, and where user ids
    come from (`timeout_s`: the request deadline)."""
    cache, above = getattr(args, "cache", None), getattr(args, "cache_above", None)
    if cache is None:
        if above is not None or getattr(args, "cache_fallback", False):
            raise UsageError("--cache-above and --cache-fallback apply with --cache URL only: add --cache or drop them")
        return _resolve_database_target(args, timeout_s)
    if above is None or above < 0:
        raise UsageError("--cache needs --cache-above N, the event count from which users are served from Redis "
                         "(0 or more; 'outliers' gives the breach event count)")
    from mlstress_tui.load.targets.cached import CachedTarget
    from mlstress_tui.redis_url import redis_parts

    redis_parts(cache, "--cache")  # a malformed URL is said before any database is opened
    target, database, users_db = _resolve_database_target(args, timeout_s)
    spec = CachedTarget(inner=target, url=cache, at_least=above, fallback=args.cache_fallback, users_db=users_db)
    spec.check()
    return spec, database, users_db


def _resolve_database_target(args: argparse.Namespace,
                             timeout_s: float | None = None) -> tuple[Target, dict, Path | None]:
    """The target --db, --dsn, --url or --target names, checked, as `resolve_target` returns it."""
    if getattr(args, "dsn", None) is not None:  # `--dsn ''`: all of it from libpq's environment, as psql does
        if args.query:
            raise UsageError("--query applies to the SQLite target only: drop --dsn or --query")
        from mlstress_tui.dsn import connect_checked
        from mlstress_tui.load.targets.postgres import PostgresTarget
        from mlstress_tui.pipeline.postgres_features import read_meta

        spec = PostgresTarget(args.dsn)
        spec.check()
        with connect_checked(args.dsn, autocommit=True) as connection:
            return spec, read_meta(connection), None
    if getattr(args, "url", None):
        if args.query:
            raise UsageError("--query applies to the SQLite target only: drop --url or --query")
        from mlstress_tui.load.targets.http import HttpTarget, parse_expect_status

        spec = HttpTarget(url=args.url, method=args.method, body=args.body, headers=tuple(args.headers or ()),
                          expect_status=parse_expect_status(args.expect_status),
                          expect_json=getattr(args, "expect_json", None),
                          **({"timeout_s": timeout_s} if timeout_s is not None else {}))
        spec.check()
        users_db = args.users_db or ensure_default_database()
        return spec, database_info(users_db), users_db
    if args.target:
        if args.query:
            raise UsageError("--query applies to the SQLite target only: drop --target or --query")
        spec = parse_target(args.target)
        spec.check()
        users_db = args.users_db
        if spec.kind == "python":
            if users_db is None:
                users_db = default_database_path()
                if not users_db.exists():
                    raise UsageError("the python target needs user ids: pass --users-db PATH (a database made by 'generate')")
        return spec, database_info(users_db) if users_db else {}, users_db
    db_path = args.db if args.db is not None else ensure_default_database()
    query_sql = load_query_file(args.query) if args.query else None
    spec = SQLiteTarget(db_path=db_path, query_sql=query_sql, query_file=args.query)
    spec.check()
    return spec, database_info(db_path), None


def resolve_load(args: argparse.Namespace, preset: Preset, *, headless: bool, **overrides: object) -> LoadSpec:
    """Command-line options over the preset's [load] over built-in defaults; `overrides` (a command's own) over all."""
    base = dict(preset.load)
    if getattr(args, "concurrency", None) is not None:
        base.update(mode=CLOSED, concurrency=args.concurrency)
    if getattr(args, "rate", None) is not None:
        base.update(mode=OPEN, rate=args.rate)
    if getattr(args, "duration", None) is not None or getattr(args, "requests", None) is not None:
        base.update(duration_s=args.duration, requests=args.requests)
    for option, key in (("pool_size", "pool_size"), ("timeout", "timeout_s"), ("user_mix", "user_mix"),
                        ("arrivals", "arrivals"), ("replace_stuck", "replace_stuck"),
                        ("on_worker_death", "on_worker_death"), ("startup_timeout", "startup_timeout_s"),
                        ("ray", "ray"), ("on_node_loss", "on_node_loss")):
        if getattr(args, option, None) is not None:
            base[key] = getattr(args, option)
    base.update(overrides)
    if headless and base.get("duration_s") is None and base.get("requests") is None:
        base["duration_s"] = HEADLESS_DEFAULT_DURATION_S
    spec = LoadSpec(seed=args.seed, workers=args.workers, **base)
    spec.validate()
    return spec


def make_run_dir(args: argparse.Namespace) -> Path:
    """The run directory; an --out that already holds a finished run gets a fresh subdirectory, never an overwrite."""
    run_dir = args.out if args.out is not None else default_run_dir()
    if (run_dir / "summary.json").exists():
        fresh = run_dir / default_run_dir().name
        print(f"{run_dir} already holds a run: writing into {fresh}", file=sys.stderr)
        run_dir = fresh
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create run directory {str(run_dir)!r}: {error.strerror}") from None
    return run_dir


def build_session(args: argparse.Namespace, *, headless: bool, sla_p95_ms: float | None = None,
                  **load_overrides: object) -> tuple[RunSession, Preset]:
    """The run session every measuring command and the dashboard drive: engine, consumers, run directory."""
    preset = load_preset(args.preset)
    # Bad load options are reported before the default database is generated.
    load = resolve_load(args, preset, headless=headless, **load_overrides)
    if load.ray is not None:
        check_ray_address(load.ray)
    target, database, users_db = resolve_target(args, timeout_s=load.timeout_s)
    run_dir = make_run_dir(args)
    engine = LoadEngine(target, load, run_dir=run_dir, database=database, users_db=users_db)
    session = RunSession(engine, run_dir=run_dir, sla_p95_ms=sla_p95_ms or preset.sla_p95_ms,
                         seed=load.seed, database=database, label=getattr(args, "label", None),
                         preset=preset.name, shows=preset.shows)
    if load.user_mix == "edge":
        from mlstress_tui.analysis.edge_users import edge_report

        session.add_report("edge.json", lambda finished: edge_report(finished.totals.total.edge_classes,
                                                                     finished.edge_class_sizes))
    return session, preset
