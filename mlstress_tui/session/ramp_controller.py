"""The ramp: a session consumer that steps the load up, a step at a time, until it is past the cliff.

Started from a level that already breaks the SLA (the dashboard's `r` on an
overloaded system), a ramp that settles at the safe level goes down instead,
halving, until a level holds the SLA; when even the lowest breaks it, it says
so and what level it left running. In the open loop each step down first drops
the queue the level above left (a pause of no length: what it owed is counted
`unsent`), or every lower rate would be measured on that level's backlog.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlstress_tui.analysis.ramp import KneeResult, RampStep, find_knee, past_cliff, ramp_report
from mlstress_tui.errors import UsageError
from mlstress_tui.load.limits import MAX_CONCURRENCY, MAX_RATE, MIN_CONCURRENCY
from mlstress_tui.results.interval_stats import IntervalStats
from mlstress_tui.results.kinds import CLOSED, OPEN, EventKind, LoadMode
from mlstress_tui.results.units import format_ms

if TYPE_CHECKING:
    from mlstress_tui.results.level_stats import LevelStats
    from mlstress_tui.session.run_session import RunSession

# Past this many steps a ramp is a mistake in its options, not a plan.
MAX_STEPS = 200
# Why a ramp ended when the run's own bound (or a stop) came before its last step: `accept` reads it as cut off.
RUN_ENDED = "run ended"
# The next level is commanded this long before a step ends (two ticks: the front end pumps at 4 Hz or faster).
LEAD_S = 0.5
# Going down, the open loop stops halving here: a rate below one request a second has no p95 in a step.
DESCENT_FLOOR_RATE = 1.0


@dataclass(frozen=True)
class RampPlan:
    """Which levels a ramp visits and how long it holds each: from `start` by `step` (or ×`factor`) to `maximum`."""

    mode: LoadMode = CLOSED
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
    def from_current(cls, mode: LoadMode, level: float, *, sla_p95_ms: float, step_duration_s: float = 5.0) -> RampPlan:
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


def level_name(mode: LoadMode, level: float) -> str:
    """`1 user`, `16 users`, `250 req/s`."""
    if mode == OPEN:
        return f"{level:,.0f} req/s" if level >= 100 else f"{level:,.1f} req/s"
    return f"{level:g} user" + ("" if level == 1 else "s")


def halvings(mode: LoadMode, level: float) -> list[float]:
    """The levels below `level`, each half the last, down to 1 user (closed) or DESCENT_FLOOR_RATE (open)."""
    floor = float(MIN_CONCURRENCY) if mode == CLOSED else DESCENT_FLOOR_RATE
    levels: list[float] = []
    while level > floor:
        level = max(float(math.floor(level / 2)) if mode == CLOSED else round(level / 2, 1), floor)
        levels.append(level)
    return levels


def step_line(step: RampStep) -> str:
    """One ramp step as a person reads it in a progress log."""
    unit = "req/s offered" if step.mode == OPEN else "users" if step.level != 1 else "user"
    p95 = format_ms(step.p95_ms)
    return (f"step at {step.level:g} {unit}: {step.throughput_rps:,.0f} req/s, p95 {p95}, "
            f"errors {step.error_rate:.2%}, verdict {step.verdict}")


class RampController:
    """Commands each level through the session's knobs (as a key would), reads it from the level ledger, decides the next.

    A step is the ledger's level: the ticks stamped with the level it commanded.
    The next level is commanded ahead, to take effect at the tick boundary where
    the step ends, so each step is held for exactly its duration and no tick is
    lost between steps.
    """

    def __init__(self, session: RunSession, plan: RampPlan, *,
                 on_end: Callable[[RampController], None] | None = None) -> None:
        self.session = session
        self.plan = plan
        self.on_end = on_end
        self.levels = plan.levels()
        self.index = 0
        self.steps: list[RampStep] = []
        self._step_ids: list[int | None] = []  # each step's level in the ledger
        self.active = False
        self.stopped_because: str | None = None
        self.knee: KneeResult | None = None
        # Going down from a first step past the SLA (settle_at_safe only), halving until a level holds it.
        self.descending = False
        self._step_level_id: int | None = None
        self._next_level_id: int | None = None

    # -- progress, for front ends ------------------------------------------

    @property
    def level(self) -> float:
        return self.levels[min(self.index, len(self.levels) - 1)]

    @property
    def step_seconds(self) -> float:
        stats = self.session.ledger.level(self._step_level_id) if self._step_level_id is not None else None
        return stats.held_s if stats is not None else 0.0

    def progress(self) -> str:
        """One line: which step and how far through it, or how the ramp ended."""
        if not self.active:
            knee = self.knee.reason if self.knee is not None else "no step measured"
            steps = f"{len(self.steps)} step" + ("" if len(self.steps) == 1 else "s")
            return f"ramp done after {steps} ({self.stopped_because}). Knee: {knee}"
        # Short enough to fit beside the state in an 80-column header, which already shows the level.
        held = f"{self.step_seconds:.0f}/{self.plan.step_duration_s:g} s"
        if self.descending:
            return f"down: {level_name(self.plan.mode, self.level)} · {held}"
        return f"step {self.index + 1}/{len(self.levels)} · {held}"

    # -- the consumer --------------------------------------------------------

    def begin(self) -> None:
        self.active = True
        self._step_level_id = self._command(self.levels[0])

    def on_tick(self, tick: IntervalStats) -> None:
        if not self.active or tick.level_id is None:
            return
        if tick.level_id == self._next_level_id and self._step_level_id is not None:
            # The next level took over before this step had its full time (a late pump): the step ends here.
            current = self.session.ledger.level(self._step_level_id)
            if current is not None:
                self._close_step(current)
            if not self.active:
                return
        if tick.level_id != self._step_level_id:
            return
        stats = self.session.ledger.level(tick.level_id)
        if stats is None:
            return
        held, duration = stats.held_s, self.plan.step_duration_s
        ahead = not (self.descending and self.plan.mode == OPEN)  # a step down drops the queue at the step's end
        if ahead and self._next_level_id is None and self.index + 1 < len(self.levels) and held >= duration - LEAD_S:
            # The step's end is near: unless it is already past the cliff, the next level takes over at its end.
            partial = self.session.analysis.figures(stats.settled())
            if self._goes_on([*self.steps, partial]):
                self._next_level_id = self._command(self.levels[self.index + 1], at_s=stats.first_t + duration)
        if held >= duration - 1e-6:
            self._close_step(stats)

    def close(self, reason: str | None) -> None:
        """End the ramp (idempotent): `reason` says why; the safe level is held if the plan says so."""
        if not self.active:
            return
        self.active = False
        self.stopped_because = reason
        knee = self.knee = find_knee(self._by_level(), sla_p95_ms=self.plan.sla_p95_ms,
                                     max_error_rate=self.plan.max_error_rate)
        self.session.note(EventKind.RAMP_END, reason=reason, knee=knee.knee_level, safe=knee.safe_level,
                          text=f"ramp ended ({reason}): {knee.reason}")
        if (self.plan.settle_at_safe and not self.session.finished and knee.safe_level is not None
                and knee.safe_level != self.session.level.value):
            self._command(knee.safe_level)
        if self.on_end is not None:
            self.on_end(self)

    def report(self) -> dict[str, Any]:
        """The content of ramp.json."""
        return ramp_report(self._by_level(), sla_p95_ms=self.plan.sla_p95_ms, max_error_rate=self.plan.max_error_rate,
                           stopped_because=self.stopped_because)

    # -- inside ----------------------------------------------------------------

    def _command(self, level: float, at_s: float | None = None) -> int:
        """Command `level` (from `at_s` seconds into the run, or at once); the id of the level it opened."""
        self.session.set_level(level, at_s=at_s)
        return self.session.level_id

    def _by_level(self) -> list[RampStep]:
        """The steps lowest level first (a ramp that went down is judged as if it had come up), each its level's
        figures as the ledger holds them now (the same figures summary.json lists), not a copy taken when the step
        closed."""
        steps = []
        for step, level_id in zip(self.steps, self._step_ids):
            stats = self.session.ledger.level(level_id) if level_id is not None else None
            steps.append(self.session.analysis.figures(stats.settled()) if stats is not None else step)
        return sorted(steps, key=lambda step: step.level)

    def _within(self, step: RampStep) -> bool:
        return find_knee([step], sla_p95_ms=self.plan.sla_p95_ms,
                         max_error_rate=self.plan.max_error_rate).knee_level is not None

    def _goes_on(self, steps: list[RampStep]) -> bool:
        """Whether a step ending with these figures is followed by the next level (commanded ahead of time)."""
        if self.descending:
            return not self._within(steps[-1])
        return past_cliff(steps, sla_p95_ms=self.plan.sla_p95_ms, max_error_rate=self.plan.max_error_rate) is None

    def _descend(self, reason: str) -> None:
        """Nothing measured holds the SLA: halve the level from the lowest step until one does (or there is none)."""
        lowest = min(step.level for step in self.steps)
        below = halvings(self.plan.mode, lowest)
        if not below:
            self.close(f"{reason}; no lower level to try: the load was left at "
                       f"{level_name(self.plan.mode, lowest)}, which breaks the SLA")
            return
        self.descending = True
        self.levels = [*self.levels[:self.index + 1], *below]
        self.session.note(EventKind.RAMP_STEP, step=len(self.steps), level=self.level,
                          text=f"{reason}: going down, halving, until a level holds the SLA")
        self._advance()

    def _advance(self) -> None:
        self.index += 1
        if self._next_level_id is None:
            if self.descending and self.plan.mode == OPEN:
                self._next_level_id = self._drop_queue_and_command(self.levels[self.index])
            else:
                self._next_level_id = self._command(self.levels[self.index])
        self._step_level_id, self._next_level_id = self._next_level_id, None

    def _drop_queue_and_command(self, level: float) -> int:
        """The open loop's next step down from an empty queue: a pause ends the schedule's epoch (what the level
        above owed is counted unsent), the new rate starts with the resume."""
        self.session.pause()
        try:
            return self._command(level)
        finally:
            self.session.resume()

    def _close_step(self, stats: LevelStats) -> None:
        stats.decide()
        self.steps.append(self.session.analysis.figures(stats))
        self._step_ids.append(stats.level_id)
        self.session.note(EventKind.RAMP_STEP, step=len(self.steps), level=self.level, text=step_line(self.steps[-1]))
        if self.descending:
            self._close_step_down(self.steps[-1])
            return
        reason = past_cliff(self.steps, sla_p95_ms=self.plan.sla_p95_ms, max_error_rate=self.plan.max_error_rate)
        if reason is not None:
            if self.plan.settle_at_safe and not any(self._within(step) for step in self.steps):
                self._descend(reason)
            else:
                self.close(reason)
        elif self.index + 1 >= len(self.levels):
            unit = "req/s" if self.plan.mode == OPEN else "users"
            self.close(f"reached --max {self.levels[-1]:g} {unit} without passing the cliff")
        else:
            self._advance()

    def _close_step_down(self, step: RampStep) -> None:
        start = level_name(self.plan.mode, self.levels[0])
        here = level_name(self.plan.mode, step.level)
        if self._within(step):
            self.close(f"{start} broke the SLA; halved down to {here}, which holds it")
        elif self.index + 1 >= len(self.levels):
            self.close(f"no level holds the SLA: halved down from {start} to {here}, which still breaks it; "
                       f"the load was left at {here}")
        else:
            self._advance()
