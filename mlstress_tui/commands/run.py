"""`mlstress-tui run`: drive a target with load, in the dashboard or headless."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from mlstress_tui.commands.options import (add_load_arguments, add_metrics_arguments, add_output_arguments,
                                           add_target_arguments, build_session, metrics_served,
                                           watch_metrics)
from mlstress_tui.commands.stop_signals import StopSignals
from mlstress_tui import __version__
from mlstress_tui.errors import EXIT_OK, UsageError
from mlstress_tui.report.run_curve import RunCurve, read_run_curve
from mlstress_tui.report.run_dir import run_identity
from mlstress_tui.session import RunSession
from mlstress_tui.session.headless_printer import HeadlessPrinter, print_summary, say_waiting


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="drive a target with load and watch it live",
                                   description="Drive the feature-retrieval path with load, in the dashboard or headless.")
    add_target_arguments(parser)
    add_load_arguments(parser)
    add_output_arguments(parser)
    add_metrics_arguments(parser)
    add_front_end_arguments(parser)
    parser.set_defaults(func=run)


def add_front_end_arguments(parser: argparse.ArgumentParser) -> None:
    """Dashboard or headless: shared by the commands that can show a run live."""
    parser.add_argument("--headless", action="store_true", help="no dashboard: a progress line a second (automatic when stdout is not a terminal)")
    parser.add_argument("--theme", metavar="NAME", help=f"dashboard theme: {', '.join(theme_names())} (or a Textual built-in)")
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="a finished run directory (run, ramp) of the same target and load mode: its p95 and "
                             "throughput at each level are drawn on the dashboard's level charts while this run "
                             "goes (compare the two afterwards with 'mlstress-tui compare DIR RUN_DIR')")


def read_baseline(args: argparse.Namespace) -> RunCurve | None:
    """--baseline's run, read once before anything starts: one line when there is no finished run there."""
    if getattr(args, "baseline", None) is None:
        return None
    return read_run_curve(args.baseline)


def check_baseline(base: RunCurve | None, session: RunSession) -> None:
    """compare's rule between the baseline and the run about to start (what is known of it before it runs: target,
    database, load mode, preset, tool version); one line, and no empty run directory left, when they differ."""
    if base is None:
        return
    from mlstress_tui.analysis.compare import differences
    from mlstress_tui.commands.compare import check_comparable

    live = run_identity({"target": session.target_info, "load": session.load_description(),
                         "database": session.database, "preset": session.preset,
                         "tool": {"version": __version__}, "seed": session.seed}, [], "")
    # Not known before the run has run: which levels it visits, and whether it becomes a ramp.
    live.update({"levels": None, "run kind": None})
    try:
        check_comparable(str(base.path), "this run", differences(base.record.identity, live), force=None)
    except UsageError:
        with contextlib.suppress(OSError):
            session.run_dir.rmdir()  # only when empty: nothing ran
        raise


def run_headless(session: RunSession, describe: str = "") -> int:
    """One progress line a second, then the summary; signals stop the run and still write it."""
    session.subscribe(HeadlessPrinter(sys.stdout))
    with StopSignals() as stop:
        session.start(say_waiting)
        bound = (f"{session.duration_s:g} s" if session.duration_s else
                 f"{session.requests_limit:,} requests" if session.requests_limit else "until stopped")
        print(f"mlstress-tui: {session.target_info['label']}, {where_workers_run(session)}, "
              f"{describe or bound} -> {session.run_dir}", file=sys.stderr, flush=True)
        for line in clock_lines(session):
            print(line, file=sys.stderr, flush=True)
        session.run_until_finished(stop.event)
        if session.interrupted:
            print("\nstopping: the summary is written", file=sys.stderr, flush=True)
    print_final(session)
    return session.exit_code


def print_final(session: RunSession) -> None:
    """The printed summary: the final snapshot, as summary.json holds it."""
    assert session.final is not None, "print_final after finish()"
    print_summary(session.final, session.run_dir, sys.stdout, session.write_errors, interrupted=session.interrupted)


def where_workers_run(session: RunSession) -> str:
    """'2 worker processes' here, or '4 Ray actors on 2 nodes'."""
    backend = session.load_description().get("backend")
    if not backend:
        return f"{session.worker_count} worker processes"
    nodes = len(backend.get("nodes", ()))
    return f"{session.worker_count} Ray actors on {nodes} node{'s' * (nodes != 1)} (--ray {backend['ray']})"


def clock_lines(session: RunSession) -> list[str]:
    """Each node's clock offset, measured at the start (one past 1 ms is also said as a warning)."""
    offsets = session.load_description().get("backend", {}).get("clock_offsets_ms", {})
    if not offsets:
        return []
    return ["clock offsets at start: " + ", ".join(f"{node} {ms:+.3f} ms" for node, ms in offsets.items())]


def theme_names() -> list[str]:
    """The shipped themes' names (themes/*.toml), for help texts and errors."""
    from mlstress_tui.paths import data_dir

    return sorted(path.stem for path in data_dir("themes").iterdir() if path.is_file())


def check_theme(name: str | None) -> None:
    """An unknown --theme is bad input, caught before any process starts."""
    if name is None:
        return
    from textual.theme import BUILTIN_THEMES

    from mlstress_tui.tui.themes import load_themes

    loaded = load_themes()
    ours = [theme.name for theme in loaded.themes]
    if name not in ours and name not in BUILTIN_THEMES:
        skipped = [problem for problem in loaded.problems if problem.startswith(f"theme {name}.toml")]
        if skipped:
            raise UsageError(f"{skipped[0]}: fix the file, or use one of {', '.join(ours)}")
        raise UsageError(f"unknown theme {name!r}: use one of {', '.join(ours)} (or a Textual built-in theme)")


def say_theme_problems() -> None:
    """One line on stderr for each theme file skipped (the dashboard says it on screen instead)."""
    from mlstress_tui.tui.themes import load_themes

    for problem in load_themes().problems:
        print(f"mlstress-tui: {problem}; skipped", file=sys.stderr, flush=True)


def run_dashboard(session: RunSession, theme: str | None, baseline: RunCurve | None = None) -> int:
    """The dashboard on a started session (a baseline's curve drawn beside the levels); the summary is printed when it closes."""
    from mlstress_tui.tui.app import run_dashboard as show

    session.start(say_waiting)
    try:
        code = show(session, theme=theme, baseline=baseline)
    finally:
        session.finish()
    print_final(session)
    return code if code != EXIT_OK else session.exit_code


def say_baseline_headless(base: RunCurve | None, session: RunSession) -> None:
    """Headless there is no chart to draw the baseline on: said once, with the command that compares the two."""
    if base is not None:
        print(f"mlstress-tui: --baseline is drawn on the dashboard; headless, compare afterwards: "
              f"mlstress-tui compare {base.path} {session.run_dir}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    headless = args.headless or not sys.stdout.isatty()
    check_theme(args.theme)  # the same answer headless: a typo is bad input either way
    base = read_baseline(args)
    with metrics_served(args) as metrics:
        session, _preset = build_session(args, headless=headless)
        check_baseline(base, session)
        watch_metrics(metrics, session)
        if headless:
            say_baseline_headless(base, session)
        code = run_headless(session) if headless else run_dashboard(session, args.theme, base)
        edge = session.reports.get("edge.json")
        if edge is not None:
            from mlstress_tui.analysis.edge_users import edge_lines

            print("\n  edge users by class (edge.json):")
            for line in edge_lines(edge):
                print(f"    {line}")
        return code
