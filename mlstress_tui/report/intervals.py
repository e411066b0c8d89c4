"""`intervals.jsonl`: one line per report interval, flushed as the run goes."""

from __future__ import annotations

import json
from pathlib import Path

from mlstress_tui.results.interval_stats import IntervalStats, WindowMerger


class IntervalWriter:
    """A run-session consumer: merges ticks into report intervals and appends each the moment it closes.

    A write that fails (a full disk, a removed directory) is kept as `error` and ends
    the writing, never the run: the live view and the summary go on without the file.
    """

    def __init__(self, path: Path, interval_s: float) -> None:
        self.path = path
        self._windows = WindowMerger(interval_s)
        self._handle = open(path, "w", encoding="utf-8")
        self.lines = 0
        self.error: str | None = None

    def on_tick(self, tick: IntervalStats) -> None:
        window = self._windows.add(tick)
        if window is not None:
            self._write(window)

    def _write(self, window: IntervalStats) -> None:
        if self.error is not None:
            return
        try:
            self._handle.write(json.dumps(window.to_json()) + "\n")
            self._handle.flush()
        except OSError as error:
            self.error = f"cannot write {self.path}: {error.strerror or error}"
            return
        self.lines += 1

    def close(self) -> None:
        """Write what is left of the last interval (the end of the run) and close the file."""
        if self._handle.closed:
            return
        window = self._windows.flush()
        if window is not None and (window.requests or window.events):
            self._write(window)
        try:
            self._handle.close()
        except OSError as error:
            self.error = self.error or f"cannot write {self.path}: {error.strerror or error}"
