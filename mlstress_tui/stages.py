"""An acceptance suite's parts: the stages a preset runs, the criteria that gate a release, the metrics of each stage.

Plain data that imports nothing of ours but the shared bounds, so the preset
reader, the analysis that evaluates criteria and the report writers all share
one definition.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar

from mlstress_tui.bounds import BOUNDS, Bound

INT = (int,)
NUMBER = (int, float)
TEXT = (str,)

LOAD_METRICS = ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms", "mean_ms", "error_rate",
                "throughput_rps", "pool_wait_p95_ms", "requests", "errors")
# What the unit of each metric is: how a report prints it and what a threshold means.
METRIC_UNITS = {
    **{metric: "ms" for metric in LOAD_METRICS if metric.endswith("_ms")},
    "error_rate": "share", "throughput_rps": "req/s", "requests": "count", "errors": "count",
    "knee_concurrency": "users", "safe_concurrency": "users", "usl_peak_concurrency": "users",
    "breach_event_count": "events", "population_share_above": "share", "users_above": "count",
    "breach_rate": "share", "edge_errors": "count",
}
OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}
STAGE_NAME = re.compile(r"[a-z0-9_-]+")


class StageError(ValueError):
    """An impossible stage: the key at fault and what is wrong with it."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key} {problem}")
        self.key = key
        self.problem = problem


def _within(key: str, value: float | None, bound: str | Bound) -> None:
    """A stage's number inside its bound (the same as the flag's), or StageError saying the range."""
    bound = BOUNDS[bound] if isinstance(bound, str) else bound
    if value is not None and not bound.holds(value):
        raise StageError(key, f"must be {bound}, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class _Stage:
    """What every stage has: a unique name in [a-z0-9_-]+."""

    kind: ClassVar[str]
    # The keys a preset may set for this kind (beside name and kind) and the TOML types each takes.
    KEYS: ClassVar[dict[str, tuple[type, ...]]]
    METRICS: ClassVar[tuple[str, ...]]

    name: str

    def __post_init__(self) -> None:
        if not STAGE_NAME.fullmatch(self.name):
            raise StageError("name", f"must be lower-case letters, digits, '_' or '-', got {self.name!r}")
        self.check()

    def check(self) -> None:
        """Raise StageError for a stage that cannot run."""


@dataclass(frozen=True, kw_only=True)
class LoadStage(_Stage):
    """Steady load: closed loop (concurrency users) or open loop (rate req/s), bounded by requests or time."""

    kind: ClassVar[str] = "load"
    KEYS: ClassVar[dict[str, tuple[type, ...]]] = {
        "concurrency": INT, "rate": NUMBER, "requests_per_user": INT, "requests": INT, "duration_s": NUMBER,
    }
    METRICS: ClassVar[tuple[str, ...]] = LOAD_METRICS

    concurrency: int | None = None
    rate: float | None = None
    requests_per_user: int | None = None
    requests: int | None = None
    duration_s: float | None = None

    def check(self) -> None:
        if (self.concurrency is None) == (self.rate is None):
            raise StageError("concurrency", "or rate: set exactly one (closed loop users, or open loop req/s)")
        _within("concurrency", self.concurrency, "concurrency")
        _within("rate", self.rate, "rate")
        bounds = [key for key in ("requests_per_user", "requests", "duration_s") if getattr(self, key) is not None]
        if len(bounds) != 1:
            raise StageError("requests_per_user", "| requests | duration_s: set exactly one, so the stage ends"
                             + (f" (got {', '.join(bounds)})" if bounds else ""))
        if self.requests_per_user is not None and self.rate is not None:
            raise StageError("requests_per_user", "needs concurrency: an open loop (rate) has no users to count "
                             "per; use requests or duration_s")
        _within("requests_per_user", self.requests_per_user, "requests_per_group")
        _within("requests", self.requests, "requests")
        _within("duration_s", self.duration_s, "duration_s")

    @property
    def total_requests(self) -> int | None:
        """The requests the stage sends when bounded by a count: requests, or users × requests_per_user."""
        if self.requests_per_user is not None and self.concurrency is not None:
            return self.concurrency * self.requests_per_user
        return self.requests


@dataclass(frozen=True, kw_only=True)
class RampStage(_Stage):
    """Closed-loop users stepped from start to max (×factor or +step), each step held step_duration_s."""

    kind: ClassVar[str] = "ramp"
    KEYS: ClassVar[dict[str, tuple[type, ...]]] = {
        "start": INT, "step": (str, int), "max": INT, "step_duration_s": NUMBER, "sla_p95_ms": NUMBER,
        "max_error_rate": NUMBER,
    }
    METRICS: ClassVar[tuple[str, ...]] = ("knee_concurrency", "safe_concurrency", "usl_peak_concurrency",
                                          *LOAD_METRICS)

    start: int = 1
    step: str | int = "x2"  # "xF" multiplies by F each step (F > 1); a whole number adds that many users
    max: int = 64
    step_duration_s: float = 5.0
    sla_p95_ms: float = 200.0  # the preset reader fills in the preset's [sla] p95_ms
    max_error_rate: float = 0.01

    def check(self) -> None:
        _within("start", self.start, "concurrency")
        _within("max", self.max, "concurrency")
        if self.max < self.start:
            raise StageError("max", f"must be at least start ({self.start}), got {self.max}")
        if isinstance(self.step, int):
            _within("step", self.step, "concurrency")
        elif self.factor is None:
            raise StageError("step", f"must be \"xF\" with F {str(BOUNDS['factor']).removeprefix('a number, ')} "
                             f"(\"x2\" doubles) or a whole number of users, got {self.step!r}")
        _within("step_duration_s", self.step_duration_s, "duration_s")
        _within("sla_p95_ms", self.sla_p95_ms, "latency_ms")
        if not BOUNDS["share"].holds(self.max_error_rate):
            raise StageError("max_error_rate", f"is a share of requests from 0 to 1, got {self.max_error_rate:g}")

    @property
    def factor(self) -> float | None:
        """The multiplier of an "xF" step, None for an additive step (or an unreadable one)."""
        if isinstance(self.step, int) or not self.step.startswith("x"):
            return None
        try:
            factor = float(self.step[1:])
        except ValueError:
            return None
        return factor if BOUNDS["factor"].holds(factor) else None


@dataclass(frozen=True, kw_only=True)
class OutliersStage(_Stage):
    """Users in strata by event count, requests_per_stratum each: where latency passes threshold_ms."""

    kind: ClassVar[str] = "outliers"
    KEYS: ClassVar[dict[str, tuple[type, ...]]] = {
        "threshold_ms": NUMBER, "requests_per_stratum": INT, "concurrency": INT,
    }
    METRICS: ClassVar[tuple[str, ...]] = ("breach_event_count", "population_share_above", "users_above",
                                          "breach_rate", "p95_ms")

    threshold_ms: float
    requests_per_stratum: int = 100
    concurrency: int = 1

    def check(self) -> None:
        _within("threshold_ms", self.threshold_ms, "latency_ms")
        _within("requests_per_stratum", self.requests_per_stratum, "requests_per_group")
        _within("concurrency", self.concurrency, "concurrency")


@dataclass(frozen=True, kw_only=True)
class EdgeStage(_Stage):
    """Requests for edge-case users (unknown, no events, the heaviest): errors the system should not make."""

    kind: ClassVar[str] = "edge"
    KEYS: ClassVar[dict[str, tuple[type, ...]]] = {"requests": INT, "concurrency": INT}
    METRICS: ClassVar[tuple[str, ...]] = ("edge_errors", "error_rate", "requests")

    requests: int = 100
    concurrency: int = 1

    def check(self) -> None:
        _within("requests", self.requests, "requests")
        _within("concurrency", self.concurrency, "concurrency")


Stage = LoadStage | RampStage | OutliersStage | EdgeStage
STAGE_KINDS: dict[str, type[Stage]] = {cls.kind: cls for cls in (LoadStage, RampStage, OutliersStage, EdgeStage)}
METRICS_BY_KIND: dict[str, tuple[str, ...]] = {kind: cls.METRICS for kind, cls in STAGE_KINDS.items()}


@dataclass(frozen=True)
class Criterion:
    """One gate: `metric op value` on what stage `stage` measured, e.g. moderate's p95_ms < 100.

    A criterion relative to a baseline (`value = "baseline * 1.10"` in a preset)
    has `baseline_ratio` and no value (NaN) until analysis.baseline turns it into
    an absolute one from a baseline run's measurement.
    """

    stage: str
    metric: str
    op: str
    value: float
    baseline_ratio: float | None = None

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise StageError("op", f"must be one of {' '.join(OPS)}, got {self.op!r}")
        if self.baseline_ratio is not None and not (math.isfinite(self.baseline_ratio) and self.baseline_ratio > 0):
            raise StageError("value", f"baseline ratio must be a positive number, got {self.baseline_ratio:g}")

    @property
    def relative(self) -> bool:
        """Whether the threshold is a baseline's measurement times a ratio, not yet a number."""
        return self.baseline_ratio is not None and math.isnan(self.value)

    def holds(self, measured: float) -> bool:
        if self.relative:
            raise ValueError(f"{self.label} is relative to a baseline: resolve it (analysis.baseline) first")
        return OPS[self.op](measured, self.value)

    @property
    def label(self) -> str:
        """`p95_ms < 100`: the criterion as a test case is named (`p95_ms < baseline * 1.1` before resolving)."""
        if self.relative:
            return f"{self.metric} {self.op} baseline * {self.baseline_ratio:g}"
        return f"{self.metric} {self.op} {self.value:g}"


PASS, FAIL, INCOMPLETE = "PASS", "FAIL", "INCOMPLETE"
# How a stage's run ended. Only a stage that ran to its own end (its requests, its duration, the ramp's
# last step) or could not start at all (its criteria fail, saying why) leaves the suite complete.
COMPLETED = "completed"
COULD_NOT_START = "could_not_start"
INTERRUPTED = "interrupted"
DID_NOT_END = "did_not_end"
NOT_RUN = "not_run"
UNFINISHED = frozenset({INTERRUPTED, DID_NOT_END, NOT_RUN})


@dataclass(frozen=True)
class StageEnd:
    """How a stage's run ended (COMPLETED, COULD_NOT_START, …) and, unless it completed, why in one clause."""

    status: str = COMPLETED
    reason: str = ""

    @property
    def finished(self) -> bool:
        """The stage ran to its own end or could not start at all: either way nothing about it is still unknown."""
        return self.status not in UNFINISHED


def verdict_of(passed: Iterable[bool], stage_ends: Iterable[str] = ()) -> str:
    """The suite's verdict, the one rule every artefact shows: INCOMPLETE, FAIL or PASS.

    INCOMPLETE when any stage did not finish (interrupted, did not end, did not
    run): what it would have shown is not known, so neither PASS nor FAIL can be
    said. Otherwise FAIL when a stage could not start or any criterion failed,
    and with no criteria at all (no evidence is no pass); PASS when every
    criterion passed.
    """
    ends = list(stage_ends)
    if any(end in UNFINISHED for end in ends):
        return INCOMPLETE
    flags = list(passed)
    if COULD_NOT_START in ends or not flags:
        return FAIL
    return PASS if all(flag is True for flag in flags) else FAIL


def format_metric(metric: str, value: float | None) -> str:
    """A metric's value with its unit, as a person reads it: `87.3 ms`, `0.40%`, `16 users`."""
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    unit = METRIC_UNITS.get(metric, "")
    if unit == "ms":
        return f"{value:,.2f} ms" if abs(value) < 10 else f"{value:,.1f} ms"
    if unit == "share":
        return f"{value:.2%}"
    if unit == "req/s":
        return f"{value:,.1f} req/s"
    number = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"
    return f"{number} {unit}" if unit in ("users", "events") else number
