"""The cumulative view of a run: totals, one entry per commanded level, a bounded scatter sample."""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

from mlstress_tui.results.histogram import LatencyHistogram
from mlstress_tui.results.interval_stats import OPEN, STOP_MS, IntervalStats

# Levels kept; a dashboard session of key presses cannot grow memory without bound.
MAX_LEVELS = 256
# Events that say the measurement itself went wrong somewhere (shown on screen, kept in the summary).
FAULT_ACTIONS = ("worker_died", "worker_replacement_failed", "cannot_hold_load", "user_died", "harness_stall",
                 "clock_skew")


@dataclass
class LevelStats:
    """Everything measured while the load stood at one commanded level (a concurrency or a rate)."""

    mode: str
    level: float
    level_id: int | None = None
    totals: IntervalStats = field(default_factory=lambda: IntervalStats(index=0, t_start=0.0, t_end=0.0))
    seconds: float = 0.0

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
    def throughput_rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def add(self, interval: IntervalStats) -> None:
        if self.seconds == 0:
            self.totals.t_start = interval.t_start
        self.seconds += interval.duration_s
        self.totals.merge_later(interval, keep_scatter=False)
        self.totals.mode, self.totals.level_id = self.mode, self.level_id

    def merged_with(self, other: LevelStats) -> LevelStats:
        """One view of two visits to the same level value (a chart point)."""
        merged = LevelStats(mode=self.mode, level=self.level)
        for part in (self, other):
            merged.seconds += part.seconds
            merged.totals.merge_later(part.totals, keep_scatter=False)
        return merged


def level_of(interval: IntervalStats) -> float:
    """The load level an interval ran at: its rate in the open loop, its concurrency in the closed one."""
    return float((interval.rate if interval.mode == OPEN else interval.concurrency) or 0)


class RunStats:
    """Totals, per-level stats and a bounded scatter sample, fed one tick at a time by the run session."""

    def __init__(self, scatter_capacity: int = 2000, error_capacity: int = 50) -> None:
        self.total = IntervalStats(index=0, t_start=0.0, t_end=0.0)
        self.last: IntervalStats | None = None
        self.levels: OrderedDict[int, LevelStats] = OrderedDict()
        # Time spent while a level change was still being applied: it belongs to no level.
        self.transition_s = 0.0
        self.scatter: deque[tuple[float, float]] = deque(maxlen=scatter_capacity)
        self.recent_errors: deque[tuple[float, str, str]] = deque(maxlen=error_capacity)
        self.faults: deque[dict] = deque(maxlen=error_capacity)
        self.stuck_users_max = 0
        self.users_running_max = 0
        # Harness stalls (the tool or the machine stopped): their time is not load time.
        self.stalls: deque[dict] = deque(maxlen=error_capacity)
        self.stalled_s = 0.0
        self.paused_s = 0.0  # paused by the operator: not load time either
        self.ticks = 0

    def on_tick(self, interval: IntervalStats) -> None:
        """Take one tick (the run session's consumer interface)."""
        # The scatter sample is kept bounded here, not in the running total.
        self.total.merge_later(interval, keep_scatter=False, keep_groups=True)
        self.last = interval
        self.ticks += 1
        self.stuck_users_max = max(self.stuck_users_max, interval.stuck_users)
        self.users_running_max = max(self.users_running_max, interval.users_running)
        self.faults.extend(event for event in interval.events if event.get("action") in FAULT_ACTIONS)
        stall_ms = interval.harness_stall_ms()
        if stall_ms is not None:
            stopped = stall_ms >= STOP_MS
            stall = {"action": "harness_stall", "t": round(interval.t_start, 3), "stall_ms": round(stall_ms, 3),
                     "stopped": stopped}
            # Said like any other fault, and the stall travels on the tick to every later consumer.
            interval.events.append(stall)
            self.faults.append(stall)
            self.stalls.append(stall)
            if stopped:
                self.stalled_s += stall_ms / 1000
        self.scatter.extend(map(tuple, interval.scatter.tolist()))
        for kind, message in interval.last_error.items():
            self.recent_errors.append((interval.t_end, kind, message))
        if interval.paused:
            self.paused_s += interval.duration_s
            return  # a paused interval would dilute its level's throughput
        if interval.level_id is None:
            self.transition_s += interval.duration_s
            return
        stats = self.levels.get(interval.level_id)
        if stats is None:
            stats = self.levels[interval.level_id] = LevelStats(
                mode=interval.mode, level=level_of(interval), level_id=interval.level_id)
            while len(self.levels) > MAX_LEVELS:
                self.levels.popitem(last=False)
        stats.add(interval)

    def current_level(self) -> LevelStats | None:
        """The level the latest tick ran at, None during a transition or before the first tick."""
        if self.last is None or self.last.level_id is None:
            return None
        return self.levels.get(self.last.level_id)

    def levels_by_value(self, mode: str) -> list[LevelStats]:
        """One entry per level value visited in `mode` (repeat visits merged), lowest first: chart points."""
        by_value: dict[float, LevelStats] = {}
        for stats in self.levels.values():
            if stats.mode != mode:
                continue
            seen = by_value.get(stats.level)
            by_value[stats.level] = stats if seen is None else seen.merged_with(stats)
        return [by_value[value] for value in sorted(by_value)]
