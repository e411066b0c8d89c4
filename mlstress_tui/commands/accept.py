"""`mlstress-tui accept`: run a preset's stages, judge its criteria, write the reports and gate the release."""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import os
import sys
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlstress_tui import __version__
from mlstress_tui.analysis.acceptance import evaluate, load_metrics, verdict
from mlstress_tui.analysis.baseline import ResolvedCriterion, baseline_metrics, resolve_criteria
from mlstress_tui.analysis.checklist import ChecklistInputs, release_checklist
from mlstress_tui.analysis.edge_users import edge_lines
from mlstress_tui.analysis.outliers import heavy_breach_rate
from mlstress_tui.analysis.validity import validity
from mlstress_tui.commands.options import (add_label_argument, add_metrics_arguments, add_ray_arguments,
                                           add_target_arguments, bounded, build_session, check_ray_address,
                                           metrics_served, resolve_target, watch_metrics)
from mlstress_tui.commands.outliers import attach_outliers, print_outliers
from mlstress_tui.commands.ramp import SAFETY_BOUND_SLACK_S, print_ramp
from mlstress_tui.commands.run import run_headless, say_theme_problems
from mlstress_tui.commands.stop_signals import StopSignals
from mlstress_tui.errors import (EXIT_CRITERIA_FAILED, EXIT_FAULT, EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_OK,
                                 UsageError)
from mlstress_tui.paths import default_run_dir
from mlstress_tui.presets import Preset, load_preset
from mlstress_tui.report.acceptance_report import build_report, cliff_view, heavy_view, write_reports
from mlstress_tui.report.pushgateway import ACCEPT_JOB, PushError, check_pushgateway, push_verdict, shown_url
from mlstress_tui.results.kinds import CLOSED, OPEN
from mlstress_tui.results.units import counted
from mlstress_tui.session import RUN_ENDED, RampPlan, RunSession
from mlstress_tui.stages import (COMPLETED, COULD_NOT_START, DID_NOT_END, INCOMPLETE, INTERRUPTED, NOT_RUN, PASS,
                                 EdgeStage, LoadStage, OutliersStage, RampStage, Stage, StageEnd)

if TYPE_CHECKING:
    from mlstress_tui.session.metrics_exporter import MetricsEndpoint

DEFAULT_PRESET = "acceptance"
# The ramp controller's reason when the run's time bound ended it before its own last step (session.finish).
RAMP_CUT_OFF = RUN_ENDED
# A duration-bound stage that stopped this much short of its duration did not end (its end instant is exact).
DURATION_SLACK_S = 0.5
INTERRUPTED_BEFORE = "did not run: the suite was interrupted before it"


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
    add_label_argument(group)
    group.add_argument("--report-dir", type=Path, metavar="DIR",
                       help="where the reports and each stage's run go (default ./mlstress-runs/<UTC timestamp>/)")
    group.add_argument("--seed", type=bounded("seed"), default=42, metavar="S", help="seed of the request sequences (default 42)")
    group.add_argument("--workers", type=bounded("workers"), metavar="N", help="worker processes (default: one per core)")
    add_ray_arguments(group)
    group.add_argument("--baseline", type=Path, metavar="DIR",
                       help="a report directory of an earlier accept (the system as shipped): criteria stated as "
                            "'baseline * 1.10' are judged against it, and every criterion shows before and after")
    group.add_argument("--profile", type=Path, metavar="FILE",
                       help="production's profile ('mlstress-tui profile'): the release checklist compares the "
                            "database's row counts with it")
    group.add_argument("--headless", action="store_true", help="no final panel on screen (automatic when stdout is not a terminal)")
    group.add_argument("--theme", metavar="NAME", help="theme of the final panel and acceptance.svg")
    group.add_argument("--pushgateway", metavar="URL",
                       help=f"push the verdict and each criterion's measurement to a Prometheus Pushgateway, "
                            f"http://host:9091 (job {ACCEPT_JOB}, grouped by preset; a password in the URL is sent "
                            "as basic auth, never shown)")
    add_metrics_arguments(parser)
    parser.set_defaults(func=run)


def _stage_args(args: argparse.Namespace, stage: Stage, report_dir: Path) -> argparse.Namespace:
    """The shared options, with the stage's own run directory; the stage's load comes as overrides."""
    stage_args = copy.copy(args)
    stage_args.out = report_dir / stage.name
    return stage_args


def _describe(stage: Stage) -> str:
    if isinstance(stage, LoadStage):
        level = counted(stage.concurrency, "user") if stage.concurrency else f"{stage.rate:g} req/s"
        if stage.requests_per_user:
            return f"load, {level} x {stage.requests_per_user} requests each"
        return f"load, {level}, " + (f"{stage.requests:,} requests" if stage.requests else f"{stage.duration_s:g} s")
    if isinstance(stage, RampStage):
        return (f"ramp, {stage.start} to {stage.max} users ({stage.step}), {stage.step_duration_s:g} s a step, "
                f"SLA p95 {stage.sla_p95_ms:g} ms")
    if isinstance(stage, OutliersStage):
        return (f"heavy users, {stage.requests_per_stratum} requests a stratum, {counted(stage.concurrency, 'user')}, "
                f"budget {stage.threshold_ms:g} ms")
    return f"edge users, {counted(stage.requests, 'request')}, {counted(stage.concurrency, 'user')}"


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
        session, _ = build_session(args, headless=False, sla_p95_ms=stage.threshold_ms, mode=CLOSED,
                                   concurrency=stage.concurrency, user_mix="stratified",
                                   requests_per_group=stage.requests_per_stratum, duration_s=None, requests=None)
        attach_outliers(session)
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


def stage_gaps(stage: Stage, session: RunSession) -> dict[str, str]:
    """Why a metric the stage gave as None is missing, in its analysis's own words (the USL fit's)."""
    if isinstance(stage, RampStage) and session.ramp_report is not None:
        usl = session.ramp_report.get("usl")
        if usl is None:
            return {"usl_peak_concurrency": "no USL fit: fewer than 3 ramp steps with throughput to fit"}
        if usl.get("peak_concurrency") is None and usl.get("peak_note"):
            return {"usl_peak_concurrency": usl["peak_note"]}
    return {}


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
    """The report directory, created and proven writable (a byte written and removed): else OSError."""
    report_dir = args.report_dir if args.report_dir is not None else default_run_dir()
    report_dir.mkdir(parents=True, exist_ok=True)
    probe = report_dir / f".mlstress-write-probe-{os.getpid()}"
    try:
        probe.write_bytes(b"mlstress-tui\n")
    finally:
        with contextlib.suppress(OSError):
            probe.unlink(missing_ok=True)
    return report_dir


def how_stage_ended(stage: Stage, session: RunSession) -> StageEnd:
    """Whether a stage that started ran to its own end: its requests all with an outcome, its duration, its ramp's end."""
    summary = session.summary or {}
    ran_s = summary.get("duration_s") or 0.0
    if session.interrupted:
        return StageEnd(INTERRUPTED, f"interrupted after {ran_s:.1f} s")
    if isinstance(stage, RampStage):
        stopped = (session.ramp_report or {}).get("stopped_because")
        if stopped == RAMP_CUT_OFF:
            return StageEnd(DID_NOT_END, f"the ramp was cut off after {ran_s:.1f} s, before its last step ended")
        return StageEnd(COMPLETED)
    limit = (summary.get("load") or {}).get("requests")
    if limit:
        # A request lost with a dead worker has an outcome of its own (lost, and the exit code says so).
        accounted = summary.get("requests", 0) + (summary.get("faults") or {}).get("requests_lost", 0)
        if accounted < limit:
            return StageEnd(DID_NOT_END, f"did not end: {accounted:,} of {limit:,} requests had an outcome "
                                         f"after {ran_s:.1f} s")
        return StageEnd(COMPLETED)
    asked = (summary.get("load") or {}).get("duration_s")
    if asked and ran_s < asked - DURATION_SLACK_S:
        return StageEnd(DID_NOT_END, f"did not end: ran {ran_s:.1f} s of {asked:g} s")
    return StageEnd(COMPLETED)


def _say(problem: str) -> None:
    print(f"mlstress-tui accept: error: {problem}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    preset = load_preset(args.preset)
    if not preset.criteria:
        raise UsageError(f"preset {preset.name!r} has no [[criteria]]: nothing to gate on; use an acceptance "
                         "preset such as 'acceptance', 'smoke' or 'peak'")
    baseline = read_baseline(args.baseline, preset) if args.baseline is not None else None
    if baseline is None and any(criterion.relative for criterion in preset.criteria):
        relative = ", ".join(criterion.label for criterion in preset.criteria if criterion.relative)
        raise UsageError(f"preset {preset.name!r} judges {relative} against a baseline: pass --baseline DIR, the "
                         "report directory of an earlier accept with the same preset")
    profile_rows = _profile_rows(args.profile) if args.profile is not None else None
    if args.ray is not None:  # before the report directory: a cluster that is not there leaves nothing behind
        check_ray_address(args.ray)
    if args.pushgateway is not None:  # a gate whose verdict could not be delivered is said before it runs
        check_pushgateway(args.pushgateway)
    # A target that cannot work at all is bad input, said before anything runs; one that stops working
    # between stages (a model file removed, a service gone) is a stage that could not start.
    resolve_target(args)
    with metrics_served(args) as metrics:
        try:
            report_dir = _make_report_dir(args)
        except OSError as error:
            where = args.report_dir if args.report_dir is not None else "the default report directory"
            _say(f"cannot write reports into {str(where)!r}: {error.strerror or error}; free space there, make it "
                 "writable, or choose another --report-dir")
            return EXIT_FAULT
        with StopSignals() as between_stages:
            return _run_suite(args, preset, report_dir, between_stages.event, baseline, profile_rows,
                              metrics)


@dataclass(frozen=True)
class Baseline:
    """An earlier accept's report: where it is, its measurements by stage, and the criteria resolved against it."""

    directory: Path
    report: dict[str, Any]
    metrics: dict[str, dict[str, float | None]]
    resolved: list[ResolvedCriterion]


def read_baseline(directory: Path, preset: Preset) -> Baseline:
    """The baseline report directory, read and the preset's relative criteria resolved: one line when it cannot be."""
    path = directory / "report.json"
    if not path.is_file():
        raise UsageError(f"--baseline {str(directory)!r} holds no report.json: pass the report directory of an "
                         "earlier 'mlstress-tui accept'")
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        metrics = baseline_metrics(report)
        resolved = resolve_criteria(preset.criteria, metrics)
    except (OSError, ValueError) as error:  # BaselineError is a ValueError
        raise UsageError(f"--baseline {str(directory)!r}: {error}") from None
    if report.get("preset") != preset.name:
        print(f"note: the baseline ran preset {report.get('preset')!r}, this suite {preset.name!r}: stages are "
              "matched by name", file=sys.stderr)
    return Baseline(directory, report, metrics, resolved)


def _profile_rows(path: Path) -> dict[str, int]:
    from mlstress_tui.synth.production_profile import load_profile

    rows = load_profile(path).get("rows") or {}
    return {key: int(value) for key, value in rows.items() if isinstance(value, int | float)}


def _run_suite(args: argparse.Namespace, preset: Preset, report_dir: Path, stop: threading.Event,
               baseline: Baseline | None = None, profile_rows: dict[str, int] | None = None,
               metrics: MetricsEndpoint | None = None) -> int:
    """Every stage that can run, then the verdict and the reports; signals between stages stop the suite too."""
    started_at, began = datetime.now(timezone.utc), time.monotonic()
    measured: dict[str, dict] = {}
    why_missing: dict[str, dict[str, str]] = {}
    suspect: dict[str, str | None] = {}
    validities: dict[str, dict] = {}
    ends: dict[str, StageEnd] = {}
    summaries: dict[str, dict] = {}
    database: dict = {}
    faulted = False  # a stage lost a worker or its files: a pass is then not a clean pass
    target: dict = {}
    shape: dict[str, float] | None = None
    outliers: dict | None = None
    # What the acceptance panel draws: the first ramp's steps, the first heavy-user stage's strata.
    cliff: dict | None = None
    heavy: dict | None = None
    for number, stage in enumerate(preset.stages, start=1):
        if stop.is_set() or any(end.status == INTERRUPTED for end in ends.values()):
            ends[stage.name] = StageEnd(NOT_RUN, INTERRUPTED_BEFORE)
            continue
        print(f"\n== stage {number}/{len(preset.stages)} {stage.name}: {_describe(stage)}", flush=True)
        session = None
        try:
            session = _stage_session(_stage_args(args, stage, report_dir), stage)
            watch_metrics(metrics, session, run=f"{report_dir.name}/{stage.name}")
            database = session.database or database
            target = session.target_info
            if stop.is_set():  # a signal while the stage was being built: its own handler was not there yet
                ends[stage.name] = StageEnd(NOT_RUN, INTERRUPTED_BEFORE)
                continue
            code = run_headless(session, describe=f"stage {stage.name}")
        except UsageError as error:
            print(f"  !! stage {stage.name} could not start: {error}", flush=True)
            ends[stage.name] = StageEnd(COULD_NOT_START, str(error))
            if session is not None:
                summaries[stage.name] = {"run_dir": _relative(session.run_dir, report_dir)}
            continue
        _print_stage_extras(stage, session)
        shape = shape or session.event_count_shape()
        if isinstance(stage, OutliersStage):
            outliers = session.reports.get("outliers.json")
        if isinstance(stage, RampStage) and cliff is None:
            cliff = cliff_view(session.ramp_report, stage=stage.name)
        if isinstance(stage, OutliersStage) and heavy is None:
            heavy = heavy_view(session.reports.get("outliers.json"), stage=stage.name)
        summary = session.summary or {}
        measured[stage.name] = stage_metrics(stage, session)
        why_missing[stage.name] = stage_gaps(stage, session)
        stage_validity = validity(summary)
        suspect[stage.name] = stage_validity.suspect_reason
        validities[stage.name] = stage_validity.to_json()
        ends[stage.name] = how_stage_ended(stage, session)
        summaries[stage.name] = {"run_dir": _relative(session.run_dir, report_dir),
                                 "duration_s": summary.get("duration_s"),
                                 "harness_verdict": summary.get("harness", {}).get("verdict")}
        print(f"  stage {stage.name}: {stage_validity.line}", flush=True)
        if ends[stage.name].status != COMPLETED:
            print(f"  !! stage {stage.name}: {ends[stage.name].reason}", flush=True)
        faulted = faulted or code == EXIT_FAULT
    criteria = [item.criterion for item in baseline.resolved] if baseline is not None else list(preset.criteria)
    results = evaluate(criteria, measured, suspect, ends=ends, why_missing=why_missing)
    if baseline is not None:
        results = [replace(result, note="; ".join(part for part in (item.note, result.note) if part))
                   for result, item in zip(results, baseline.resolved)]
    report = build_report(preset_name=preset.name, stages=preset.stages, results=results, measured=measured,
                          suspect=suspect, summaries=summaries, seed=args.seed, database=database,
                          started_at=started_at, duration_s=time.monotonic() - began, ends=ends,
                          validity=validities)
    report["target"] = target
    report["label"] = args.label
    if baseline is not None:
        _add_baseline(report, baseline)
    report["tool_version"] = __version__
    report["cliff"] = cliff
    report["heavy_users"] = heavy
    # A signal after the last stage ended stopped nothing: the suite is complete, and judged so.
    interrupted = any(end.status == INTERRUPTED or end.reason == INTERRUPTED_BEFORE for end in ends.values())
    report["interrupted"] = interrupted
    write_errors: list[str] = []
    report["checklist"] = [item.to_json() for item in release_checklist(ChecklistInputs(
        stages=preset.stages, measured=measured, ends=ends, criteria=report["criteria"],
        sla_p95_ms=preset.sla_p95_ms, database=database, event_count_shape=shape, profile_rows=profile_rows,
        junit_written=True, outliers=outliers, cache=target.get("cache"),
        target_concurrency=preset.target_concurrency, target_rps=preset.target_rps))]
    written = write_reports(report, report_dir, write_errors)
    if any(str(path).endswith("junit.xml") for path in write_errors):
        for item in report["checklist"]:
            if item["key"] == "gate":
                item.update(status="fail", evidence="junit.xml could not be written")
    _finish_panel(args, report, report_dir, written, write_errors)
    pushed = args.pushgateway is None or _push(args.pushgateway, report)
    if not args.headless and sys.stdout.isatty():
        from mlstress_tui.tui.acceptance_view import show_acceptance

        show_acceptance(report, theme=args.theme)
    return exit_code(verdict(results, ends), interrupted=interrupted, reports_written=not write_errors and pushed,
                     faulted=faulted)


def _add_baseline(report: dict[str, Any], baseline: Baseline) -> None:
    """Before and after: each criterion's baseline measurement beside its own, and where the baseline came from."""
    for criterion, item in zip(report["criteria"], baseline.resolved):
        before = baseline.metrics.get(criterion["stage"], {}).get(criterion["metric"])
        criterion["baseline"] = before if before is None or math.isfinite(before) else None
        if item.stated.relative:
            criterion["stated"] = item.stated.label
    old = baseline.report
    report["baseline"] = {"dir": str(baseline.directory), "verdict": old.get("verdict"), "label": old.get("label"),
                          "started_at": old.get("started_at"), "preset": old.get("preset"),
                          "target": (old.get("target") or {}).get("label")}


def checklist_lines(report: dict[str, Any]) -> list[str]:
    """The release checklist as plain lines for a log: each item's status and its evidence."""
    items = report.get("checklist") or []
    if not items:
        return []
    width = max(len(item["status"]) for item in items)
    return ["\nrelease checklist:"] + [f"  {item['status'].upper():<{width}}  {item['item']}: {item['evidence']}"
                                        for item in items]


def _push(url: str, report: dict) -> bool:
    """The verdict to the Pushgateway, said in one line either way; whether it arrived."""
    try:
        push_verdict(url, ACCEPT_JOB, report)
    except PushError as error:
        _say(f"{error} (the verdict above is the suite's; Prometheus does not have it)")
        return False
    print(f"  pushed to the Pushgateway at {shown_url(url)} (job {ACCEPT_JOB}, preset {report['preset']})",
          flush=True)
    return True


def exit_code(suite_verdict: str, *, interrupted: bool, reports_written: bool, faulted: bool) -> int:
    """130 interrupted; 3 reports not written (or the verdict not pushed); 4 INCOMPLETE (a stage did not end); 1 FAIL; 3 a clean pass that
    lost load or files on the way; 0 PASS."""
    if interrupted:
        return EXIT_INTERRUPTED
    if not reports_written:
        return EXIT_FAULT
    if suite_verdict == INCOMPLETE:
        return EXIT_INCOMPLETE
    if suite_verdict != PASS:
        return EXIT_CRITERIA_FAILED
    return EXIT_FAULT if faulted else EXIT_OK


def _relative(run_dir: Path, report_dir: Path) -> str:
    try:
        return str(run_dir.relative_to(report_dir))
    except ValueError:
        return str(run_dir)


def _finish_panel(args: argparse.Namespace, report: dict, report_dir: Path, written: list[Path],
                  write_errors: list[str]) -> None:
    """The verdict as text and acceptance.svg beside the reports."""
    from mlstress_tui.tui.acceptance_view import acceptance_text, save_acceptance_svg

    print("\n" + acceptance_text(report), flush=True)
    for line in checklist_lines(report):
        print(line, flush=True)
    say_theme_problems()
    try:
        written = [*written, save_acceptance_svg(report, report_dir, theme=args.theme)]
    except OSError as error:
        write_errors.append(f"cannot write {report_dir / 'acceptance.svg'}: {error.strerror or error}")
    if written:
        print("  written: " + ", ".join(str(path) for path in written), flush=True)
    for problem in write_errors:
        _say(f"{problem} (the verdict above is the suite's; that file is not on disk)")
