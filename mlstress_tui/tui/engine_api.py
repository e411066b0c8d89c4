"""The shape of the load engine the dashboard drives (the real one and test fakes alike)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from mlstress_tui.load.stats import IntervalStats

STARTING = "starting"
RUNNING = "running"
PAUSED = "paused"
RAMPING = "ramping"
STOPPING = "stopping"
FINISHED = "finished"


class DashboardEngine(Protocol):
    """Cheap read-only properties, non-blocking commands, `poll()` for ticks, blocking `finish()`."""

    state: str
    mode: str
    concurrency: int
    rate: float | None
    pool_size: int | None
    elapsed_s: float
    finished: bool
    run_dir: Path
    target_info: dict[str, Any]
    duration_s: float | None
    requests_limit: int | None

    def set_concurrency(self, n: int) -> None: ...
    def set_rate(self, r: float) -> None: ...
    def set_mode(self, mode: str) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def start_ramp(self) -> None: ...
    def stop_ramp(self) -> None: ...
    def stop(self) -> None: ...
    def poll(self) -> list[IntervalStats]: ...
    def finish(self) -> dict[str, Any]: ...
