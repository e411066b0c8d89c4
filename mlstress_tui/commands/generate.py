"""`mlstress-tui generate`: build the production-shaped synthetic database."""

from __future__ import annotations

import argparse
import shutil
import signal
import sqlite3
import sys
import time
from pathlib import Path
from typing import TextIO

from mlstress_tui.commands.options import positive_float, positive_int
from mlstress_tui.errors import EXIT_OK, UsageError
from mlstress_tui.paths import default_database_path
from mlstress_tui.synth import GenerateParams, GenerateResult, generate_sqlite, read_meta
from mlstress_tui.synth.params import DEFAULT_CAP_FACTOR, TAIL_INDEX_RANGE

_BAR_WIDTH = 24
_REDRAW_SECONDS = 0.1


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    defaults = GenerateParams()
    parser = subparsers.add_parser(
        "generate",
        help="build a production-shaped synthetic database (SQLite file or PostgreSQL)",
        description=(
            "Build a synthetic users/events database with a heavy tail of power users, "
            "realistic rows and deliberate edge cases. Same seed, same database."
        ),
    )
    parser.add_argument("--users", type=positive_int, default=None, metavar="N", help=f"users (default {defaults.users:,})")
    parser.add_argument(
        "--mean-events", type=float, default=None,
        help=f"mean events per user (default {defaults.mean_events:g})",
    )
    parser.add_argument(
        "--tail-index", type=float, default=None, metavar="A",
        help=f"how heavy the tail of events per user is: P(events > x) ~ x^-A, {TAIL_INDEX_RANGE[0]:g} (heaviest) "
             f"to {TAIL_INDEX_RANGE[1]:g} (default {defaults.tail_index:g})",
    )
    parser.add_argument(
        "--max-events", type=int, default=None,
        help=f"most events any one user gets (default {DEFAULT_CAP_FACTOR}x the mean; at least 3x the mean)",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help=f"random seed (default {defaults.seed})")
    parser.add_argument(
        "--locale", default=defaults.locale, help=f"Faker locale of names, emails, cities (default {defaults.locale})",
    )
    parser.add_argument(
        "--out", type=Path, default=None,
        help="database file to write (default: the default database in the cache directory)",
    )
    parser.add_argument("--dsn", metavar="URL", help="write into PostgreSQL instead: postgresql://user@host:5432/db (libpq's PG* variables and .pgpass apply)")
    parser.add_argument("--force", action="store_true", help="replace --out (or the tables at --dsn) if they exist")
    parser.add_argument(
        "--no-edge-cases", dest="edge_cases", action="store_false",
        help="no users without events, no NULL profile fields, no extreme users",
    )
    parser.add_argument(
        "--profile", type=Path, metavar="FILE",
        help="generate a twin of the database 'mlstress-tui profile' described: its shape, not its rows",
    )
    parser.add_argument(
        "--scale", type=positive_float, default=None, metavar="X",
        help="with --profile: the twin's size as a share of the profiled users (default 1; 0.1 is a tenth)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.dsn is not None and args.out is not None:
        raise UsageError("--out and --dsn are two places to write: give one")
    params, profile, after_load = _params(args)
    params.validate()
    if args.dsn is None:
        check_room(params, args.out if args.out is not None else default_database_path(), force=args.force)
    bar = ProgressBar(sys.stderr) if sys.stderr.isatty() else None
    # SIGTERM (timeout, a service manager) stops the load like Ctrl-C does, so its clean-up runs too.
    previous = signal.signal(signal.SIGTERM, _stop_like_ctrl_c)
    try:
        if args.dsn is not None:
            from mlstress_tui.synth.postgres_writer import generate_postgres

            result = generate_postgres(params, args.dsn, force=args.force, progress=bar.update if bar else None,
                                       after_load=after_load)
        else:
            out = args.out if args.out is not None else default_database_path()
            if args.out is None:
                out.parent.mkdir(parents=True, exist_ok=True)  # the cache directory is ours to create
            result = generate_sqlite(params, out, force=args.force, progress=bar.update if bar else None,
                                     after_load=after_load)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if bar:
            bar.close()
    print(summary(result, params, {} if args.dsn is not None else event_shape(result.path),
                  in_database=args.dsn is not None))
    if profile is not None:
        print(twin_report(result.after_load["twin"]))
    return EXIT_OK


def _params(args: argparse.Namespace):
    """The parameters asked for, the profile a twin is made from (or None) and the twin's fit check."""
    defaults = GenerateParams()
    if args.profile is None:
        if args.scale is not None:
            raise UsageError("--scale sizes a twin: give --profile FILE too (or --users N for a plain database)")
        params = GenerateParams(
            users=args.users or defaults.users,
            mean_events=defaults.mean_events if args.mean_events is None else args.mean_events,
            max_events=args.max_events,
            seed=args.seed,
            locale=args.locale,
            edge_cases=args.edge_cases,
            tail_index=defaults.tail_index if args.tail_index is None else args.tail_index,
        )
        return params, None, None
    shape_options = {"--users": args.users, "--mean-events": args.mean_events, "--max-events": args.max_events,
                     "--tail-index": args.tail_index, "--no-edge-cases": None if args.edge_cases else True}
    given = [option for option, value in shape_options.items() if value is not None]
    if given:
        raise UsageError(f"--profile sets the shape, so {', '.join(given)} cannot be given with it; "
                         "size the twin with --scale")
    from mlstress_tui.synth.production_profile import load_profile
    from mlstress_tui.synth.twin import twin_fit_check, twin_params

    profile = load_profile(args.profile)
    scale = 1.0 if args.scale is None else args.scale
    params = twin_params(profile, scale=scale, seed=args.seed, locale=args.locale)
    return params, profile, twin_fit_check(profile, scale, args.profile)


def twin_report(twin: dict) -> str:
    """The side-by-side fit table under the generation summary."""
    from mlstress_tui.synth.twin import FitRow, format_fit_table

    rows = [FitRow(**row) for row in twin["fit"]]
    width = shutil.get_terminal_size((100, 24)).columns
    head = (f"twin of {twin['profile_source']} (profile {twin['profile']}, taken {twin['profile_taken_at']}) "
            f"at scale {twin['scale']:g}: profile vs twin")
    verdict = ("" if twin["within_tolerance"] else "!! ") + twin["summary"]
    return "\n".join([head, format_fit_table(rows, width), f"  {verdict}"])


# Measured on the default database (100,000 users, 4.5 M events: 580 MB with its indexes, ~250,000 events/s).
BYTES_PER_EVENT = 125
BYTES_PER_USER = 200
EVENTS_PER_SECOND = 250_000
# A generation this big is announced before it starts (size and time), so nobody waits blind.
SAY_SIZE_FROM = 1e9


def check_room(params: GenerateParams, out: Path, *, force: bool) -> None:
    """Say the size and time before a long generation; refuse one the disk cannot hold (unless --force)."""
    events = params.users * params.mean_events
    size = events * BYTES_PER_EVENT + params.users * BYTES_PER_USER
    seconds = events / EVENTS_PER_SECOND
    where = out.parent if out.parent.is_dir() else Path.cwd()
    free = shutil.disk_usage(where).free
    if size > free and not force:
        raise UsageError(f"{out} would need about {size / 1e9:,.1f} GB ({events:,.0f} events) and {where} has "
                         f"{free / 1e9:,.1f} GB free: generate fewer users, write elsewhere, or pass --force to try anyway")
    if size >= SAY_SIZE_FROM:
        print(f"generating about {events:,.0f} events for {params.users:,} users: about {size / 1e9:,.1f} GB, "
              f"{seconds / 60:,.0f} min", file=sys.stderr)


def _stop_like_ctrl_c(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def event_shape(path: Path) -> dict:
    """The always-on realism facts (item skew, timestamps) stored beside the data."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return read_meta(conn).get("event_shape", {})
    finally:
        conn.close()


class ProgressBar:
    """A one-line progress bar with events/s, redrawn in place at most ten times a second."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._started = time.monotonic()
        self._drawn_at = 0.0
        self._drawn = False

    def update(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._drawn_at < _REDRAW_SECONDS and done < total:
            return
        self._drawn_at = now
        share = done / total if total else 1.0
        filled = round(share * _BAR_WIDTH)
        rate = done / max(now - self._started, 1e-9)
        # After the last event SQLite still builds the indexes, with no steps to report.
        after = "  building indexes..." if done >= total else ""
        self._stream.write(
            f"\r  [{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] {share:4.0%}  "
            f"{done:,}/{total:,} events  {rate:,.0f} rows/s{after} "
        )
        self._stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self._stream.write("\r\033[K" if self._stream.isatty() else "\n")
            self._stream.flush()


def summary(result: GenerateResult, params: GenerateParams, shape: dict | None = None, *,
            in_database: bool = False) -> str:
    """What was generated, its shape, the edge cases injected, and where it went."""
    size = (f"  size in database {result.file_size / 1e6:,.1f} MB (users and events, with their indexes)"
            if in_database else f"  file size        {result.file_size / 1e6:,.1f} MB")
    per_user = result.events_per_user
    edge = result.edge_cases
    lines = [
        f"wrote {result.path}",
        f"  users            {result.users:,}",
        f"  events           {result.events:,}",
        f"  events per user  mean {per_user['mean']:,.1f}  p50 {per_user['p50']:,.0f}  "
        f"p99 {per_user['p99']:,.0f}  max {per_user['max']:,}  (cap {params.event_cap:,})",
        f"  edge cases       {describe_edge_cases(edge)}",
        *_shape_lines(shape or {}),
        size,
        f"  time             {result.seconds:,.1f} s ({result.events / max(result.seconds, 1e-9):,.0f} events/s)",
        f"  seed             {params.seed} (same seed, same database)",
    ]
    return "\n".join(lines)


def describe_edge_cases(edge: dict) -> str:
    """One line naming what was injected on purpose."""
    if not edge.get("enabled"):
        return "none (--no-edge-cases)"
    extremes = list(edge.get("extreme_user_events", {}).values())
    if len(extremes) > 1:
        extreme_range = f" ({min(extremes):,}-{max(extremes):,} events)"
    else:
        extreme_range = "".join(f" ({count:,} events)" for count in extremes)
    extreme_noun = "user" if edge["extreme_users"] == 1 else "users"
    nulls = ", ".join(f"{column} {count:,}" for column, count in edge.get("null_fields", {}).items())
    return (
        f"{edge['zero_event_users']:,} users without events; "
        f"{edge['extreme_users']:,} extreme {extreme_noun}{extreme_range}; "
        f"NULL {nulls}"
    )


def _shape_lines(shape: dict) -> list[str]:
    lines = []
    if "item_popularity" in shape:
        share = shape.get("top_1pct_items_event_share")
        top = f"; top 1% of items get {share:.0%} of events" if share is not None else ""
        lines.append(f"  items            {shape['item_popularity']}{top}")
    if "timestamps" in shape:
        lines.append(f"  timestamps       {shape['timestamps']}")
    return lines
