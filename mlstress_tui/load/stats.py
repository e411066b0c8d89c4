"""Interval snapshots and the cumulative run view built from them."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from mlstress_tui.load.histogram import LatencyHistogram

CLOSED = "closed"
OPEN = "open"


@dataclass
class IntervalStats:
    """What happened in one interval: counters, errors, three histograms and a scatter sample.

    Workers send one per tick; the collector merges the workers' ticks into one,
    and ticks into longer intervals, with `merge`.
    """

    index: int
    t_start: float
    t_end: float
    mode: str = CLOSED
    concurrency: int = 0
    rate: float | None = None
    requests: int = 0
    ok: int = 0
    late_starts: int = 0
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    last_error: dict[str, str] = field(default_factory=dict)
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    service: LatencyHistogram = field(default_factory=LatencyHistogram)
    pool_wait: LatencyHistogram = field(default_factory=LatencyHistogram)
    # How late the workers' own timer wakes up (jHiccup-style): delay the harness or
    # the machine adds to every request, whatever the target does.
    hiccup: LatencyHistogram = field(default_factory=LatencyHistogram)
    # (event_count, latency_ms) pairs: a bounded random sample of this interval's requests.
    scatter: np.ndarray = field(default_factory=lambda: np.empty((0, 2), dtype=np.float64))
    worker_cpu: float = 0.0
    # The load was paused for this whole interval: idle by choice, not a stalled system.
    paused: bool = False

    @property
    def errors(self) -> int:
        return self.requests - self.ok

    @property
    def duration_s(self) -> float:
        return max(self.t_end - self.t_start, 1e-9)

    @property
    def throughput_rps(self) -> float:
        return self.requests / self.duration_s

    def merge_worker(self, other: IntervalStats) -> None:
        """Add another worker's share of the same interval (loads add up)."""
        self.concurrency += other.concurrency
        if other.rate is not None:
            self.rate = (self.rate or 0.0) + other.rate
        self.mode = other.mode
        self.worker_cpu = max(self.worker_cpu, other.worker_cpu)
        self.paused = self.paused and other.paused
        self._add_counts(other)

    def merge_later(self, other: IntervalStats, *, keep_scatter: bool = True) -> None:
        """Extend this interval by the next one (the load is the later one's)."""
        self.t_end = max(self.t_end, other.t_end)
        self.mode, self.concurrency, self.rate = other.mode, other.concurrency, other.rate
        self.worker_cpu = max(self.worker_cpu, other.worker_cpu)
        self._add_counts(other, keep_scatter=keep_scatter)

    def _add_counts(self, other: IntervalStats, *, keep_scatter: bool = True) -> None:
        self.requests += other.requests
        self.ok += other.ok
        self.late_starts += other.late_starts
        for kind, count in other.errors_by_kind.items():
            self.errors_by_kind[kind] = self.errors_by_kind.get(kind, 0) + count
        self.last_error.update(other.last_error)
        self.latency.merge(other.latency)
        self.service.merge(other.service)
        self.pool_wait.merge(other.pool_wait)
        self.hiccup.merge(other.hiccup)
        if keep_scatter and len(other.scatter):
            self.scatter = np.concatenate([self.scatter, other.scatter])

    def to_json(self) -> dict:
        """One `intervals.jsonl` line (design.md)."""
        return {
            "t": round(self.t_end, 3),
            "mode": self.mode,
            "concurrency": self.concurrency,
            "rate": None if self.rate is None else round(self.rate, 3),
            "requests": self.requests,
            "errors": self.errors,
            "errors_by_kind": dict(self.errors_by_kind),
            "late_starts": self.late_starts,
            "throughput_rps": round(self.throughput_rps, 3),
            "latency_ms": self.latency.summary_ms(),
            "service_ms": self.service.summary_ms(),
            "pool_wait_ms": self.pool_wait.summary_ms(),
            "hiccup_ms": self.hiccup.summary_ms(),
            "worker_cpu": round(self.worker_cpu, 3),
        }


@dataclass
class LevelStats:
    """Everything measured while the load stood at one concurrency (or rate) level."""

    mode: str
    level: float
    seconds: float = 0.0
    requests: int = 0
    errors: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)

    @property
    def throughput_rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


class RunStats:
    """The cumulative view of a run: totals, per-level stats and a bounded scatter sample."""

    def __init__(self, scatter_capacity: int = 2000, error_capacity: int = 50) -> None:
        self.total = IntervalStats(index=0, t_start=0.0, t_end=0.0)
        self.last: IntervalStats | None = None
        self.levels: dict[tuple[str, float], LevelStats] = {}
        self.scatter: deque[tuple[float, float]] = deque(maxlen=scatter_capacity)
        self.recent_errors: deque[tuple[float, str, str]] = deque(maxlen=error_capacity)

    def add(self, interval: IntervalStats) -> None:
        # The scatter sample is kept bounded here, not in the running total.
        self.total.merge_later(interval, keep_scatter=False)
        self.last = interval
        if interval.paused:
            return  # a paused interval would dilute its level's throughput
        level = interval.rate if interval.mode == OPEN else interval.concurrency
        key = (interval.mode, float(level or 0))
        stats = self.levels.get(key)
        if stats is None:
            stats = self.levels[key] = LevelStats(mode=interval.mode, level=float(level or 0))
        stats.seconds += interval.duration_s
        stats.requests += interval.requests
        stats.errors += interval.errors
        stats.latency.merge(interval.latency)
        self.scatter.extend(map(tuple, interval.scatter.tolist()))
        for kind, message in interval.last_error.items():
            self.recent_errors.append((interval.t_end, kind, message))
