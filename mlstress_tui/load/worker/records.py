"""What a worker gathers between two ticks: each request's outcome, failures' messages, events and fault counters.

An outcome is seven integers appended to one `array('q')` in a single C-level
`extend` (whole under the GIL, as `deque.append` is), so the tick takes the
batch as one numpy matrix: two C-level copies, no Python object per request.
Error kinds and path names travel as small codes (`Labels`). Nothing here needs
a lock on the request path.
"""

from __future__ import annotations

import threading
from array import array
from collections import deque

import numpy as np

from mlstress_tui.results.histogram import LatencyHistogram
from mlstress_tui.results.kinds import RunEvent

# One request's columns: latency, service and pool wait (ns), the user's event count, its error kind (a label
# code, 0: ok), its user group and the path it took (a label code, 0: none).
LATENCY, SERVICE, WAIT, EVENTS, KIND, GROUP, PATH = range(7)
FIELDS = 7
NO_LABEL = 0


class Labels:
    """Error kinds and path names as small integer codes, so an outcome holds integers only; 0 is none."""

    def __init__(self) -> None:
        self.names: list[str] = [""]  # code 0 (none) names nothing
        self._codes: dict[str, int] = {}
        self._lock = threading.Lock()

    def code(self, name: str | None) -> int:
        """The code of `name`; a new name takes the lock (a few per run), a known one is one dict lookup."""
        if name is None:
            return NO_LABEL
        code = self._codes.get(name)
        if code is None:
            with self._lock:
                code = self._codes.get(name)
                if code is None:
                    # The name is listed before its code is published: whoever reads a code finds its name.
                    self.names.append(name)
                    code = self._codes[name] = len(self.names) - 1
        return code


class Records:
    """The tick in progress: outcomes, the latest message of each failure kind, events, fault counters."""

    def __init__(self) -> None:
        self.outcomes = array("q")
        # The request path's one call: `record((latency, service, wait, events, kind, group, path))`.
        self.record = self.outcomes.extend
        self.labels = Labels()
        self.failures: deque[tuple[str, str]] = deque(maxlen=256)
        self.events: deque[RunEvent] = deque()
        self.late_returns = 0
        self.unfinished = 0
        self.unsent = 0
        self.unsent_wait: LatencyHistogram | None = None
        self.paused_arrivals = 0

    def take_outcomes(self) -> np.ndarray:
        """The outcomes recorded so far as a (requests, FIELDS) int64 matrix, oldest first.

        Copy then delete the same leading slice: an append between the two lands
        past it, so it stays for the next tick and nothing is taken twice.
        """
        outcomes = self.outcomes
        size = len(outcomes)
        taken = outcomes[:size]
        del outcomes[:size]
        return np.frombuffer(taken, dtype=np.int64).reshape(-1, FIELDS)

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
