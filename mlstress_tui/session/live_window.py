"""The run's "last second": a sliding window over the newest ticks, for the live numbers and the progress line."""

from __future__ import annotations

from collections import deque

from mlstress_tui.results.interval_stats import IntervalStats, merge_ticks

INTERVAL_WINDOW_S = 1.0
# The SLA light's states: the last second's p95 within the threshold, past it, or no request answered.
SLA_OK, SLA_BREACH, SLA_IDLE = "ok", "breach", "idle"
SLA_STATES = (SLA_OK, SLA_BREACH, SLA_IDLE)


class LiveWindow:
    """Keeps the newest ticks and merges the last `window_s` seconds of them on demand."""

    def __init__(self, window_s: float = INTERVAL_WINDOW_S) -> None:
        self.window_s = window_s
        # Ticks are ~0.25 s; 16 covers the window even if the engine ticks faster.
        self._recent: deque[IntervalStats] = deque(maxlen=16)
        self.ticks_seen = 0

    def on_tick(self, tick: IntervalStats) -> None:
        self._recent.append(tick)
        self.ticks_seen += 1

    def interval(self) -> IntervalStats | None:
        """The ticks of the last `window_s` seconds merged into one, None before the first tick."""
        if not self._recent:
            return None
        newest = self._recent[-1]
        return merge_ticks(tick for tick in self._recent if tick.t_end > newest.t_end - self.window_s + 1e-9)


def sla_state(p95_ms: float | None, sla_p95_ms: float, stuck_users: int = 0) -> str:
    """The SLA light (dashboard, /metrics): no answer in the second while users are stuck is the worst case, a breach."""
    if p95_ms is None:
        return SLA_BREACH if stuck_users else SLA_IDLE
    return SLA_OK if p95_ms <= sla_p95_ms else SLA_BREACH
