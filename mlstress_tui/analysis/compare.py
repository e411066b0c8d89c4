"""Two runs side by side: each change judged against the runs' own second-to-second noise, and the regression gate.

A load test is a time series, not one number: each run carries, in its
per-second figures (`intervals.jsonl`), how much a figure moves while nothing
changes. A change between two runs counts only when it clears three bars:

1. the Mann-Whitney rank test on the two runs' per-second figures says they
   moved (two-sided, p < ALPHA). Per-second percentiles are skewed and carry
   single bad seconds (a neighbour's burst, a page fault storm); a rank test
   needs no distribution shape and one wild second moves it by one rank, not
   by its size. Its exact small-sample law also says when a run is too short:
   with 3 seconds against 4 no arrangement of ranks reaches p < 0.05.
2. it is larger than either run's own spread: the span of its per-second
   figures (all of them under 20 seconds, the middle 90% from 20 on). The
   rank test assumes independent seconds, but seconds drift together (a busy
   machine is busy for a while), so two runs of the same system can differ by
   more than their p-value allows; measured on this project's box, p99 of two
   identical `sleep:2ms` runs differed by 47% at p = 0.002, inside the
   noisier run's span (3.0 to 5.6 ms). A change within the span is what the
   runs' own seconds can explain.
3. for a percentile, it is more than one histogram bucket (1%): two figures a
   bucket apart may differ by anything from nothing to 2%.

The machine's own share is measured too: each second carries how late the
workers' own timer woke (the harness lag, the machine's scheduling delay).
For a target outside the workers (sleep, HTTP, PostgreSQL), a latency that
rose no more than the harness lag rose over the same seconds is the machine's:
that rise is added to the noise. A target inside the workers (SQLite, python)
causes lag with its own CPU, so there it is shown, never subtracted.

Inside: "no change". Outside: "faster" or "slower" (for the error rate "more
errors" or "fewer errors"), with the size. A regression fails the gate when it
is outside the noise *and* larger than its bound (`--max-regression`).
Figures a run holds once (a ramp's knee, a breach event count) have no
per-second spread to judge them by: they are shown, never gated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from mlstress_tui.results.histogram import GROWTH

ALPHA = 0.05
# The fewest clean seconds a side at which the rank test can reach ALPHA at all (4 against 4: p = 0.029).
MIN_SECONDS = 4
# Percentiles come from log buckets 1% wide: one bucket apart is within the histogram's resolution.
RESOLUTION = 1.5 * (GROWTH - 1)
# From this many seconds on, the span drops the 5% most extreme seconds at each end.
TRIM_FROM = 20
DEFAULT_MAX_REGRESSION = 0.10
# Any rise in errors outside the noise fails by default: a share of requests, in points.
DEFAULT_MAX_ERROR_RATE_RISE = 0.0

NO_CHANGE, FASTER, SLOWER = "no change", "faster", "slower"
MORE_ERRORS, FEWER_ERRORS = "more errors", "fewer errors"
TOO_SHORT, NOT_MEASURED = "too short to judge", "not measured"
SAME, BETTER, WORSE = "same", "better", "worse"


@dataclass(frozen=True)
class Metric:
    """A figure compared level by level: which way is better and what its change is measured against."""

    name: str  # as acceptance criteria name it (stages.LOAD_METRICS)
    label: str
    gate_key: str  # its name in --max-regression
    better: str  # "lower" | "higher"
    # "own": relative to the base's own figure; "latency": relative to the base's latency p95
    # (a wait of 4 µs that doubles is +100% of nothing: what it costs is its share of the request);
    # "points": an absolute difference of shares.
    scale: str = "own"
    histogram: bool = True
    gated: bool = True  # the harness lag is the machine's figure: shown, never a regression of the system
    machine_lag: str | None = None  # the harness lag percentile that adds to the same latency percentile


METRICS: tuple[Metric, ...] = (
    Metric("p50_ms", "p50", "p50", "lower", machine_lag="harness_lag_p50_ms"),
    Metric("p95_ms", "p95", "p95", "lower", machine_lag="harness_lag_p95_ms"),
    Metric("p99_ms", "p99", "p99", "lower", machine_lag="harness_lag_p99_ms"),
    Metric("throughput_rps", "throughput", "throughput", "higher", histogram=False),
    Metric("error_rate", "error rate", "error_rate", "lower", scale="points", histogram=False),
    Metric("pool_wait_p95_ms", "pool wait p95", "pool_wait", "lower", scale="latency"),
    Metric("harness_lag_p99_ms", "harness lag p99", "harness_lag", "lower", gated=False),
)
METRIC_BY_GATE_KEY = {metric.gate_key: metric for metric in METRICS if metric.gated}
# Targets whose work runs outside the worker processes: the harness lag they see is the machine's.
OUTSIDE_WORKERS = ("sleep", "http", "postgres")
# Figures a run holds once, and which way is better; a name with ":" is one per stratum (`stratum_p95_ms:top 1%`).
SINGLE_FIGURES = {
    "knee_concurrency": ("knee", "higher"), "safe_concurrency": ("safe level", "higher"),
    "knee_rate": ("knee", "higher"), "safe_rate": ("safe level", "higher"),
    "usl_peak_concurrency": ("N* (USL peak)", "higher"), "breach_event_count": ("breach event count", "higher"),
    "stratum_p95_ms": ("p95", "lower"),
}


class LevelData(Protocol):
    """One commanded level of a run: its own figures and its per-second figures (report.run_dir.LevelRecord)."""

    @property
    def key(self) -> tuple[str, float]: ...
    @property
    def label(self) -> str: ...
    @property
    def figures(self) -> Mapping[str, float | None]: ...
    @property
    def series(self) -> Mapping[str, Sequence[float]]: ...


class SectionData(Protocol):
    """A run, or one stage of an accept report: its levels and the figures it holds once."""

    @property
    def levels(self) -> Sequence[LevelData]: ...
    @property
    def extras(self) -> Mapping[str, float | None]: ...
    @property
    def identity(self) -> Mapping[str, object]: ...


@dataclass(frozen=True)
class MetricChange:
    """One metric at one level: base, new, the change, what the noise allows, the verdict and the gate's word."""

    metric: str
    label: str
    base: float | None
    new: float | None
    change: float | None  # a share of the base (or of its latency p95), or points for the error rate
    verdict: str
    noise: float | None = None  # the larger of the two runs' spans, in the change's unit
    p_value: float | None = None
    seconds: tuple[int, int] = (0, 0)  # per-second figures in base and new
    bound: float | None = None
    regressed: bool = False
    note: str = ""
    scale: str = "own"  # what `change` is a share of: "own" (the base figure), "latency" (its p95), "points"
    gated: bool = True
    machine: float | None = None  # the harness lag's rise over the same seconds, counted in the noise


@dataclass(frozen=True)
class LevelComparison:
    """A level both runs commanded (or one only, `only_in` saying which), metric by metric."""

    label: str
    key: tuple[str, float]
    metrics: tuple[MetricChange, ...] = ()
    only_in: str | None = None  # "base" | "new"


@dataclass(frozen=True)
class SingleChange:
    """A figure each run holds once (knee, safe level, N*, breach count, a stratum's p95): shown, not gated."""

    name: str
    label: str
    base: float | None
    new: float | None
    change: float | None
    verdict: str


@dataclass(frozen=True)
class SectionComparison:
    """A run against a run, or a stage against the stage of the same name."""

    name: str
    levels: tuple[LevelComparison, ...] = ()
    singles: tuple[SingleChange, ...] = ()
    only_in: str | None = None
    note: str = ""

    @property
    def regressions(self) -> list[tuple[LevelComparison, MetricChange]]:
        return [(level, change) for level in self.levels for change in level.metrics if change.regressed]


@dataclass(frozen=True)
class Difference:
    """One field in which the runs differ; `refuses` when it makes them incomparable (unless forced)."""

    field: str
    base: object
    new: object
    refuses: bool


@dataclass(frozen=True)
class Comparison:
    """Everything compare found: each section, the differences between the runs, the bounds it gated on."""

    sections: tuple[SectionComparison, ...]
    differences: tuple[Difference, ...] = ()
    bounds: Mapping[str, float] = field(default_factory=dict)

    @property
    def regressions(self) -> list[tuple[SectionComparison, LevelComparison, MetricChange]]:
        return [(section, level, change) for section in self.sections for level, change in section.regressions]

    @property
    def judged(self) -> bool:
        """Whether any metric of any level could be judged: a comparison that judged nothing shows nothing."""
        return any(change.verdict not in (TOO_SHORT, NOT_MEASURED)
                   for section in self.sections for level in section.levels for change in level.metrics
                   if change.gated)

    @property
    def unjudged_reason(self) -> str:
        if not any(level.metrics for section in self.sections for level in section.levels):
            return "the two sides have no level in common"
        return f"every level is too short: fewer than {MIN_SECONDS} clean seconds a side"

    @property
    def verdict(self) -> str:
        """REGRESSION when something regressed beyond its bound and outside the noise; UNJUDGED when nothing could be judged."""
        if self.regressions:
            return "REGRESSION"
        return "PASS" if self.judged else "UNJUDGED"


def default_bounds() -> dict[str, float]:
    """Every gated metric's bound before --max-regression: 10%, and no rise in errors."""
    return {metric.gate_key: DEFAULT_MAX_ERROR_RATE_RISE if metric.scale == "points" else DEFAULT_MAX_REGRESSION
            for metric in METRICS if metric.gated}


def min_p_value(n_base: int, n_new: int) -> float:
    """The smallest two-sided p the rank test can give these sample sizes: every base second below every new one."""
    if n_base == 0 or n_new == 0:
        return 1.0
    return min(1.0, 2.0 / math.comb(n_base + n_new, n_base))


def span(values: Sequence[float]) -> float:
    """How far a run's per-second figures spread: all of them, or the middle 90% of 20 seconds or more."""
    ordered = np.sort(np.asarray(values, dtype=float))
    if ordered.size == 0:
        return 0.0
    trim = ordered.size // TRIM_FROM
    return float(ordered[ordered.size - 1 - trim] - ordered[trim])


def _clean(values: Sequence[float] | None) -> np.ndarray:
    array = np.asarray(values if values is not None else [], dtype=float)
    return array[np.isfinite(array)]


def judge(metric: Metric, base: LevelData, new: LevelData, bound: float | None, *,
          machine: bool = False) -> MetricChange:
    """One metric of one level, base against new, by the bars in this module's docstring.

    `machine`: the target runs outside the workers, so a rise in the harness
    lag over the same seconds is the machine's and counts as noise.
    """
    base_value, new_value = base.figures.get(metric.name), new.figures.get(metric.name)
    base_series, new_series = _clean(base.series.get(metric.name)), _clean(new.series.get(metric.name))
    seconds = (int(base_series.size), int(new_series.size))
    bound = bound if metric.gated else None
    common = dict(metric=metric.name, label=metric.label, base=base_value, new=new_value, seconds=seconds,
                  bound=bound, scale=metric.scale, gated=metric.gated)
    if base_value is None or new_value is None:
        which = "base" if base_value is None else "new"
        return MetricChange(**common, change=None, verdict=NOT_MEASURED, note=f"no {metric.label} in {which}")
    scale = _scale(metric, base)
    if scale is None or scale <= 0:
        verdict = NO_CHANGE if new_value == base_value else NOT_MEASURED
        return MetricChange(**common, change=None, verdict=verdict,
                            note="" if verdict == NO_CHANGE else f"base {metric.label} is 0: no share to measure")
    change = (new_value - base_value) / scale
    if min_p_value(*seconds) >= ALPHA:
        return MetricChange(**common, change=change, verdict=TOO_SHORT,
                            note=f"{seconds[0]} and {seconds[1]} clean seconds: the rank test cannot reach "
                                 f"p < {ALPHA:g} ({MIN_SECONDS} a side can)")
    noise = max(span(base_series), span(new_series)) / scale
    if metric.histogram:
        # For pool wait (scale "latency"): a change in the wait under one bucket of the latency cannot move it.
        noise = max(noise, RESOLUTION)
    if np.array_equal(np.unique(base_series), np.unique(new_series)) and np.unique(base_series).size == 1:
        p_value = 1.0
    else:
        # Imported here: scipy.stats takes about a second to import, and every command's start-up would pay it.
        from scipy.stats import mannwhitneyu

        p_value = float(mannwhitneyu(new_series, base_series, alternative="two-sided").pvalue)
    # Hodges-Lehmann: the median of all new-minus-base differences, the shift the rank test sees.
    shift = float(np.median(np.subtract.outer(new_series, base_series)))
    significant = p_value < ALPHA and np.sign(shift) == np.sign(change)
    lag = _machine_lag(metric, base, new) if machine else None
    note = ""
    if lag is not None and np.sign(lag) == np.sign(change):
        if significant and noise < abs(change) <= noise + abs(lag) / scale:
            note = (f"the harness's own lag {metric.machine_lag.split('_')[2]} "
                    f"{'rose' if lag > 0 else 'fell'} {abs(lag):.2f} ms over the same seconds: the machine's share")
        noise += abs(lag) / scale
    outside = significant and abs(change) > noise
    verdict = _direction(metric, change) if outside else NO_CHANGE
    worse = outside and (change > 0) == (metric.better == "lower")
    regressed = bool(worse and bound is not None and abs(change) > bound)
    return MetricChange(**common, change=change, verdict=verdict, noise=noise, p_value=p_value,
                        regressed=regressed, machine=None if lag is None else lag / scale, note=note)


def _machine_lag(metric: Metric, base: LevelData, new: LevelData) -> float | None:
    """How much the harness lag at the metric's percentile moved (ms, medians of the seconds); None if unknown."""
    if metric.machine_lag is None:
        return None
    base_lag, new_lag = _clean(base.series.get(metric.machine_lag)), _clean(new.series.get(metric.machine_lag))
    if base_lag.size == 0 or new_lag.size == 0:
        return None
    return float(np.median(new_lag) - np.median(base_lag))


def _scale(metric: Metric, base: LevelData) -> float | None:
    if metric.scale == "points":
        return 1.0
    if metric.scale == "latency":
        return base.figures.get("p95_ms") or base.figures.get(metric.name)
    return abs(base.figures[metric.name] or 0.0)


def _direction(metric: Metric, change: float) -> str:
    if metric.scale == "points":
        return MORE_ERRORS if change > 0 else FEWER_ERRORS
    lower_is_better = metric.better == "lower"
    return SLOWER if (change > 0) == lower_is_better else FASTER


def compare_levels(base: Sequence[LevelData], new: Sequence[LevelData], bounds: Mapping[str, float], *,
                   machine: bool = False) -> tuple[LevelComparison, ...]:
    """Levels matched by what was commanded (mode and value), in base's order, then those only new has."""
    new_by_key = {level.key: level for level in new}
    base_keys = {level.key for level in base}
    rows = []
    for level in base:
        other = new_by_key.get(level.key)
        if other is None:
            rows.append(LevelComparison(label=level.label, key=level.key, only_in="base"))
            continue
        rows.append(LevelComparison(label=level.label, key=level.key, metrics=tuple(
            judge(metric, level, other, bounds.get(metric.gate_key), machine=machine) for metric in METRICS)))
    rows += [LevelComparison(label=level.label, key=level.key, only_in="new")
             for level in new if level.key not in base_keys]
    return tuple(rows)


def compare_singles(base: Mapping[str, float | None], new: Mapping[str, float | None]) -> tuple[SingleChange, ...]:
    """Figures each run holds once, for the names both have: same, better or worse, never gated."""
    rows = []
    for name in [name for name in base if name in new]:
        kind, _, stratum = name.partition(":")
        label, better = SINGLE_FIGURES.get(kind, (kind, "higher"))
        if stratum:
            label = f"{label} {stratum}"
        base_value, new_value = base[name], new[name]
        if base_value is None or new_value is None or math.isnan(base_value) or math.isnan(new_value):
            verdict = SAME if base_value == new_value else NOT_MEASURED
            rows.append(SingleChange(name, label, base_value, new_value, None, verdict))
            continue
        if math.isinf(base_value) or math.isinf(new_value):
            change = None
        else:
            change = (new_value - base_value) / abs(base_value) if base_value else None
        if new_value == base_value:
            verdict = SAME
        else:
            verdict = BETTER if (new_value > base_value) == (better == "higher") else WORSE
        rows.append(SingleChange(name, label, base_value, new_value, change, verdict))
    return tuple(rows)


def compare_sections(base: Mapping[str, SectionData | None], new: Mapping[str, SectionData | None],
                     bounds: Mapping[str, float],
                     notes: Mapping[str, str] | None = None) -> tuple[SectionComparison, ...]:
    """Sections (a run, or an accept report's stages) matched by name; None for a stage that did not run."""
    notes = notes or {}
    sections = []
    for name in [*base, *(name for name in new if name not in base)]:
        base_section, new_section = base.get(name), new.get(name)
        if name not in new or name not in base:
            sections.append(SectionComparison(name, only_in="base" if name in base else "new"))
        elif base_section is None or new_section is None:
            which = "base" if base_section is None else "new"
            sections.append(SectionComparison(name, note=f"did not run in {which}"))
        else:
            machine = all(section.identity.get("target kind") in OUTSIDE_WORKERS
                          for section in (base_section, new_section))
            sections.append(SectionComparison(
                name, levels=compare_levels(base_section.levels, new_section.levels, bounds, machine=machine),
                singles=compare_singles(base_section.extras, new_section.extras), note=notes.get(name, "")))
    return tuple(sections)


# What makes two runs comparable: a difference here refuses the comparison unless --force.
REFUSING_FIELDS = ("run kind", "target kind", "database users", "database events", "database seed", "load mode",
                   "levels", "user mix", "arrivals", "preset", "tool version", "stages")


def differences(base: Mapping[str, object], new: Mapping[str, object], *,
                ramps: bool = False) -> tuple[Difference, ...]:
    """Each field in which the two identities differ, refusing ones first.

    A field missing on one side (a summary from before the tool wrote it) is
    not a difference: nothing says they differ. Ramp levels are comparable when
    one ramp's steps begin the other's: a slower system stops at its cliff sooner.
    """
    found = []
    for name in [*base, *(name for name in new if name not in base)]:
        base_value, new_value = base.get(name), new.get(name)
        if base_value is None or new_value is None or base_value == new_value:
            continue
        if name == "levels" and ramps and _one_begins_the_other(base_value, new_value):
            continue
        found.append(Difference(name, base_value, new_value, refuses=name in REFUSING_FIELDS))
    return tuple(sorted(found, key=lambda difference: not difference.refuses))


def _one_begins_the_other(base: object, new: object) -> bool:
    if not (isinstance(base, tuple | list) and isinstance(new, tuple | list)) or not base or not new:
        return False
    shorter, longer = (base, new) if len(base) <= len(new) else (new, base)
    return tuple(longer[:len(shorter)]) == tuple(shorter)


def parse_bounds(text: str, bounds: Mapping[str, float] | None = None) -> dict[str, float]:
    """`10%` (every metric but the error rate) or `p95=5%,throughput=3%` (each named one) over `bounds`.

    Values are percent: of the base figure, of the base latency p95 for pool
    wait, and points of requests for the error rate. ValueError says what is wrong.
    """
    result = dict(bounds if bounds is not None else default_bounds())
    for part in (piece.strip() for piece in text.split(",")):
        if not part:
            continue
        key, equals, value = part.rpartition("=")
        key = key.strip().removesuffix("_ms").removesuffix("_rps").removesuffix("_p95")
        share = _percent(value)
        if not equals:
            result.update({name: share for name, metric in METRIC_BY_GATE_KEY.items() if metric.scale != "points"})
        elif key in METRIC_BY_GATE_KEY:
            result[key] = share
        else:
            raise ValueError(f"unknown metric {key!r} in {text!r}: use {', '.join(METRIC_BY_GATE_KEY)}")
    return result


def _percent(text: str) -> float:
    cleaned = text.strip().removesuffix("%").strip()
    try:
        value = float(cleaned)
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not a percentage (write 10% or 2.5%)") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{text.strip()!r} must be a percentage of 0 or more")
    return value / 100.0
