"""When each open-loop request is due: a piecewise-constant arrival rate, no queue in memory."""

from __future__ import annotations

import math
import threading
from collections import deque


class ArrivalSchedule:
    """Request i is due at the time the arrival count reaches i (wrk2-style constant rate).

    Requests are claimed by index, so a backlog costs no memory however long the
    system falls behind; a rate change bends the curve from that instant on and
    keeps what was already due. Pausing forgives the backlog (counted as dropped).
    """

    def __init__(self, rate: float, start_ns: int) -> None:
        self._lock = threading.Lock()
        # (time_ns, arrivals at that time, rate per second) from which the curve continues.
        self._segments: deque[tuple[int, float, float]] = deque([(start_ns, 0.0, rate)], maxlen=256)
        self._next = 0
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
            due = math.ceil(self._arrivals_at(now_ns))
            self.dropped += max(due - self._next, 0)
            self._segments.append((now_ns, float(self._next), rate))

    def claim(self) -> int:
        """The index of the next request to send."""
        with self._lock:
            index = self._next
            self._next += 1
            return index

    def due_ns(self, index: int) -> float:
        """When request `index` is due (perf_counter_ns); inf while paused."""
        for time_ns, arrivals, rate in reversed(self._segments):
            if index >= arrivals:
                return time_ns + (index - arrivals) * 1e9 / rate if rate > 0 else math.inf
        time_ns, arrivals, rate = self._segments[0]
        return time_ns + (index - arrivals) * 1e9 / rate if rate > 0 else time_ns
