"""Everything measured while the load stood at one commanded level, its warm-up kept apart.

A level's first second is often not its steady state: a pool filling, a cold
page cache, threads starting (the default database measured 2,420 req/s in
the first second of a ramp's first step against 9,430 warm). So each level
keeps its first ticks apart until it can tell where the warm-up ended — the
leading ticks whose throughput is below `SETTLED_SHARE` of the level's
settled throughput (at least the first tick, at most half the level) — and
reports them as its warm-up, never in its figures.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from mlstress_tui.results.histogram import LatencyHistogram
from mlstress_tui.results.interval_stats import IntervalStats
from mlstress_tui.results.kinds import OPEN, LoadMode

# A tick below this share of the settled throughput is still warming up.
SETTLED_SHARE = 0.9
# Ticks held back before the warm-up is decided (2 s of 0.25 s ticks).
DECIDE_AFTER_TICKS = 8
# Per-tick throughputs kept for the level's own noise (interval-to-interval spread).
MAX_SERIES = 512
# A tick shorter than this (the sliver at a run's end) is left out of the series: its rate is noise.
MIN_SERIES_TICK_S = 0.1


def level_of(interval: IntervalStats) -> float:
    """The load level an interval ran at: its rate in the open loop, its concurrency in the closed one."""
    return float((interval.rate if interval.mode == OPEN else interval.concurrency) or 0)


def warmup_ticks(throughputs: list[float]) -> int:
    """How many leading ticks are warm-up: at least the first (when there are two or more), at most half."""
    if len(throughputs) < 2:
        return 0
    settled = statistics.median(throughputs[len(throughputs) // 2:])
    most = len(throughputs) // 2
    count = 1
    while count < most and throughputs[count] < SETTLED_SHARE * settled:
        count += 1
    return count


@dataclass
class LevelStats:
    """One commanded level: its settled figures (`totals`), its warm-up apart, and the seconds of each."""

    mode: LoadMode
    level: float
    level_id: int | None = None
    totals: IntervalStats = field(default_factory=lambda: IntervalStats(index=0, t_start=0.0, t_end=0.0))
    warmup: IntervalStats = field(default_factory=lambda: IntervalStats(index=0, t_start=0.0, t_end=0.0))
    first_t: float = 0.0  # when its first tick began (seconds since the run's start)
    seconds: float = 0.0  # settled time: the figures' denominator
    warmup_s: float = 0.0
    # Each settled tick's throughput, oldest first (bounded): the level's own interval-to-interval noise.
    tick_throughputs: list[float] = field(default_factory=list)
    # Each settled tick's (start, busiest worker's share of a core): the level's CPU verdict over its time.
    tick_busy: list[tuple[float, float]] = field(default_factory=list)
    _pending: list[IntervalStats] = field(default_factory=list)
    _decided: bool = False

    @property
    def requests(self) -> int:
        return self.totals.requests

    @property
    def errors(self) -> int:
        return self.totals.errors

    @property
    def latency(self) -> LatencyHistogram:
        return self.totals.latency

    @property
    def held_s(self) -> float:
        """How long the load stood at this level, warm-up included (what a ramp step holds)."""
        return self.seconds + self.warmup_s + sum(tick.duration_s for tick in self._pending)

    @property
    def throughput_rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def add(self, interval: IntervalStats) -> None:
        if not self._decided and not self._pending and self.held_s == 0:
            self.first_t = interval.t_start
        if self._decided:
            self._settle(interval)
            return
        self._pending.append(interval)
        if len(self._pending) >= DECIDE_AFTER_TICKS:
            self.decide()

    def decide(self) -> None:
        """Split the held ticks into warm-up and settled time (at the latest when the level ends)."""
        if self._decided:
            return
        pending, self._pending = self._pending, []
        warm = warmup_ticks([tick.throughput_rps for tick in pending])
        for tick in pending[:warm]:
            self._warm(tick)
        self._decided = True
        for tick in pending[warm:]:
            self._settle(tick)

    def settled(self) -> LevelStats:
        """The level as its figures stand now: held ticks decided as if the level ended here (nothing changed)."""
        if self._decided or not self._pending:
            return self
        view = LevelStats(mode=self.mode, level=self.level, level_id=self.level_id)
        view.merge_in(self)
        for tick in self._pending:
            view.add(tick)
        view.decide()
        return view

    def _warm(self, interval: IntervalStats) -> None:
        if self.warmup_s == 0:
            self.warmup.t_start = interval.t_start
        self.warmup_s += interval.duration_s
        self.warmup.merge_later(interval, keep_scatter=False)

    def _settle(self, interval: IntervalStats) -> None:
        if self.seconds == 0:
            self.totals.t_start = interval.t_start
        self.seconds += interval.duration_s
        self.totals.merge_later(interval, keep_scatter=False)
        self.totals.mode, self.totals.level_id = self.mode, self.level_id
        if len(self.tick_throughputs) < MAX_SERIES and interval.duration_s >= MIN_SERIES_TICK_S:
            self.tick_throughputs.append(interval.throughput_rps)
            self.tick_busy.append((interval.t_start, interval.worker_cpu))

    def merge_in(self, other: LevelStats) -> None:
        """Add another visit's decided figures (a chart point of two visits to the same value)."""
        self.seconds += other.seconds
        self.warmup_s += other.warmup_s
        self.totals.merge_later(other.totals, keep_scatter=False)
        self.warmup.merge_later(other.warmup, keep_scatter=False)
        room = MAX_SERIES - len(self.tick_throughputs)
        self.tick_throughputs.extend(other.tick_throughputs[:room])
        self.tick_busy.extend(other.tick_busy[:room])
        self.totals.mode = self.mode

    def merged_with(self, other: LevelStats) -> LevelStats:
        """One view of two visits to the same level value (a chart point)."""
        merged = LevelStats(mode=self.mode, level=self.level)
        merged.merge_in(self.settled())
        merged.merge_in(other.settled())
        merged._decided = True
        return merged
