"""Criteria relative to a baseline run (`value = "baseline * 1.10"`) turned into absolute thresholds.

Pure: the baseline is what its report.json holds per stage (`stages[].metrics`,
the numbers its own criteria were judged on), so a threshold is always a
measured number times the preset's ratio, said beside it ("baseline 87.3 ms
× 1.10"). A baseline that did not measure what a criterion needs is an error
naming the stage and metric, never a silent pass or fail.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from mlstress_tui.stages import Criterion, format_metric


class BaselineError(ValueError):
    """The baseline cannot give a criterion its threshold: which stage, which metric, and why."""


@dataclass(frozen=True)
class ResolvedCriterion:
    """A criterion ready to judge; for a relative one, the baseline's figure and the note that says where it came from."""

    criterion: Criterion  # absolute: value is a number
    stated: Criterion  # as the preset states it (relative or not)
    baseline: float | None = None  # the baseline's measurement, for a relative criterion
    note: str = ""


def baseline_metrics(report: Mapping) -> dict[str, dict[str, float | None]]:
    """A report.json's measured metrics by stage name, for the stages that ran."""
    stages = report.get("stages")
    if not isinstance(stages, list):
        raise BaselineError("the baseline report has no stages: is it a report.json that accept wrote?")
    return {stage["name"]: dict(stage.get("metrics") or {}) for stage in stages
            if isinstance(stage, dict) and isinstance(stage.get("name"), str) and stage.get("ran", True)}


def _ratio_text(ratio: float) -> str:
    return f"{ratio:.2f}" if round(ratio, 2) == ratio else f"{ratio:g}"


def resolve_criteria(criteria: Sequence[Criterion],
                     baseline: Mapping[str, Mapping[str, float | None]]) -> list[ResolvedCriterion]:
    """Each criterion with a number to judge by: absolute ones as they are, relative ones as baseline × ratio.

    `baseline` is {stage: {metric: value}} as `baseline_metrics` reads it.
    A breach event count of None in the baseline means nobody breached (+∞,
    as the acceptance criteria count it); any other None or NaN is not measured.
    """
    resolved = []
    for criterion in criteria:
        if not criterion.relative:
            resolved.append(ResolvedCriterion(criterion=criterion, stated=criterion))
            continue
        assert criterion.baseline_ratio is not None
        if criterion.stage not in baseline:
            known = ", ".join(baseline) or "none"
            raise BaselineError(f"{criterion.label}: the baseline has no stage {criterion.stage!r} that ran "
                                f"(its stages: {known}): run the baseline with the same preset")
        metrics = baseline[criterion.stage]
        value = metrics.get(criterion.metric)
        if value is None and criterion.metric == "breach_event_count" and criterion.metric in metrics:
            value = math.inf
        if value is None or (isinstance(value, float) and math.isnan(value)):
            raise BaselineError(f"{criterion.label}: the baseline's stage {criterion.stage!r} measured no "
                                f"{criterion.metric}: nothing to take {_ratio_text(criterion.baseline_ratio)} of")
        value = float(value)
        threshold = value * criterion.baseline_ratio
        note = (f"baseline {format_metric(criterion.metric, value)} × {_ratio_text(criterion.baseline_ratio)}"
                f" = {format_metric(criterion.metric, threshold)}")
        resolved.append(ResolvedCriterion(criterion=replace(criterion, value=threshold), stated=criterion,
                                          baseline=value, note=note))
    return resolved
