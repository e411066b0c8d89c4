"""When each open-loop request is due: a piecewise-constant arrival rate, no queue in memory."""

from __future__ import annotations

import math
import threading
from collections import deque

import numpy as np

UNIFORM = "uniform"
POISSON = "poisson"
ARRIVALS = (UNIFORM, POISSON)
_DRAWS = 1024


class ArrivalSchedule:
    """Each request has a position on the arrival curve and is due when the curve reaches it.

    Uniform arrivals put request i at position i (wrk2-style constant rate). Poisson
    arrivals space positions by seeded unit exponentials: mapped through the same
    piecewise-rate curve, that is a Poisson process at the asked-for mean rate, bursty
    as production traffic is, so queueing shows before the very edge of capacity.
    Requests are claimed in order, so a backlog costs no memory however long the
    system falls behind; a rate change bends the curve from that instant on and
    keeps what was already due. Pausing forgives the backlog (counted as dropped).
    """

    def __init__(self, rate: float, start_ns: int, *, arrivals: str = UNIFORM, seed: object = None) -> None:
        self._lock = threading.Lock()
        # (time_ns, arrivals at that time, rate per second) from which the curve continues.
        self._segments: deque[tuple[int, float, float]] = deque([(start_ns, 0.0, rate)], maxlen=256)
        self._rng = np.random.default_rng(seed) if arrivals == POISSON else None
        self._gaps: list[float] = []
        # Uniform: the next request's position; Poisson: the last claimed one's (the next lies one gap on).
        self._position = 0.0
        self.dropped = 0

    @property
    def rate(self) -> float:
        return self._segments[-1][2]

    def _arrivals_at(self, now_ns: int) -> float:
        time_ns, arrivals, rate = self._segments[-1]
        return arrivals + max(now_ns - time_ns, 0) * rate / 1e9

    def set_rate(self, rate: float, now_ns: int) -> None:
        with self._lock:
            self._segments.append((now_ns, self._arrivals_at(now_ns), rate))

    def pause(self, now_ns: int) -> None:
        self.set_rate(0.0, now_ns)

    def resume(self, rate: float, now_ns: int) -> None:
        with self._lock:
            due = self._arrivals_at(now_ns)
            owed = math.ceil(due) - self._position if self._rng is None else math.floor(due - self._position)
            self.dropped += max(int(owed), 0)
            self._segments.append((now_ns, self._position, rate))

    def claim(self) -> float:
        """The position of the next request to send, for `due_ns`."""
        with self._lock:
            if self._rng is None:
                position = self._position
                self._position += 1.0
                return position
            if not self._gaps:
                self._gaps = self._rng.exponential(1.0, _DRAWS).tolist()
            self._position += self._gaps.pop()
            return self._position

    def due_ns(self, index: float) -> float:
        """When the request at position `index` is due (perf_counter_ns); inf while paused."""
        for time_ns, arrivals, rate in reversed(self._segments):
            if index >= arrivals:
                return time_ns + (index - arrivals) * 1e9 / rate if rate > 0 else math.inf
        time_ns, arrivals, rate = self._segments[0]
        return time_ns + (index - arrivals) * 1e9 / rate if rate > 0 else time_ns
