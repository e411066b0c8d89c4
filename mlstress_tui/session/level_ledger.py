"""The level ledger: one entry per commanded level, fed by the ticks stamped with it; the ramp reads its steps here.

Ticks in which the workers were still applying a change belong to no level
(`transition_s`); a paused tick belongs to none either (it would dilute its
level's throughput).
"""

from __future__ import annotations

from collections import OrderedDict

from mlstress_tui.results.interval_stats import IntervalStats
from mlstress_tui.results.kinds import LoadMode
from mlstress_tui.results.level_stats import LevelStats, level_of

# Levels kept; a dashboard session of key presses cannot grow memory without bound.
MAX_LEVELS = 256


class LevelLedger:
    """Every commanded level's stats, in the order commanded."""

    def __init__(self) -> None:
        self.levels: OrderedDict[int, LevelStats] = OrderedDict()
        self.transition_s = 0.0
        self.last_level_id: int | None = None
        # Bumped whenever a level's figures change: analyses refit only then.
        self.version = 0

    def on_tick(self, tick: IntervalStats) -> None:
        self.last_level_id = tick.level_id
        if tick.paused:
            return
        if tick.level_id is None:
            self.transition_s += tick.duration_s
            return
        stats = self.levels.get(tick.level_id)
        if stats is None:
            for previous in self.levels.values():
                previous.decide()  # a level once left is complete: its warm-up is decided now
            stats = self.levels[tick.level_id] = LevelStats(mode=tick.mode, level=level_of(tick),
                                                            level_id=tick.level_id)
            while len(self.levels) > MAX_LEVELS:
                self.levels.popitem(last=False)
        stats.add(tick)
        self.version += 1

    def finish(self) -> None:
        """The run ended: every level's warm-up is decided."""
        for stats in self.levels.values():
            stats.decide()
        self.version += 1

    def level(self, level_id: int) -> LevelStats | None:
        return self.levels.get(level_id)

    def current(self) -> LevelStats | None:
        """The level the latest tick ran at, None during a transition or before the first tick."""
        if self.last_level_id is None:
            return None
        return self.levels.get(self.last_level_id)

    def settled(self) -> list[LevelStats]:
        """Every level as its figures stand now (the one still warming up decided as if it ended here)."""
        return [stats.settled() for stats in self.levels.values()]

    def by_value(self, mode: LoadMode) -> list[LevelStats]:
        """One entry per level value visited in `mode` (repeat visits merged), lowest first: chart points."""
        by_value: dict[float, LevelStats] = {}
        for stats in self.levels.values():
            if stats.mode != mode:
                continue
            seen = by_value.get(stats.level)
            by_value[stats.level] = stats.settled() if seen is None else seen.merged_with(stats)
        return [by_value[value] for value in sorted(by_value)]
