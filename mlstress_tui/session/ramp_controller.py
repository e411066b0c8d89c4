"""The ramp: a session consumer that steps the load up, a step at a time, until it is past the cliff."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlstress_tui.analysis.ramp import KneeResult, RampStep, find_knee, past_cliff, ramp_report
from mlstress_tui.errors import UsageError
from mlstress_tui.load.limits import MAX_CONCURRENCY, MAX_RATE
from mlstress_tui.results.harness_verdict import harness_verdict
from mlstress_tui.results.interval_stats import CLOSED, OPEN, IntervalStats

if TYPE_CHECKING:
    from mlstress_tui.session.run_session import RunSession

# Past this many steps a ramp is a mistake in its options, not a plan.
MAX_STEPS = 200


@dataclass(frozen=True)
class RampPlan:
    """Which levels a ramp visits and how long it holds each: from `start` by `step` (or ×`factor`) to `maximum`."""

    mode: str = CLOSED
    start: float = 1
    maximum: float = 64
    step: float | None = None
    factor: float | None = 2.0
    step_duration_s: float = 5.0
    sla_p95_ms: float = 200.0
    max_error_rate: float = 0.01
    # After the ramp, hold the safe level (the dashboard) rather than the last one (the `ramp` command stops).
    settle_at_safe: bool = False

    @classmethod
    def from_current(cls, mode: str, level: float, *, sla_p95_ms: float, step_duration_s: float = 5.0) -> RampPlan:
        """The dashboard's `r`: double the users (or ×1.5 the rate) from where the load stands now."""
        if mode == OPEN:
            start = max(level, 1.0)
            return cls(mode=OPEN, start=start, maximum=min(start * 1.5 ** 20, MAX_RATE), factor=1.5,
                       step_duration_s=step_duration_s, sla_p95_ms=sla_p95_ms, settle_at_safe=True)
        start = max(int(level), 1)
        return cls(mode=CLOSED, start=start, maximum=MAX_CONCURRENCY, factor=2.0,
                   step_duration_s=step_duration_s, sla_p95_ms=sla_p95_ms, settle_at_safe=True)

    def validate(self) -> None:
        if self.start <= 0 or self.maximum < self.start:
            raise UsageError(f"ramp from --start {self.start:g} to --max {self.maximum:g}: "
                             "both must be positive and --max at least --start")
        if self.step is not None and self.step <= 0:
            raise UsageError(f"--step must be positive, got {self.step:g}")
        if self.step is None and (self.factor is None or self.factor <= 1):
            raise UsageError(f"--factor must be greater than 1, got {self.factor}")
        if not 0 <= self.max_error_rate <= 1:
            raise UsageError(f"--max-error-rate is a share of requests from 0 to 1, got {self.max_error_rate:g}")
        if self.step_duration_s <= 0:
            raise UsageError(f"--step-duration must be positive seconds, got {self.step_duration_s:g}")
        if len(self.levels()) > MAX_STEPS:
            raise UsageError(f"the ramp from {self.start:g} to {self.maximum:g} has more than {MAX_STEPS} steps: "
                             "raise --step or --factor, or lower --max")

    def levels(self) -> list[float]:
        """The levels in order; the last is `maximum` even when the steps would overshoot it."""
        levels: list[float] = []
        level = float(self.start)
        while level < self.maximum - 1e-9 and len(levels) <= MAX_STEPS:
            levels.append(level)
            nxt = level + self.step if self.step is not None else level * (self.factor or 2.0)
            if self.mode == CLOSED:
                nxt = float(max(math.floor(nxt), int(level) + 1))
            level = nxt
        levels.append(float(self.maximum))
        return levels


def ramp_step(mode: str, level: float, seconds: float, stats: IntervalStats, *, target_kind: str | None,
              workers: int) -> RampStep:
    """What one level measured, as the knee and USL analysis takes it (a ramp step, or a level visited by hand)."""
    latency = stats.latency
    return RampStep(
        mode=mode, level=level, seconds=round(seconds, 3), requests=stats.requests, errors=stats.errors,
        throughput_rps=stats.requests / seconds if seconds > 0 else 0.0,
        p50_ms=latency.percentile_ms(50), p95_ms=latency.percentile_ms(95), p99_ms=latency.percentile_ms(99),
        pool_wait_p95_ms=stats.pool_wait.percentile_ms(95),
        mean_latency_ms=latency.sum_ns / latency.count / 1e6 if latency.count else None,
        verdict=harness_verdict(stats, target_kind=target_kind, workers=workers)["verdict"],
        offered_rps=level if mode == OPEN else None,
    )


def step_line(step: RampStep) -> str:
    """One ramp step as a person reads it in a progress log."""
    unit = "req/s offered" if step.mode == OPEN else "users"
    p95 = "-" if step.p95_ms is None else f"{step.p95_ms:.2f} ms"
    return (f"step at {step.level:g} {unit}: {step.throughput_rps:,.0f} req/s, p95 {p95}, "
            f"errors {step.error_rate:.2%}, verdict {step.verdict}")


class RampController:
    """Commands each level through the session's knobs (as a key would), measures it, decides the next.

    A step counts only ticks stamped with the level it commanded: the ticks in which
    the workers were still applying the change belong to no step.
    """

    def __init__(self, session: RunSession, plan: RampPlan, *, target_kind: str | None, workers: int,
                 on_end: Callable[[RampController], None] | None = None) -> None:
        self.session = session
        self.plan = plan
        self.target_kind = target_kind
        self.workers = workers
        self.on_end = on_end
        self.levels = plan.levels()
        self.index = 0
        self.steps: list[RampStep] = []
        self.active = False
        self.stopped_because: str | None = None
        self.knee: KneeResult | None = None
        self._step: IntervalStats | None = None
        self._step_seconds = 0.0
        self._step_level_id: int | None = None

    # -- progress, for front ends ------------------------------------------

    @property
    def level(self) -> float:
        return self.levels[min(self.index, len(self.levels) - 1)]

    @property
    def step_seconds(self) -> float:
        return self._step_seconds

    def progress(self) -> str:
        """One line: which step and how far through it, or how the ramp ended."""
        if not self.active:
            knee = self.knee.reason if self.knee is not None else "no step measured"
            return f"ramp done after {len(self.steps)} steps ({self.stopped_because}). Knee: {knee}"
        # Short enough to fit beside the state in an 80-column header, which already shows the level.
        return f"step {self.index + 1}/{len(self.levels)} · {self._step_seconds:.0f}/{self.plan.step_duration_s:g} s"

    # -- the consumer --------------------------------------------------------

    def begin(self) -> None:
        self.active = True
        self._command(self.levels[0])

    def on_tick(self, tick: IntervalStats) -> None:
        if not self.active or tick.paused or tick.level_id is None or tick.level_id != self._step_level_id:
            return
        if self._step is None:
            self._step = IntervalStats(index=0, t_start=tick.t_start, t_end=tick.t_start, level_id=tick.level_id)
        self._step.merge_later(tick, keep_scatter=False)
        self._step_seconds += tick.duration_s
        if self._step_seconds >= self.plan.step_duration_s - 1e-6:
            self._close_step()

    def close(self, reason: str | None) -> None:
        """End the ramp (idempotent): `reason` says why; the safe level is held if the plan says so."""
        if not self.active:
            return
        self.active = False
        self.stopped_because = reason
        knee = self.knee = find_knee(self.steps, sla_p95_ms=self.plan.sla_p95_ms,
                                     max_error_rate=self.plan.max_error_rate)
        self.session.note("ramp_end", reason=reason, knee=knee.knee_level, safe=knee.safe_level,
                          text=f"ramp ended ({reason}): {knee.reason}")
        if self.plan.settle_at_safe and not self.session.finished and knee.safe_level is not None:
            self._command(knee.safe_level)
        if self.on_end is not None:
            self.on_end(self)

    def report(self) -> dict:
        """The content of ramp.json."""
        return ramp_report(self.steps, sla_p95_ms=self.plan.sla_p95_ms, max_error_rate=self.plan.max_error_rate,
                           stopped_because=self.stopped_because)

    # -- inside ----------------------------------------------------------------

    def _command(self, level: float) -> None:
        if self.plan.mode == OPEN:
            self.session.set_rate(level)
        else:
            self.session.set_concurrency(int(level))
        self._step, self._step_seconds = None, 0.0
        self._step_level_id = self.session.level_id

    def _close_step(self) -> None:
        self.steps.append(ramp_step(self.plan.mode, self.level, self._step_seconds, self._step,
                                    target_kind=self.target_kind, workers=self.workers))
        self.session.note("ramp_step", step=len(self.steps), level=self.level, text=step_line(self.steps[-1]))
        reason = past_cliff(self.steps, sla_p95_ms=self.plan.sla_p95_ms, max_error_rate=self.plan.max_error_rate)
        if reason is not None:
            self.close(reason)
        elif self.index + 1 >= len(self.levels):
            unit = "req/s" if self.plan.mode == OPEN else "users"
            self.close(f"reached --max {self.levels[-1]:g} {unit} without passing the cliff")
        else:
            self.index += 1
            self._command(self.levels[self.index])
