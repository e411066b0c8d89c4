"""`mlstress-tui show RUN_DIR`: the final panel of a finished run, to read or screenshot again later."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mlstress_tui.commands.run import say_theme_problems
from mlstress_tui.errors import EXIT_OK, UsageError
from mlstress_tui.presets import DEFAULT_SLA_P95_MS
from mlstress_tui.report.acceptance_report import report_verdict
from mlstress_tui.report.compare_report import side_by_side_text
from mlstress_tui.report.run_curve import RunCurve, read_run_curve
from mlstress_tui.session.run_acceptance import run_acceptance


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "show", help="the final panel of a finished run (accept's verdict, or a run against its SLA), or a run beside "
             "its baseline",
        description="Open the acceptance panel of a finished run: report.json of an 'accept' run, or a plain "
                    "run's summary.json judged against its SLA. With --baseline BASE, draw the run beside BASE "
                    "instead. Without a terminal, print it.")
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run or report directory")
    parser.add_argument("--theme", metavar="NAME", help="theme of the panel")
    parser.add_argument("--svg", action="store_true",
                        help="also write acceptance.svg into RUN_DIR (with --baseline: baseline.svg)")
    parser.add_argument("--baseline", type=Path, metavar="BASE",
                        help="a run directory (run, ramp, outliers) to draw beside RUN_DIR: both runs' p95 and "
                             "throughput against the level, both latency histograms, and per level base, new and "
                             "the change as compare judges it; without a terminal, that table")
    parser.add_argument("--force", action="store_true",
                        help="with --baseline: draw runs that differ in target, database, load shape, preset or "
                             "tool version")
    parser.set_defaults(func=run)


def _read(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read {str(path)!r} ({error}): is it a run directory of mlstress-tui?") from None
    if not isinstance(document, dict):
        raise UsageError(f"{str(path)!r} is not a report of mlstress-tui")
    return document


def load_run_report(run_dir: Path) -> dict:
    """The acceptance document of a finished run: its report.json, else one built from its summary.json."""
    if not run_dir.is_dir():
        raise UsageError(f"run directory {str(run_dir)!r} does not exist: pass a directory a run or accept wrote")
    report = _read(run_dir / "report.json")
    if report is not None:
        try:
            # Today's rule, also for a report written before it (an interrupted suite once read PASS).
            report["verdict"] = report_verdict(report)
        except (KeyError, TypeError, AttributeError) as error:
            raise UsageError(f"{str(run_dir / 'report.json')!r} is not a report this version reads ({error})") from None
        return report
    summary = _read(run_dir / "summary.json")
    if summary is None:
        raise UsageError(f"{str(run_dir)!r} holds no report.json or summary.json: it is not a finished run "
                         "(a run killed before its end leaves intervals.jsonl only)")
    try:
        report = run_acceptance(summary, sla_p95_ms=summary.get("sla_p95_ms") or DEFAULT_SLA_P95_MS,
                                ramp=_read(run_dir / "ramp.json"), outliers=_read(run_dir / "outliers.json"))
    except (KeyError, TypeError, ValueError) as error:
        raise UsageError(f"{str(run_dir / 'summary.json')!r} is not a summary this version reads ({error})") from None
    report["verdict"] = report_verdict(report)
    return report


def against_baseline(new_dir: Path, base_dir: Path, *, force: bool) -> tuple[RunCurve, RunCurve, dict]:
    """NEW and BASE read, checked comparable by compare's rule, and compared: what `show --baseline` draws."""
    from mlstress_tui.analysis.compare import default_bounds
    from mlstress_tui.commands.compare import all_differences, check_comparable, compared

    base, new = read_run_curve(base_dir), read_run_curve(new_dir)
    found = all_differences(base.record, new.record)
    check_comparable(str(base_dir), str(new_dir), found, force=force)
    _comparison, document = compared(base.record, new.record, default_bounds(), found)
    return base, new, document


def run_against_baseline(args: argparse.Namespace) -> int:
    base, new, document = against_baseline(args.run_dir, args.baseline, force=args.force)
    say_theme_problems()
    from mlstress_tui.tui.baseline_view import save_baseline_svg, show_baseline

    if args.svg:
        print(f"written: {save_baseline_svg(base, new, document, args.run_dir, theme=args.theme)}")
    if sys.stdout.isatty():
        show_baseline(base, new, document, theme=args.theme)
    else:
        print(side_by_side_text(document))
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    if args.baseline is not None:
        return run_against_baseline(args)
    if args.force:
        raise UsageError("--force applies with --baseline BASE only: add --baseline or drop --force")
    from mlstress_tui.tui.acceptance_view import acceptance_text, save_acceptance_svg, show_acceptance

    report = load_run_report(args.run_dir)
    say_theme_problems()
    if args.svg:
        print(f"written: {save_acceptance_svg(report, args.run_dir, theme=args.theme)}")
    if sys.stdout.isatty():
        show_acceptance(report, theme=args.theme)
    else:
        print(acceptance_text(report))
    return EXIT_OK
