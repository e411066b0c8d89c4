"""The run's newest notable events (faults, ramp steps, load changes), kept for the dashboard's run log (`l`).

The errors panel gives each fault one line cut to its width; the run log
gives every event its whole line. Bounded: a long run keeps its newest.
"""

from __future__ import annotations

from collections import deque

from mlstress_tui.results.interval_stats import IntervalStats
from mlstress_tui.results.kinds import RunEvent

MAX_EVENTS = 200


class EventLog:
    """A session consumer keeping the newest MAX_EVENTS events of the ticks, oldest first."""

    def __init__(self, max_events: int = MAX_EVENTS) -> None:
        self._events: deque[RunEvent] = deque(maxlen=max_events)

    def on_tick(self, tick: IntervalStats) -> None:
        self._events.extend(tick.events)

    @property
    def events(self) -> tuple[RunEvent, ...]:
        return tuple(self._events)
