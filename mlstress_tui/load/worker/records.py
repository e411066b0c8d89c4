"""What a worker gathers between two ticks: each request's outcome, failures' messages, events and fault counters.

Appends are single C-level `deque.append` calls on the request path; the tick
thread pops everything once a tick, so nothing here needs a lock.
"""

from __future__ import annotations

from collections import deque

from mlstress_tui.results.histogram import LatencyHistogram
from mlstress_tui.results.kinds import RunEvent

# One request: latency, service and pool wait (ns), the user's event count, its error kind (None: ok), its user
# group and the path it took. A plain tuple: a named one costs a Python-level call on the request path.
Outcome = tuple[int, int, int, int, str | None, int, str | None]


class Records:
    """The tick in progress: outcomes, the latest message of each failure kind, events, fault counters."""

    def __init__(self) -> None:
        self.outcomes: deque[Outcome] = deque()
        self.failures: deque[tuple[str, str]] = deque(maxlen=256)
        self.events: deque[RunEvent] = deque()
        self.late_returns = 0
        self.unfinished = 0
        self.unsent = 0
        self.unsent_wait: LatencyHistogram | None = None
        self.paused_arrivals = 0

    def take_outcomes(self) -> list[Outcome]:
        outcomes = self.outcomes
        return [outcomes.popleft() for _ in range(len(outcomes))]

    def take_failures(self) -> dict[str, str]:
        """The latest message of each kind since the last tick."""
        failures = self.failures
        latest: dict[str, str] = {}
        for _ in range(len(failures)):
            kind, message = failures.popleft()
            latest[kind] = message
        return latest

    def take_events(self) -> list[RunEvent]:
        events = self.events
        return [events.popleft() for _ in range(len(events))]
