"""Acceptance criteria held against what each stage measured: PASS or FAIL per criterion, and for the suite.

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

from mlstress_tui.stages import Criterion, verdict_of

# Why a metric can be None although its stage ran, in the words a report uses.
NOT_MEASURED_BECAUSE = {
    "knee_concurrency": "no knee: the ramp's first step already broke its SLA",
    "safe_concurrency": "no safe level: the ramp's first step already broke its SLA",
    "usl_peak_concurrency": "no USL peak: too few ramp steps to fit, or no retrograde term (throughput never falls)",
}
# summary.json's latency keys, as the load metrics name them.
_LATENCY_METRICS = {"p50_ms": "p50", "p90_ms": "p90", "p95_ms": "p95", "p99_ms": "p99", "p999_ms": "p999",
                    "max_ms": "max", "mean_ms": "mean"}


@dataclass(frozen=True)
class CriterionResult:
    """A criterion, the number it was held against (None when not measured), whether it passed, and why if not plain."""

    criterion: Criterion
    measured: float | None
    passed: bool  # never None: a criterion that could not be judged failed, and `note` says why
    note: str = ""


def evaluate(criteria: Sequence[Criterion], measured: Mapping[str, Mapping[str, float | None]],
             suspect: Mapping[str, str | None] | None = None) -> list[CriterionResult]:
    """Each criterion against `measured[stage][metric]`; a stage in `suspect` keeps its verdicts with the reason noted.

    A stage missing from `measured` did not run; a metric missing or None was not
    measured (but see the module's note on breach_event_count); either fails.
    """
    suspect = suspect or {}
    results = []
    for criterion in criteria:
        value, passed, notes = _judge(criterion, measured)
        reason = suspect.get(criterion.stage)
        if reason:
            notes.append(f"measurement suspect: {reason}")
        results.append(CriterionResult(criterion, value, passed, "; ".join(notes)))
    return results


def _judge(criterion: Criterion,
           measured: Mapping[str, Mapping[str, float | None]]) -> tuple[float | None, bool, list[str]]:
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
        return None, False, [f"not measured: {NOT_MEASURED_BECAUSE.get(metric, f'stage {stage!r} gave no {metric}')}"]
    value = float(value)
    if math.isnan(value):
        return None, False, [f"not measured: stage {stage!r} gave no number for {metric}"]
    return value, criterion.holds(value), []


def verdict(results: Sequence[CriterionResult]) -> str:
    """"PASS" when every criterion passed, else "FAIL" (also with no criteria: nothing was shown)."""
    return verdict_of(result.passed for result in results)


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
    """Why the harness cannot vouch for a stage's latencies, None when it can.

    SQLite runs inside the workers: the cores it takes (and the timer lag its
    threads cause) are the system's cost, not a harness that fell behind, so
    only a lost load or a stopped harness makes a SQLite stage suspect.
    """
    harness = summary.get("harness", {})
    verdict_ = harness.get("verdict")
    if verdict_ == "load_not_held":
        # The note ends with why the load was not held; what comes before it is about the cores.
        return (harness.get("note") or verdict_).split("; ")[-1]
    stopped = [event for event in summary.get("faults", {}).get("events", [])
               if event.get("action") == "harness_stall" and event.get("stopped")]
    if stopped:
        return f"the harness was stopped for {stopped[0]['stall_ms'] / 1000:.2f} s at {stopped[0]['t']:.1f} s"
    if summary.get("target", {}).get("kind") == "sqlite":
        return None
    if verdict_ in ("stalled", "cpu_bound"):
        return harness.get("note") or verdict_
    return None
