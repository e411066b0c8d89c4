"""The dashboard's view of a run: the cumulative `RunStats` plus a sliding last-second window."""

from __future__ import annotations

from collections import deque

from mlstress_tui.load.stats import IntervalStats, LevelStats, RunStats

INTERVAL_WINDOW_S = 1.0


class LiveStats:
    """Feeds engine ticks into `RunStats` and merges the most recent ~1 s of them on demand."""

    def __init__(self, window_s: float = INTERVAL_WINDOW_S) -> None:
        self.run = RunStats()
        self.window_s = window_s
        # Ticks are ~0.25 s; 16 covers the window even if the engine ticks faster.
        self._recent: deque[IntervalStats] = deque(maxlen=16)
        self.ticks_seen = 0

    def add(self, ticks: list[IntervalStats]) -> None:
        for tick in ticks:
            self.run.add(tick)
            self._recent.append(tick)
            self.ticks_seen += 1

    def interval(self) -> IntervalStats | None:
        """The ticks of the last `window_s` seconds merged into one, None before the first tick."""
        if not self._recent:
            return None
        newest = self._recent[-1]
        window = [tick for tick in self._recent if tick.t_end > newest.t_end - self.window_s + 1e-9]
        merged = IntervalStats(index=window[0].index, t_start=window[0].t_start, t_end=window[0].t_start)
        for tick in window:
            merged.merge_later(tick, keep_scatter=False)
        return merged

    @property
    def total(self) -> IntervalStats:
        return self.run.total

    def current_level(self) -> LevelStats | None:
        """The stats of the level the latest tick ran at."""
        last = self.run.last
        if last is None:
            return None
        level = last.rate if last.mode == "open" else last.concurrency
        return self.run.levels.get((last.mode, float(level or 0)))

    def levels_of(self, mode: str) -> list[LevelStats]:
        """The levels visited in one load mode, lowest first."""
        return sorted((stats for (m, _), stats in self.run.levels.items() if m == mode),
                      key=lambda stats: stats.level)
