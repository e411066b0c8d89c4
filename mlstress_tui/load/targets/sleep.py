"""A calibration target with a known service time; `sleep:0ms` measures the harness itself."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

from mlstress_tui.load.targets import LiveTarget, RequestTimeout, Target


@dataclass(frozen=True)
class SleepTarget(Target):
    kind: ClassVar[str] = "sleep"
    sleep_ms: float = 0.0

    @property
    def label(self) -> str:
        return f"sleep:{self.sleep_ms:g}ms"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "sleep_ms": self.sleep_ms}

    def open(self, timeout_s: float) -> LiveTarget:
        return _LiveSleep(self.sleep_ms)


class _LiveSleep(LiveTarget):
    def __init__(self, sleep_ms: float) -> None:
        self.sleep_s = sleep_ms / 1000.0

    def connect(self) -> None:
        return None

    def request(self, connection: None, user_id: str, deadline_ns: int) -> None:
        if self.sleep_s <= 0:
            return
        remaining_s = (deadline_ns - time.perf_counter_ns()) / 1e9
        if self.sleep_s > remaining_s:
            time.sleep(max(remaining_s, 0.0))
            raise RequestTimeout()
        time.sleep(self.sleep_s)
