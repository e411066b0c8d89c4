"""What was commanded, as facts: each control change opens a level, recorded when it is commanded.

A key press, the ramp and the run's start all go through here; the clamp, the
effective pool and each slot's share of a level are computed here and
nowhere else. What the workers report is evidence about a level, never the
level itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlstress_tui.load.limits import clamp_level, effective_pool
from mlstress_tui.load.protocol import WorkerPlan
from mlstress_tui.results.kinds import CLOSED, OPEN, LoadMode

if TYPE_CHECKING:  # the session reads levels without importing the spec's user mixes (and their SQL)
    from mlstress_tui.load.spec import LoadSpec

# Levels remembered (a dashboard session of key presses cannot grow memory without bound).
MAX_LEVELS = 4096


def split_evenly(total: int, parts: int) -> list[int]:
    """`total` as `parts` integers differing by at most one, larger first."""
    return [total // parts + (1 if index < total % parts else 0) for index in range(parts)]


@dataclass(frozen=True)
class CommandedLevel:
    """One commanded level: the loop, its users or rate, the pool it runs with, and when it was commanded."""

    level_id: int
    mode: LoadMode
    concurrency: int  # closed loop: the users; open loop: the users a switch back would return to
    rate: float | None  # open loop: arrivals per second
    pool_size: int | None  # --pool-size as given; None follows the default rule
    t: float = 0.0  # seconds since the run's start

    @property
    def value(self) -> float:
        """The level as one number: users (closed loop) or req/s (open loop)."""
        return float(self.rate or 0.0) if self.mode == OPEN else float(self.concurrency)

    @property
    def pool(self) -> int:
        """The connection slots it runs with."""
        return effective_pool(self.mode, self.concurrency, self.pool_size)

    @property
    def in_flight_limit(self) -> int:
        """The most requests in flight: the users (closed loop) or the executors, i.e. the pool (open loop)."""
        return self.concurrency if self.mode == CLOSED else self.pool


class CommandedLevels:
    """The level now, and every level commanded so far by id."""

    def __init__(self, spec: LoadSpec) -> None:
        rate = spec.rate if spec.mode == OPEN else None
        self.current = CommandedLevel(0, spec.mode, spec.concurrency, rate, spec.pool_size)
        self.by_id: dict[int, CommandedLevel] = {0: self.current}
        self._last_rate = spec.rate or float(spec.concurrency * 10)
        # When each level took effect on the workers (a tick boundary, seconds since the start).
        self._effective_s: dict[int, float] = {0: 0.0}

    def _open(self, t: float, **changes: object) -> CommandedLevel:
        now = self.current
        fields = {"mode": now.mode, "concurrency": now.concurrency, "rate": now.rate, "pool_size": now.pool_size}
        fields.update(changes)
        self.current = CommandedLevel(now.level_id + 1, t=round(t, 3), **fields)  # type: ignore[arg-type]
        self.by_id[self.current.level_id] = self.current
        if len(self.by_id) > MAX_LEVELS:
            del self.by_id[min(self.by_id)]
        return self.current

    def set_concurrency(self, concurrency: float, t: float) -> CommandedLevel | None:
        """A new closed-loop level, or None when nothing changes (another loop, or the same users)."""
        users = int(clamp_level(CLOSED, concurrency))
        if self.current.mode != CLOSED or users == self.current.concurrency:
            return None
        return self._open(t, concurrency=users)

    def set_rate(self, rate: float, t: float) -> CommandedLevel | None:
        rate = clamp_level(OPEN, rate)
        if self.current.mode != OPEN or rate == self.current.rate:
            return None
        self._last_rate = rate
        return self._open(t, rate=rate)

    def set_mode(self, mode: LoadMode, rate: float | None, t: float) -> CommandedLevel | None:
        """The other loop; the open loop runs at `rate` (default: its last rate)."""
        if mode == self.current.mode or mode not in (CLOSED, OPEN):
            return None
        if mode == OPEN:
            self._last_rate = clamp_level(OPEN, rate) if rate else self._last_rate
            return self._open(t, mode=OPEN, rate=self._last_rate)
        return self._open(t, mode=CLOSED, rate=None)

    def reopen(self, t: float) -> CommandedLevel:
        """The same level under a new id: its share moved between slots, so what came before is not comparable."""
        return self._open(t)

    def took_effect(self, level_id: int, t: float) -> None:
        self._effective_s[level_id] = t

    def offered_arrivals(self, end_s: float) -> float | None:
        """Open loop: the arrivals the commanded rates owed from the start until `end_s` (pauses included: what fell
        in one is counted as paused). None when the run never ran open."""
        levels = sorted(self.by_id.values(), key=lambda level: level.level_id)
        if not any(level.mode == OPEN for level in levels):
            return None
        owed = 0.0
        for level, after in zip(levels, [*levels[1:], None]):
            start = self._effective_s.get(level.level_id, level.t)
            stop = end_s if after is None else min(self._effective_s.get(after.level_id, after.t), end_s)
            if level.mode == OPEN and stop > start:
                owed += float(level.rate or 0.0) * (stop - start)
        return owed

    def plans(self, slots: list[int]) -> dict[int, WorkerPlan]:
        """Each slot's share of the current level."""
        level = self.current
        parts = len(slots)
        if level.mode == CLOSED:
            users = split_evenly(level.concurrency, parts)
            pools: list[int | None] = (list(split_evenly(level.pool_size, parts)) if level.pool_size is not None
                                       else [None] * parts)
            return {slot: WorkerPlan(CLOSED, users[i], 0.0, pools[i], level.level_id) for i, slot in enumerate(slots)}
        executors = split_evenly(level.pool, parts)
        rate = float(level.rate or 0.0)
        return {slot: WorkerPlan(OPEN, executors[i], rate / parts, executors[i], level.level_id)
                for i, slot in enumerate(slots)}
