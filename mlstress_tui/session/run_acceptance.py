"""The acceptance panel's document for one run (the dashboard's `a`, `show` of a plain run): the run against its SLA."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlstress_tui.analysis.acceptance import evaluate, load_metrics
from mlstress_tui.analysis.validity import validity
from mlstress_tui.report.acceptance_report import build_report, cliff_view, heavy_view, levels_view
from mlstress_tui.stages import COMPLETED, INTERRUPTED, Criterion, LoadStage, StageEnd

RUN_STAGE = "run"
# What any run is held to without an acceptance preset: its SLA, and errors under 1%.
RUN_MAX_ERROR_RATE = 0.01


def run_acceptance(summary: Mapping[str, Any], *, sla_p95_ms: float, ramp: Mapping[str, Any] | None = None,
                   outliers: Mapping[str, Any] | None = None, levels: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """report.json's shape for a single run: p95 within the SLA and errors under 1%, with its knee and breach count.

    `levels`: the levels the run visited, shaped as ramp.json (the session's curve: a point per level value, its
    knee), drawn when there was no ramp; without it, summary.json's levels, a column per visit.
    """
    criteria = [Criterion(RUN_STAGE, "p95_ms", "<=", float(sla_p95_ms)),
                Criterion(RUN_STAGE, "error_rate", "<", RUN_MAX_ERROR_RATE)]
    measured = {RUN_STAGE: load_metrics(summary)}
    judged = validity(summary)
    suspect = {RUN_STAGE: judged.suspect_reason}
    # A run stopped before its own end (Ctrl-C, q on an unbounded dashboard run is its own end) is not judged.
    interrupted = bool(summary.get("interrupted"))
    ends = {RUN_STAGE: StageEnd(INTERRUPTED, f"interrupted after {float(summary.get('duration_s') or 0):.1f} s")
            if interrupted else StageEnd(COMPLETED)}
    results = evaluate(criteria, measured, suspect, ends=ends)
    # A run is one load stage, bounded by what it was asked (the report reads a stage's name and kind only).
    stage = LoadStage(name=RUN_STAGE, concurrency=1, duration_s=max(float(summary.get("duration_s") or 1.0), 1e-3))
    report = build_report(preset_name=f"run (SLA p95 {sla_p95_ms:g} ms)", stages=[stage], results=results,
                          measured=measured, suspect=suspect, seed=summary.get("seed", 0),
                          database=summary.get("database") or {}, started_at=summary.get("started_at", ""),
                          duration_s=summary.get("duration_s") or 0.0, ends=ends,
                          validity={RUN_STAGE: judged.to_json()})
    report["target"] = summary.get("target", {})
    report["label"] = summary.get("label")
    report["run_preset"] = summary.get("preset")
    report["tool_version"] = summary.get("tool_version")
    report["cliff"] = (cliff_view(ramp, stage="ramp") if ramp
                       else cliff_view(levels, stage="levels") if levels
                       else levels_view(summary, sla_p95_ms=float(sla_p95_ms)))
    report["heavy_users"] = heavy_view(outliers, stage="heavy users")
    report["interrupted"] = summary.get("interrupted", False)
    if ramp:
        report["knee_concurrency"] = ramp.get("knee_concurrency")
        report["safe_concurrency"] = ramp.get("safe_concurrency")
    if outliers:
        report["breach_event_count"] = outliers.get("breach_event_count")
        report["breach_measured"] = True
    return report
