"""The harness's own lag (jHiccup-style): a timer that sleeps a fixed period and records how late each wake-up is.

Whatever delays that timer — a starved core, a stopped process, a GIL held by
target code — delays every request of the worker the same way, so its lag is
the stall any request there would see.
"""

from __future__ import annotations

import threading
import time
from collections import deque

HICCUP_PERIOD_S = 0.005


class HiccupMeter:
    """Wakes every HICCUP_PERIOD_S on its own thread until `stopping` is set; `take()` hands over the lags (ns)."""

    def __init__(self, stopping: threading.Event) -> None:
        self._stopping = stopping
        self._lags: deque[tuple[int, int]] = deque()

    def start(self) -> None:
        threading.Thread(target=self._measure, daemon=True, name="hiccup").start()

    def _measure(self) -> None:
        clock, period_ns, record = time.perf_counter_ns, int(HICCUP_PERIOD_S * 1e9), self._lags.append
        while not self._stopping.is_set():
            started = clock()
            time.sleep(HICCUP_PERIOD_S)
            record((started, max(clock() - started - period_ns, 0)))

    def take(self) -> list[tuple[int, int]]:
        """(when the sleep began, how late it woke), both in perf_counter ns, oldest first."""
        lags = self._lags
        return [lags.popleft() for _ in range(len(lags))]
