"""Acceptance criteria held against what each stage measured: PASS or FAIL per criterion, and for the suite.

A criterion on a stage that did not finish (interrupted, cut off before its
own end, never run) is not judged: it is neither passed nor failed, and the
suite is INCOMPLETE (`stages.verdict_of`). A stage that could not start (its
target gone) fails its criteria with the reason.

No criterion passes on a number that was not measured. Two metrics read None
as a fact rather than a gap: `breach_event_count` None means no stratum of
users breaches the stage's threshold, counted as +infinity (so `> N` and
`>= N` pass and `< N` and `<= N` fail). `knee_concurrency` and
`safe_concurrency` None mean the ramp's first step already broke its SLA
(`analysis.ramp.find_knee`; a ramp that never breaks reports its last step
instead), so they fail whatever the comparison, saying so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mlstress_tui.analysis.validity import validity
from mlstress_tui.stages import COMPLETED, COULD_NOT_START, NOT_RUN, Criterion, StageEnd, verdict_of

# Why a metric can be None although its stage ran, in the words a report uses.
NOT_MEASURED_BECAUSE = {
    "knee_concurrency": "no knee: the ramp's first step already broke its SLA",
    "safe_concurrency": "no safe level: the ramp's first step already broke its SLA",
    "usl_peak_concurrency": "no USL peak: too few ramp steps to fit",
}
# summary.json's latency keys, as the load metrics name them.
_LATENCY_METRICS = {"p50_ms": "p50", "p90_ms": "p90", "p95_ms": "p95", "p99_ms": "p99", "p999_ms": "p999",
                    "max_ms": "max", "mean_ms": "mean"}


@dataclass(frozen=True)
class CriterionResult:
    """A criterion, the number it was held against (None when not measured), whether it passed, and why if not plain."""

    criterion: Criterion
    measured: float | None
    passed: bool  # never None: a criterion that could not be judged did not pass, and `note` says why
    note: str = ""
    judged: bool = True  # False: its stage did not finish, so it neither passed nor failed (the suite is INCOMPLETE)


def evaluate(criteria: Sequence[Criterion], measured: Mapping[str, Mapping[str, float | None]],
             suspect: Mapping[str, str | None] | None = None, *, ends: Mapping[str, StageEnd] | None = None,
             why_missing: Mapping[str, Mapping[str, str]] | None = None) -> list[CriterionResult]:
    """Each criterion against `measured[stage][metric]`; a stage in `suspect` keeps its verdicts with the reason noted.

    `ends` says how each stage ended (default: completed when measured, not run
    otherwise); `why_missing[stage][metric]` says why a metric the stage gave
    as None is missing, when the stage knows better than NOT_MEASURED_BECAUSE.
    A metric missing or None was not measured (but see the module's note on
    breach_event_count) and fails.
    """
    suspect = suspect or {}
    results = []
    for criterion in criteria:
        end = stage_end(criterion.stage, measured, ends)
        if end.status == COULD_NOT_START:
            results.append(CriterionResult(criterion, None, False, f"stage {criterion.stage!r} could not start: "
                                                                   f"{end.reason}"))
            continue
        value, passed, notes = _judge(criterion, measured, (why_missing or {}).get(criterion.stage, {}))
        if not end.finished:
            # What it measured before it stopped is shown, never judged.
            results.append(CriterionResult(criterion, value, False, _not_judged(criterion.stage, end), judged=False))
            continue
        reason = suspect.get(criterion.stage)
        if reason:
            notes.append(f"measurement suspect: {reason}")
        results.append(CriterionResult(criterion, value, passed, "; ".join(notes)))
    return results


def stage_end(stage: str, measured: Mapping[str, object], ends: Mapping[str, StageEnd] | None) -> StageEnd:
    """How a stage ended: as `ends` says, else completed when it measured something and not run when it did not."""
    if ends and stage in ends:
        return ends[stage]
    return StageEnd(COMPLETED) if stage in measured else StageEnd(NOT_RUN, "did not run")


def _not_judged(stage: str, end: StageEnd) -> str:
    return f"not judged: stage {stage!r} {end.reason or end.status.replace('_', ' ')}"


def _judge(criterion: Criterion, measured: Mapping[str, Mapping[str, float | None]],
           why_missing: Mapping[str, str]) -> tuple[float | None, bool, list[str]]:
    stage, metric = criterion.stage, criterion.metric
    if stage not in measured:
        return None, False, [f"not measured: stage {stage!r} did not run"]
    metrics = measured[stage]
    if metric not in metrics:
        return None, False, [f"not measured: stage {stage!r} reported no {metric}"]
    value = metrics[metric]
    if value is None and metric == "breach_event_count":
        return math.inf, criterion.holds(math.inf), ["no users breach the threshold: counted as +infinity"]
    if value is None:
        why = why_missing.get(metric) or NOT_MEASURED_BECAUSE.get(metric, f"stage {stage!r} gave no {metric}")
        return None, False, [f"not measured: {why}"]
    value = float(value)
    if math.isnan(value):
        return None, False, [f"not measured: stage {stage!r} gave no number for {metric}"]
    return value, criterion.holds(value), []


def verdict(results: Sequence[CriterionResult], ends: Mapping[str, StageEnd] | None = None) -> str:
    """The suite's verdict (`stages.verdict_of`): INCOMPLETE when a stage did not finish, else PASS or FAIL."""
    statuses = [end.status for end in (ends or {}).values()]
    # A criterion left unjudged belongs to a stage that did not finish, whether or not `ends` names it.
    statuses += [NOT_RUN for result in results if not result.judged]
    return verdict_of((result.passed for result in results), statuses)


def load_metrics(summary: Mapping) -> dict[str, float | None]:
    """A load stage's metrics from its summary.json document (schema mlstress.summary/1)."""
    latency = summary.get("latency_ms") or {}
    metrics: dict[str, float | None] = {metric: latency.get(key) for metric, key in _LATENCY_METRICS.items()}
    metrics["pool_wait_p95_ms"] = (summary.get("pool_wait_ms") or {}).get("p95")
    for key in ("error_rate", "throughput_rps", "requests", "errors"):
        metrics[key] = summary.get(key)
    if not summary.get("requests"):
        # summary.json says 0.0 for no requests; an error rate of nothing must not pass `error_rate < 0.01`.
        metrics["error_rate"] = None
    return metrics


def suspect_reason(summary: dict) -> str | None:
    """Why the harness cannot vouch for a run's latencies (`validity`'s rule), None when it can."""
    return validity(summary).suspect_reason
