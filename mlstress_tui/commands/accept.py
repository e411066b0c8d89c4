"""`mlstress-tui accept`: run a preset's stages, judge its criteria, write the reports and gate the release."""

from __future__ import annotations

import argparse
import copy
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from mlstress_tui.analysis.acceptance import evaluate, load_metrics, suspect_reason, verdict
from mlstress_tui.analysis.edge_users import edge_lines
from mlstress_tui.analysis.outliers import heavy_breach_rate
from mlstress_tui.commands.options import add_target_arguments, build_session, positive_int
from mlstress_tui.commands.outliers import attach_outliers, print_outliers
from mlstress_tui.commands.ramp import SAFETY_BOUND_SLACK_S, print_ramp
from mlstress_tui.commands.run import run_headless
from mlstress_tui.errors import EXIT_CRITERIA_FAILED, EXIT_FAULT, EXIT_INTERRUPTED, EXIT_OK, UsageError
from mlstress_tui.paths import default_run_dir
from mlstress_tui.presets import Preset, load_preset
from mlstress_tui.report.acceptance_report import build_report, write_reports
from mlstress_tui.results.interval_stats import CLOSED, OPEN
from mlstress_tui.session import RampPlan, RunSession
from mlstress_tui.stages import EdgeStage, LoadStage, OutliersStage, RampStage, Stage

DEFAULT_PRESET = "acceptance"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "accept", help="gate a release: run a preset's stages and judge its criteria",
        description="Run the stages of an acceptance preset (load, ramp, heavy users, edge users) one after "
                    "the other, judge each criterion on what was measured, and write report.json, report.md, "
                    "junit.xml and acceptance.svg. Exit 0 when every criterion passes, 1 when any fails.")
    add_target_arguments(parser)
    group = parser.add_argument_group("acceptance")
    group.add_argument("--preset", metavar="NAME|FILE", default=DEFAULT_PRESET,
                       help=f"acceptance suite: a name from presets/ or a .toml file (default {DEFAULT_PRESET})")
    group.add_argument("--report-dir", type=Path, metavar="DIR",
                       help="where the reports and each stage's run go (default ./mlstress-runs/<UTC timestamp>/)")
    group.add_argument("--seed", type=int, default=42, metavar="S", help="seed of the request sequences (default 42)")
    group.add_argument("--workers", type=positive_int, metavar="N", help="worker processes (default: one per core)")
    group.add_argument("--headless", action="store_true", help="no final panel on screen (automatic when stdout is not a terminal)")
    group.add_argument("--theme", metavar="NAME", help="theme of the final panel and acceptance.svg")
    parser.set_defaults(func=run)


def _stage_args(args: argparse.Namespace, stage: Stage, report_dir: Path) -> argparse.Namespace:
    """The shared options, with the stage's own run directory; the stage's load comes as overrides."""
    stage_args = copy.copy(args)
    stage_args.out = report_dir / stage.name
    return stage_args


def _describe(stage: Stage) -> str:
    if isinstance(stage, LoadStage):
        level = f"{stage.concurrency} users" if stage.concurrency else f"{stage.rate:g} req/s"
        if stage.requests_per_user:
            return f"load, {level} x {stage.requests_per_user} requests each"
        return f"load, {level}, " + (f"{stage.requests:,} requests" if stage.requests else f"{stage.duration_s:g} s")
    if isinstance(stage, RampStage):
        return (f"ramp, {stage.start} to {stage.max} users ({stage.step}), {stage.step_duration_s:g} s a step, "
                f"SLA p95 {stage.sla_p95_ms:g} ms")
    if isinstance(stage, OutliersStage):
        return (f"heavy users, {stage.requests_per_stratum} requests a stratum, {stage.concurrency} user(s), "
                f"budget {stage.threshold_ms:g} ms")
    return f"edge users, {stage.requests} requests, {stage.concurrency} user(s)"


def _stage_session(args: argparse.Namespace, stage: Stage) -> RunSession:
    """The run session of one stage, built like every other command's."""
    if isinstance(stage, LoadStage):
        level = ({"mode": CLOSED, "concurrency": stage.concurrency} if stage.concurrency
                 else {"mode": OPEN, "rate": stage.rate})
        session, _ = build_session(args, headless=False, **level, requests=stage.total_requests,
                                   duration_s=stage.duration_s)
        return session
    if isinstance(stage, RampStage):
        plan = RampPlan(mode=CLOSED, start=float(stage.start), maximum=float(stage.max),
                        step=None if stage.factor else float(stage.step), factor=stage.factor,
                        step_duration_s=stage.step_duration_s, sla_p95_ms=stage.sla_p95_ms,
                        max_error_rate=stage.max_error_rate, settle_at_safe=False)
        plan.validate()
        bound = len(plan.levels()) * plan.step_duration_s * 2 + SAFETY_BOUND_SLACK_S
        session, _ = build_session(args, headless=False, mode=CLOSED, concurrency=stage.start, duration_s=bound,
                                   requests=None)
        session.start_ramp(plan, on_end=lambda _ramp: session.stop())
        return session
    if isinstance(stage, OutliersStage):
        session, _ = build_session(args, headless=False, mode=CLOSED, concurrency=stage.concurrency,
                                   user_mix="stratified", requests_per_group=stage.requests_per_stratum,
                                   duration_s=None, requests=None)
        attach_outliers(session, stage.threshold_ms, stage.concurrency)
        return session
    session, _ = build_session(args, headless=False, mode=CLOSED, concurrency=stage.concurrency, user_mix="edge",
                               requests=stage.requests, duration_s=None)
    return session


def stage_metrics(stage: Stage, session: RunSession) -> dict[str, float | None]:
    """The numbers a stage's criteria are judged on, from its finished session."""
    summary = session.summary or {}
    metrics = load_metrics(summary)
    if isinstance(stage, RampStage) and session.ramp_report is not None:
        usl = session.ramp_report.get("usl") or {}
        metrics.update(knee_concurrency=session.ramp_report.get("knee_concurrency"),
                       safe_concurrency=session.ramp_report.get("safe_concurrency"),
                       usl_peak_concurrency=usl.get("peak_concurrency"))
    if isinstance(stage, OutliersStage) and "outliers.json" in session.reports:
        report = session.reports["outliers.json"]
        # Not judged (too few requests) is not "nobody breaches": NaN fails any criterion on it as not measured.
        breach = report["breach_event_count"] if report.get("judged", True) else float("nan")
        metrics.update(breach_event_count=breach,
                       population_share_above=report["population_share_above"],
                       users_above=report["users_above"], breach_rate=heavy_breach_rate(report))
    if isinstance(stage, EdgeStage) and "edge.json" in session.reports:
        metrics["edge_errors"] = session.reports["edge.json"]["edge_errors"]
    return metrics


def _print_stage_extras(stage: Stage, session: RunSession) -> None:
    if isinstance(stage, RampStage) and session.ramp_report is not None:
        print_ramp(session.ramp_report, sys.stdout)
    if isinstance(stage, OutliersStage) and "outliers.json" in session.reports:
        print_outliers(session.reports["outliers.json"], sys.stdout)
    if isinstance(stage, EdgeStage) and "edge.json" in session.reports:
        print("\n  edge users by class:", file=sys.stdout)
        for line in edge_lines(session.reports["edge.json"]):
            print(f"    {line}", file=sys.stdout)


def _make_report_dir(args: argparse.Namespace) -> Path:
    report_dir = args.report_dir if args.report_dir is not None else default_run_dir()
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create report directory {str(report_dir)!r}: {error.strerror}") from None
    return report_dir


def run(args: argparse.Namespace) -> int:
    preset = load_preset(args.preset)
    if not preset.criteria:
        raise UsageError(f"preset {preset.name!r} has no [[criteria]]: nothing to gate on; use an acceptance "
                         "preset such as 'acceptance', 'smoke' or 'peak'")
    relative = [criterion.label for criterion in preset.criteria if criterion.relative]
    if relative:
        raise UsageError(f"preset {preset.name!r} judges {', '.join(relative)} against a baseline run, which this "
                         "accept does not take yet: state those values as numbers")
    report_dir = _make_report_dir(args)
    started_at, began = datetime.now(timezone.utc), time.monotonic()
    measured: dict[str, dict] = {}
    suspect: dict[str, str | None] = {}
    summaries: dict[str, dict] = {}
    database: dict = {}
    interrupted = False
    faulted = False  # a stage lost a worker or its files: a pass is then not a clean pass
    target: dict = {}
    for number, stage in enumerate(preset.stages, start=1):
        print(f"\n== stage {number}/{len(preset.stages)} {stage.name}: {_describe(stage)}", flush=True)
        session = _stage_session(_stage_args(args, stage, report_dir), stage)
        database = session.database or database
        target = session.engine.target_info
        code = run_headless(session, describe=f"stage {stage.name}")
        _print_stage_extras(stage, session)
        summary = session.summary or {}
        measured[stage.name] = stage_metrics(stage, session)
        suspect[stage.name] = suspect_reason(summary)
        summaries[stage.name] = {"run_dir": str(session.run_dir.relative_to(report_dir)),
                                 "duration_s": summary.get("duration_s"),
                                 "harness_verdict": summary.get("harness", {}).get("verdict")}
        if code == EXIT_INTERRUPTED:
            interrupted = True
            break
        faulted = faulted or code == EXIT_FAULT
    results = evaluate(preset.criteria, measured, suspect)
    report = build_report(preset_name=preset.name, stages=preset.stages, results=results, measured=measured,
                          suspect=suspect, summaries=summaries, seed=args.seed, database=database,
                          started_at=started_at, duration_s=time.monotonic() - began)
    report["target"] = target
    report["interrupted"] = interrupted
    written = write_reports(report, report_dir)
    _finish_panel(args, report, report_dir, written)
    if interrupted:
        return EXIT_INTERRUPTED
    if verdict(results) != "PASS":
        return EXIT_CRITERIA_FAILED
    return EXIT_FAULT if faulted else EXIT_OK


def _finish_panel(args: argparse.Namespace, report: dict, report_dir: Path, written: list[Path]) -> None:
    """The verdict as text, acceptance.svg beside the reports, and the panel on screen when there is one."""
    from mlstress_tui.tui.acceptance_view import acceptance_text, save_acceptance_svg, show_acceptance

    print("\n" + acceptance_text(report), flush=True)
    svg = save_acceptance_svg(report, report_dir, theme=args.theme)
    print("  written: " + ", ".join(str(path) for path in [*written, svg]), flush=True)
    if not args.headless and sys.stdout.isatty():
        show_acceptance(report, theme=args.theme)
