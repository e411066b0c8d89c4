"""`intervals.jsonl`: one line per report interval, flushed as the run goes."""

from __future__ import annotations

import json
from pathlib import Path

from mlstress_tui.load.stats import IntervalStats


class IntervalWriter:
    """Merges ticks into report intervals and appends each as a JSON line the moment it closes."""

    def __init__(self, path: Path, interval_s: float) -> None:
        self.path = path
        self.interval_s = interval_s
        self._handle = open(path, "w", encoding="utf-8")
        self._current: IntervalStats | None = None
        self._events: list[dict] = []
        self.lines = 0

    def add(self, tick: IntervalStats, events: list[dict]) -> None:
        self._events.extend(events)
        if self._current is None:
            self._current = IntervalStats(index=self.lines, t_start=tick.t_start, t_end=tick.t_start)
        self._current.merge_later(tick, keep_scatter=False)
        if self._current.t_end - self._current.t_start >= self.interval_s - 1e-6:
            self._write()

    def flush_partial(self) -> None:
        """Write what is left of the last interval (the end of the run)."""
        if self._current is not None and (self._current.requests or self._events):
            self._write()

    def _write(self) -> None:
        line = self._current.to_json()
        if self._events:
            line["events"] = self._events
        self._handle.write(json.dumps(line) + "\n")
        self._handle.flush()
        self.lines += 1
        self._current, self._events = None, []

    def close(self) -> None:
        if not self._handle.closed:
            self.flush_partial()
            self._handle.close()
