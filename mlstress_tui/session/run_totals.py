"""The cumulative view of a run: totals, faults, stalls, recent errors and a bounded scatter sample.

A consumer reads each tick and never edits it: what every consumer sees is
what the collector emitted.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from mlstress_tui.results.interval_stats import IntervalStats, stopped_together_s
from mlstress_tui.results.kinds import EventKind, RunEvent

SCATTER_CAPACITY = 2000
RECENT_CAPACITY = 50
# Stops kept per worker (each is a wake-up 250 ms or more late: a run holds few).
MAX_STOP_SPANS = 10_000


class RunTotals:
    """Totals of the whole run, fed one tick at a time by the run session."""

    def __init__(self, scatter_capacity: int = SCATTER_CAPACITY, recent_capacity: int = RECENT_CAPACITY) -> None:
        self.total = IntervalStats(index=0, t_start=0.0, t_end=0.0)
        self.last: IntervalStats | None = None
        self.scatter: deque[tuple[float, float]] = deque(maxlen=scatter_capacity)
        self.recent_errors: deque[tuple[float, str, str]] = deque(maxlen=recent_capacity)
        self.faults: deque[RunEvent] = deque(maxlen=recent_capacity)
        # Every fault, counted by kind (the deque above keeps only the recent ones for the screen).
        self.fault_counts: dict[EventKind, int] = {}
        self.stuck_users_max = 0
        self.users_running_max = 0
        # When each worker stood still: the time every worker stood still at once is not load time.
        self._stop_spans: dict[int, list[tuple[float, float]]] = {}
        self._stopped_s: float | None = 0.0
        # Ticks with a harness stall of any worker, and their seconds: the intervals the stalls mark.
        self.stall_ticks = 0
        self.ticks = 0
        # Per tick (start, busiest worker's share of a core), for verdicts over the run (bounded: a day at 4 Hz).
        self.busy: deque[tuple[float, float]] = deque(maxlen=345_600)

    def on_tick(self, tick: IntervalStats) -> None:
        # The scatter sample is kept bounded here, not in the running total.
        self.total.merge_later(tick, keep_scatter=False, keep_groups=True)
        self.last = tick
        self.ticks += 1
        self.stuck_users_max = max(self.stuck_users_max, tick.stuck_users)
        self.users_running_max = max(self.users_running_max, tick.users_running)
        for event in tick.events:
            if event.is_fault:
                self.faults.append(event)
                self.fault_counts[event.kind] = self.fault_counts.get(event.kind, 0) + 1
            if event.kind == EventKind.HARNESS_STALL:
                self.stall_ticks += 1
        for worker, spans in tick.stop_spans.items():
            mine = self._stop_spans.setdefault(worker, [])
            if spans and len(mine) < MAX_STOP_SPANS:
                mine.extend(spans)
                self._stopped_s = None
        if tick.requests or not tick.paused:
            self.busy.append((tick.t_start, tick.worker_cpu))
        if len(tick.scatter):
            self.scatter.extend(map(tuple, np.asarray(tick.scatter).tolist()))
        for kind, message in tick.last_error.items():
            self.recent_errors.append((tick.t_end, kind, message))

    @property
    def stopped_s(self) -> float:
        """Seconds in which every worker stood still at once (a stop of the run, not of one worker)."""
        if self._stopped_s is None:
            self._stopped_s = stopped_together_s(self._stop_spans)
        return self._stopped_s

    def fault_events(self) -> list[RunEvent]:
        return list(self.faults)
