"""The release checklist the tool was born from, each item filled with its evidence: pass, fail, or not checked and why.

Pure: it reads what `accept` measured and decided (stage metrics, how each stage
ended, the criteria's results, the database's shape, the production profile if
one was given) and never measures anything itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlstress_tui.stages import COMPLETED, LoadStage, OutliersStage, RampStage, Stage, StageEnd, format_metric

PASS, FAIL, NOT_CHECKED = "pass", "fail", "not checked"
# The database is at production volume when its row counts are within this share of the profile's.
VOLUME_TOLERANCE = 0.20
# Heavy-tailed: the busiest users far past the typical one (a uniform or Poisson mix has p99/p50 near 1-2).
HEAVY_P99_OVER_P50 = 4.0
HEAVY_MAX_OVER_MEAN = 10.0
# Throughput "confirmed" at a level: within the SLA there, and errors under 1%.
MAX_ERROR_RATE = 0.01


@dataclass(frozen=True)
class ChecklistItem:
    key: str
    item: str
    status: str  # pass | fail | not checked
    evidence: str

    def to_json(self) -> dict[str, str]:
        return {"key": self.key, "item": self.item, "status": self.status, "evidence": self.evidence}


@dataclass(frozen=True)
class ChecklistInputs:
    """What the checklist reads: a suite's stages and what they measured, the database, the production profile."""

    stages: Sequence[Stage]
    measured: Mapping[str, Mapping[str, float | None]]
    ends: Mapping[str, StageEnd]
    criteria: Sequence[Mapping[str, Any]]  # report.json's criteria
    sla_p95_ms: float
    database: Mapping[str, Any]  # users, events (generation parameters)
    event_count_shape: Mapping[str, float] | None  # p50, p99, max, mean of events per user, from the users database
    profile_rows: Mapping[str, int] | None  # the production profile's row counts (--profile), None without one
    junit_written: bool
    outliers: Mapping[str, Any] | None  # the heavy stage's outliers.json
    cache: Mapping[str, Any] | None  # the target's cache (--cache), when the system under test has one
    target_concurrency: int | None
    target_rps: float | None


def release_checklist(inputs: ChecklistInputs) -> list[ChecklistItem]:
    """Every item of the checklist with its evidence, in the article's order."""
    return [_volume(inputs), _heavy_tail(inputs), _percentiles(inputs), _gate(inputs), _heavy_users(inputs),
            _peak_errors(inputs), _throughput(inputs)]


def _ran(inputs: ChecklistInputs, stage: Stage) -> bool:
    end = inputs.ends.get(stage.name)
    return stage.name in inputs.measured and (end is None or end.status == COMPLETED)


def _volume(inputs: ChecklistInputs) -> ChecklistItem:
    item = "database at production volume (within 20% of real row counts)"
    users, events = inputs.database.get("users"), inputs.database.get("events")
    if inputs.profile_rows is None:
        return ChecklistItem("volume", item, NOT_CHECKED, "no production profile given: pass --profile FILE "
                             "(written by 'mlstress-tui profile' on production) to compare row counts")
    if users is None or events is None:
        return ChecklistItem("volume", item, NOT_CHECKED, "the database does not say its row counts (not made by "
                             "'mlstress-tui generate')")
    parts, ok = [], True
    for name, have in (("users", users), ("events", events)):
        want = inputs.profile_rows.get(name)
        if not want:
            continue
        off = have / want - 1.0
        ok = ok and abs(off) <= VOLUME_TOLERANCE
        parts.append(f"{name} {have:,} vs production {want:,} ({off:+.0%})")
    if not parts:
        return ChecklistItem("volume", item, NOT_CHECKED, "the profile holds no row counts")
    return ChecklistItem("volume", item, PASS if ok else FAIL, "; ".join(parts))


def _heavy_tail(inputs: ChecklistInputs) -> ChecklistItem:
    item = "events per user heavy-tailed, not uniform"
    shape = inputs.event_count_shape
    if not shape or not shape.get("mean"):
        return ChecklistItem("heavy_tail", item, NOT_CHECKED, "the target's users have no event counts "
                             "(--users-db names the database to read them from)")
    p50, p99, top, mean = (float(shape.get(key) or 0.0) for key in ("p50", "p99", "max", "mean"))
    tail = p99 / max(p50, 1.0)
    reach = top / mean
    ok = tail >= HEAVY_P99_OVER_P50 and reach >= HEAVY_MAX_OVER_MEAN
    return ChecklistItem("heavy_tail", item, PASS if ok else FAIL,
                         f"p99/p50 {tail:.1f} (p50 {p50:,.0f}, p99 {p99:,.0f} events), max/mean {reach:.0f} "
                         f"(max {top:,.0f}, mean {mean:,.1f}); heavy-tailed needs p99/p50 ≥ {HEAVY_P99_OVER_P50:g} and "
                         f"max/mean ≥ {HEAVY_MAX_OVER_MEAN:g}")


def _load_stages(inputs: ChecklistInputs) -> list[LoadStage]:
    return [stage for stage in inputs.stages if isinstance(stage, LoadStage)]


def _level(stage: LoadStage) -> float:
    return float(stage.concurrency if stage.concurrency is not None else stage.rate or 0.0)


def _percentiles(inputs: ChecklistInputs) -> ChecklistItem:
    item = "p50, p95, p99 measured under moderate and peak load"
    loads = _load_stages(inputs)
    measured = [stage for stage in loads if _ran(inputs, stage)
                and all(inputs.measured[stage.name].get(key) is not None for key in ("p50_ms", "p95_ms", "p99_ms"))]
    if len(loads) < 2:
        return ChecklistItem("percentiles", item, NOT_CHECKED, f"the preset has {len(loads)} load stage(s): a moderate "
                             "and a peak stage are needed")
    shown = "; ".join(f"{stage.name}: p50 {format_metric('p50_ms', inputs.measured[stage.name]['p50_ms'])}, "
                      f"p95 {format_metric('p95_ms', inputs.measured[stage.name]['p95_ms'])}, "
                      f"p99 {format_metric('p99_ms', inputs.measured[stage.name]['p99_ms'])}" for stage in measured)
    if len(measured) < len(loads):
        missing = ", ".join(stage.name for stage in loads if stage not in measured)
        return ChecklistItem("percentiles", item, FAIL, f"not measured: {missing}" + (f"; {shown}" if shown else ""))
    return ChecklistItem("percentiles", item, PASS, shown)


def _gate(inputs: ChecklistInputs) -> ChecklistItem:
    item = "SLA thresholds defined and enforced as a CI gate"
    if not inputs.criteria:
        return ChecklistItem("gate", item, FAIL, "the preset has no criteria")
    if not inputs.junit_written:
        return ChecklistItem("gate", item, FAIL, f"{len(inputs.criteria)} criteria, but junit.xml could not be written")
    return ChecklistItem("gate", item, PASS, f"{len(inputs.criteria)} criteria judged; junit.xml written (a test case "
                         "each) and the exit code gates the release")


def _heavy_users(inputs: ChecklistInputs) -> ChecklistItem:
    item = "the heavy-user cliff identified and the engineering action documented"
    heavy = [stage for stage in inputs.stages if isinstance(stage, OutliersStage)]
    if not heavy:
        return ChecklistItem("heavy_users", item, NOT_CHECKED, "the preset has no heavy-users (outliers) stage")
    report = inputs.outliers
    if report is None or not _ran(inputs, heavy[0]):
        return ChecklistItem("heavy_users", item, FAIL, f"stage {heavy[0].name} did not finish")
    if not report.get("judged", True):
        return ChecklistItem("heavy_users", item, FAIL, "too few requests a stratum to judge the heavy users")
    breach = report.get("breach_event_count")
    action = str(report.get("action", ""))
    if inputs.cache:
        at = inputs.cache.get("at_least_events")
        verified = ("verified behind the cache: no user breaches" if breach is None
                    else f"behind the cache users from {breach:,} events still breach")
        return ChecklistItem("heavy_users", item, PASS if breach is None else FAIL,
                             f"cache for users with {at:,}+ events; {verified}; action: {action}")
    found = "no user breaches the budget" if breach is None else f"users from {breach:,} events breach"
    return ChecklistItem("heavy_users", item, PASS, f"{found}; action: {action}")


def _peak_stage(inputs: ChecklistInputs) -> LoadStage | None:
    loads = _load_stages(inputs)
    named = [stage for stage in loads if stage.name == "peak"]
    return named[0] if named else max(loads, key=_level, default=None)


def _peak_errors(inputs: ChecklistInputs) -> ChecklistItem:
    item = "error rate under peak load measured and below its threshold"
    peak = _peak_stage(inputs)
    if peak is None:
        return ChecklistItem("peak_errors", item, NOT_CHECKED, "the preset has no load stage")
    gates = [c for c in inputs.criteria if c.get("stage") == peak.name and c.get("metric") == "error_rate"]
    measured = inputs.measured.get(peak.name, {}).get("error_rate")
    if not gates:
        shown = "not measured" if measured is None else format_metric("error_rate", measured)
        return ChecklistItem("peak_errors", item, FAIL, f"stage {peak.name}: error rate {shown}, but no criterion "
                             "gates it: add error_rate < … for the peak stage")
    gate = gates[0]
    if not gate.get("judged", True) or measured is None:
        return ChecklistItem("peak_errors", item, FAIL, f"stage {peak.name}: not measured ({gate.get('note')})")
    verdict = PASS if gate.get("passed") else FAIL
    return ChecklistItem("peak_errors", item, verdict, f"stage {peak.name}: {format_metric('error_rate', measured)} "
                         f"{gate.get('op')} {format_metric('error_rate', gate.get('threshold'))}")


def _throughput(inputs: ChecklistInputs) -> ChecklistItem:
    item = "throughput at the target concurrency confirmed"
    target, rps = inputs.target_concurrency, inputs.target_rps
    if target is None and rps is None:
        return ChecklistItem("throughput", item, NOT_CHECKED, "the preset states no target: add target_concurrency "
                             "or target_rps to its [sla]")
    evidence = []
    for stage in inputs.stages:
        metrics = inputs.measured.get(stage.name)
        if metrics is None or not _ran(inputs, stage):
            continue
        if isinstance(stage, RampStage) and target is not None:
            safe = metrics.get("safe_concurrency")
            if safe is not None and not math.isnan(safe) and safe >= target:
                return ChecklistItem("throughput", item, PASS, f"the ramp's safe level {safe:g} users ≥ the target "
                                     f"{target}")
            evidence.append(f"ramp {stage.name}: safe level {'none' if safe is None else f'{safe:g}'}")
        if isinstance(stage, LoadStage):
            p95, errors, achieved = (metrics.get(key) for key in ("p95_ms", "error_rate", "throughput_rps"))
            within = (p95 is not None and p95 <= inputs.sla_p95_ms and errors is not None
                      and errors < MAX_ERROR_RATE)
            at_target = ((target is not None and stage.concurrency is not None and stage.concurrency >= target)
                         or (rps is not None and achieved is not None and achieved >= rps))
            if at_target and within:
                return ChecklistItem("throughput", item, PASS,
                                     f"stage {stage.name}: {format_metric('throughput_rps', achieved)} at "
                                     f"{_level(stage):g} {'users' if stage.concurrency else 'req/s'}, p95 "
                                     f"{format_metric('p95_ms', p95)} within the SLA, errors "
                                     f"{format_metric('error_rate', errors)}")
            if at_target:
                evidence.append(f"stage {stage.name}: p95 {format_metric('p95_ms', p95)}, errors "
                                f"{format_metric('error_rate', errors)}")
    wanted = f"{target} users" if target is not None else f"{rps:g} req/s"
    return ChecklistItem("throughput", item, FAIL, f"no stage carried {wanted} within the SLA"
                         + (f" ({'; '.join(evidence)})" if evidence else ""))
