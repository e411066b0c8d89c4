"""`mlstress-tui run`: drive a target with load, in the dashboard or headless."""

from __future__ import annotations

import argparse
import signal
import sqlite3
import sys
import threading
from pathlib import Path

from mlstress_tui.errors import EXIT_INTERRUPTED, EXIT_OK, UsageError
from mlstress_tui.load.engine import LoadEngine, LoadSpec
from mlstress_tui.load.stats import CLOSED, OPEN, IntervalStats
from mlstress_tui.load.targets import TargetSpec, parse_target
from mlstress_tui.load.users import USER_MIXES
from mlstress_tui.paths import default_database_path, default_run_dir
from mlstress_tui.pipeline.feature_query import load_query_file
from mlstress_tui.presets import Preset, load_preset

HEADLESS_DEFAULT_DURATION_S = 30.0


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """TARGET options shared by every measuring command."""
    group = parser.add_argument_group("target")
    where = group.add_mutually_exclusive_group()
    where.add_argument("--db", type=Path, metavar="PATH", help="SQLite database made by 'generate' (default: the embedded one)")
    where.add_argument("--target", metavar="SPEC", help="sleep:2ms | python:pkg.module:function")
    group.add_argument("--query", metavar="FILE", help="your own feature query file (SQLite), with a :user_id parameter")
    group.add_argument("--users-db", type=Path, metavar="PATH", help="where sleep/python targets take user ids from")
    group.add_argument("--pool-size", type=_positive_int, metavar="P", help="connection slots (default: one per virtual user; 64 in the open loop)")
    group.add_argument("--timeout", type=_positive_float, metavar="S", help="per-request timeout in seconds (default 5)")


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    """LOAD options shared by every measuring command."""
    group = parser.add_argument_group("load")
    model = group.add_mutually_exclusive_group()
    model.add_argument("--concurrency", type=_positive_int, metavar="N", help="closed loop: N virtual users")
    model.add_argument("--rate", type=_positive_float, metavar="R", help="open loop: R requests per second")
    bound = group.add_mutually_exclusive_group()
    bound.add_argument("--duration", type=_positive_float, metavar="S", help="stop after S seconds")
    bound.add_argument("--requests", type=_positive_int, metavar="N", help="stop after N requests")
    group.add_argument("--user-mix", choices=USER_MIXES, help="which users are requested (default uniform)")
    group.add_argument("--seed", type=int, default=42, metavar="S", help="seed of the request sequence (default 42)")
    group.add_argument("--workers", type=_positive_int, metavar="N", help="worker processes (default: one per core)")
    group.add_argument("--preset", metavar="NAME|FILE", help="load profile: a name from presets/ or a .toml file (default: default)")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="drive a target with load and watch it live",
                                   description="Drive the feature-retrieval path with load, in the dashboard or headless.")
    add_target_arguments(parser)
    add_load_arguments(parser)
    parser.add_argument("--headless", action="store_true", help="no dashboard: a progress line a second (automatic when stdout is not a terminal)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="run directory (default ./mlstress-runs/<UTC timestamp>/)")
    parser.add_argument("--theme", metavar="NAME", help="dashboard theme by name (the themes/ files' names)")
    parser.set_defaults(func=run)


def ensure_default_database() -> Path:
    """The embedded default database, generated on first use with visible progress."""
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


def resolve_target(args: argparse.Namespace) -> tuple[TargetSpec, dict, Path | None]:
    """The target, its database's generation parameters, and where user ids come from."""
    if args.target:
        if args.query:
            raise UsageError("--query applies to the SQLite target only: drop --target or --query")
        spec = parse_target(args.target)
        users_db = args.users_db
        if spec.kind == "python":
            from mlstress_tui.load.targets.python import resolve_function

            resolve_function(spec.function or "")
            if users_db is None:
                users_db = default_database_path()
                if not users_db.exists():
                    raise UsageError("the python target needs user ids: pass --users-db PATH (a database made by 'generate')")
        return spec, database_info(users_db) if users_db else {}, users_db
    db_path = args.db if args.db is not None else ensure_default_database()
    query_sql = load_query_file(args.query) if args.query else None
    spec = TargetSpec(kind="sqlite", db_path=db_path, query_sql=query_sql, query_file=args.query)
    spec.build()  # checks the file, its tables and the query before any process starts
    return spec, database_info(db_path), None


def resolve_load(args: argparse.Namespace, preset: Preset, *, headless: bool) -> LoadSpec:
    """Command-line options over the preset's [load] over built-in defaults."""
    base = dict(preset.load)
    if args.concurrency is not None:
        base.update(mode=CLOSED, concurrency=args.concurrency)
    if args.rate is not None:
        base.update(mode=OPEN, rate=args.rate)
    if args.duration is not None or args.requests is not None:
        base.update(duration_s=args.duration, requests=args.requests)
    for option, key in (("pool_size", "pool_size"), ("timeout", "timeout_s"), ("user_mix", "user_mix")):
        if getattr(args, option) is not None:
            base[key] = getattr(args, option)
    if headless and base.get("duration_s") is None and base.get("requests") is None:
        base["duration_s"] = HEADLESS_DEFAULT_DURATION_S
    spec = LoadSpec(seed=args.seed, workers=args.workers, sla_p95_ms=preset.sla_p95_ms, **base)
    spec.validate()
    return spec


def build_engine(args: argparse.Namespace, *, headless: bool) -> tuple[LoadEngine, Preset]:
    preset = load_preset(args.preset)
    # Bad load options are reported before the default database is generated.
    load = resolve_load(args, preset, headless=headless)
    target, database, users_db = resolve_target(args)
    run_dir = args.out if args.out is not None else default_run_dir()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create run directory {str(run_dir)!r}: {error.strerror}") from None
    return LoadEngine(target, load, run_dir=run_dir, database=database, users_db=users_db), preset


class StopSignals:
    """SIGINT, SIGTERM and SIGHUP set an event instead of killing the process mid-write."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            self._previous[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number: int, frame: object) -> None:
        self.event.set()

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


def format_ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1000:
        return f"{value / 1000:.2f}s"
    if value >= 10:
        return f"{value:.1f}ms"
    if value >= 0.1:
        return f"{value:.2f}ms"
    return f"{value * 1000:.1f}µs"


def progress_line(elapsed_s: float, window: IntervalStats, engine: LoadEngine) -> str:
    load = f"c={engine.concurrency}" if engine.mode == CLOSED else f"rate={engine.rate:g}/s"
    summary = window.latency.summary_ms()
    errors = f"  errors {window.errors}" if window.errors else ""
    late = f"  late {window.late_starts}" if window.late_starts else ""
    return (f"{elapsed_s:7.1f}s  {engine.mode:6} {load:12} {window.throughput_rps:10,.0f} req/s  "
            f"p50 {format_ms(summary['p50']):>8}  p95 {format_ms(summary['p95']):>8}  "
            f"p99 {format_ms(summary['p99']):>8}  max {format_ms(summary['max']):>8}{errors}{late}")


def print_summary(summary: dict, run_dir: Path) -> None:
    out = sys.stdout
    load = summary["load"]["final"]
    shape = f"concurrency {load['concurrency']}" if load["mode"] == CLOSED else f"rate {load['rate']:g}/s"
    print(f"\n{summary['target']['label']}  {load['mode']} loop, {shape}, {summary['duration_s']:.1f} s"
          + ("  (interrupted)" if summary["interrupted"] else ""), file=out)
    print(f"  requests {summary['requests']:,}  ok {summary['ok']:,}  errors {summary['errors']:,}"
          f" ({summary['error_rate']:.2%})  throughput {summary['throughput_rps']:,.1f} req/s", file=out)
    for kind, count in summary["errors_by_kind"].items():
        print(f"    {kind}: {count:,}", file=out)
    for label, key in (("latency", "latency_ms"), ("service", "service_ms"), ("pool wait", "pool_wait_ms")):
        values = summary[key]
        print(f"  {label:9}  " + "  ".join(f"{name} {format_ms(values[name])}" for name in
                                          ("p50", "p90", "p95", "p99", "p999", "max", "mean")), file=out)
    harness = summary["harness"]
    lag = harness["hiccup_ms"]
    print(f"  harness lag  p50 {format_ms(lag['p50'])}  p99 {format_ms(lag['p99'])}  max {format_ms(lag['max'])}"
          f"  (how late the workers' own timer woke)  verdict: {harness['verdict']}", file=out)
    if harness.get("note"):
        print(f"  harness: {harness['note']}", file=out)
    print(f"  written: {run_dir / 'summary.json'}, {run_dir / 'intervals.jsonl'}", file=out)


def run_headless(engine: LoadEngine) -> int:
    """One progress line a second, then the summary; signals stop the run and still write it."""
    with StopSignals() as stop:
        engine.start()
        bound = f"{engine.duration_s:g} s" if engine.duration_s else f"{engine.requests_limit:,} requests" if engine.requests_limit else "until stopped"
        print(f"mlstress-tui: {engine.target.label}, {engine.worker_count} worker processes, {bound} "
              f"-> {engine.run_dir}", file=sys.stderr, flush=True)
        window: IntervalStats | None = None
        while not engine.finished and not stop.event.is_set():
            stop.event.wait(0.1)
            for tick in engine.poll():
                if window is None:
                    window = IntervalStats(index=0, t_start=tick.t_start, t_end=tick.t_start)
                window.merge_later(tick, keep_scatter=False)
                if window.duration_s >= 1.0 - 1e-6:
                    print(progress_line(tick.t_end, window, engine), flush=True)
                    window = None
        if stop.event.is_set():
            engine.interrupted = True
            print("\nstopping: writing the summary …", file=sys.stderr, flush=True)
        summary = engine.finish()
    print_summary(summary, engine.run_dir)
    return EXIT_INTERRUPTED if engine.interrupted else EXIT_OK


def check_theme(name: str | None) -> None:
    """An unknown --theme is bad input, caught before any process starts."""
    if name is None:
        return
    from textual.theme import BUILTIN_THEMES

    from mlstress_tui.tui.themes import load_themes

    ours = [theme.name for theme in load_themes().themes]
    if name not in ours and name not in BUILTIN_THEMES:
        raise UsageError(f"unknown theme {name!r}: use one of {', '.join(ours)} (or a Textual built-in theme)")


def run(args: argparse.Namespace) -> int:
    headless = args.headless or not sys.stdout.isatty()
    if not headless:
        check_theme(args.theme)
    engine, preset = build_engine(args, headless=headless)
    if headless:
        return run_headless(engine)
    from mlstress_tui.tui.app import run_dashboard

    engine.start()
    try:
        code = run_dashboard(engine, sla_p95_ms=preset.sla_p95_ms, theme=args.theme)
    finally:
        summary = engine.finish()
    print_summary(summary, engine.run_dir)
    return code
