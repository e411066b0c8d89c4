"""SIGINT, SIGTERM and SIGHUP as an event the headless front ends poll, so a run always writes its summary."""

from __future__ import annotations

import signal
import threading


class StopSignals:
    """SIGINT, SIGTERM and SIGHUP set an event instead of killing the process mid-write."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            self._previous[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number: int, frame: object) -> None:
        self.event.set()

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
