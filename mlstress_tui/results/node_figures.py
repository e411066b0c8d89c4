"""What each node of a Ray run carried: its actors' ticks added up, histograms merged exactly."""

from __future__ import annotations

from mlstress_tui.results.histogram import LatencyHistogram
from mlstress_tui.results.interval_stats import IntervalStats

# A node whose busiest actor used this share of a core or more was itself the bottleneck.
CPU_BOUND_SHARE = 0.9


class NodeFigures:
    """One node's running totals."""

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.latency = LatencyHistogram()
        self.busiest_cpu = 0.0
        self.late_starts = 0  # open loop: arrivals that found no free executor on this node

    def add(self, tick: IntervalStats) -> None:
        self.requests += tick.requests
        self.errors += tick.requests - tick.ok
        self.latency.merge(tick.latency)
        self.busiest_cpu = max(self.busiest_cpu, tick.worker_cpu or 0.0)
        self.late_starts += tick.late_starts

    def verdict(self) -> str:
        return "cpu_bound" if self.busiest_cpu >= CPU_BOUND_SHARE else "ok"
