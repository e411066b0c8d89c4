"""A worker's tick: the outcomes gathered since the last one, folded into one `IntervalStats` with array operations."""

from __future__ import annotations

import numpy as np

from mlstress_tui.load.worker.records import EVENTS, GROUP, KIND, LATENCY, PATH, SERVICE, WAIT, Records
from mlstress_tui.results.interval_stats import IntervalStats, group_stats
from mlstress_tui.results.kinds import OPEN, LoadMode

# An open-loop request that starts later than this after its due time counts as a late start.
LATE_START_NS = 1_000_000


class TickBuilder:
    """Folds a batch of outcomes into a tick: counters, the three histograms, strata, edge classes, paths, a scatter."""

    def __init__(self, records: Records, *, worker_id: int, seed: int, scatter_per_tick: int,
                 strata_edges: tuple[int, ...], edge_mix: bool) -> None:
        self._records = records
        self._rng = np.random.default_rng([seed, worker_id, 7])
        self._scatter_per_tick = scatter_per_tick
        # Lower edges of the population's strata of event count: each tick counts every stratum exactly.
        self._strata_edges = np.array(strata_edges, dtype=np.int64) if strata_edges else None
        self._edge_mix = edge_mix

    def build(self, tick: IntervalStats) -> IntervalStats:
        """Fill `tick` (its time, load and gauges already set) with what was recorded since the last tick."""
        batch = self._records.take_outcomes()
        if len(batch):
            self._fold(tick, batch)
        for kind, message in self._records.take_failures().items():
            tick.last_error[kind] = message
        return tick

    def _fold(self, tick: IntervalStats, batch: np.ndarray) -> None:
        """Array operations only: the users' threads wait for the GIL while this runs, so nothing loops per request."""
        names = self._records.labels.names
        count = len(batch)
        latency_ns, service_ns, wait_ns = batch[:, LATENCY], batch[:, SERVICE], batch[:, WAIT]
        counts, kinds, paths = batch[:, EVENTS], batch[:, KIND], batch[:, PATH]
        tick.requests = count
        failed = kinds if kinds.any() else None
        if failed is not None:
            by_kind = np.bincount(failed)
            by_kind[0] = 0  # the requests that did not fail
            tick.errors_by_kind = {names[code]: int(by_kind[code]) for code in np.flatnonzero(by_kind).tolist()}
        tick.ok = count - sum(tick.errors_by_kind.values())
        tick.latency.record_many(latency_ns)
        tick.service.record_many(service_ns)
        tick.pool_wait.record_many(wait_ns)
        if tick.mode == OPEN:
            tick.late_starts = int(np.count_nonzero(wait_ns > LATE_START_NS))
        sample = self._rng.choice(count, size=min(count, self._scatter_per_tick), replace=False)
        tick.scatter = np.column_stack([counts[sample].astype(np.float64), latency_ns[sample] / 1e6])
        if self._strata_edges is not None:
            by_stratum = np.searchsorted(self._strata_edges, counts, side="right") - 1
            tick.strata = group_stats(by_stratum, latency_ns, counts, failed, names)
        if self._edge_mix:
            tick.edge_classes = group_stats(batch[:, GROUP], latency_ns, counts, failed, names)
        if paths.any():  # most targets have no paths
            # Label code 0 (no path) becomes key -1, which belongs to no group.
            tick.paths = {names[key + 1]: group for key, group in
                          group_stats(paths - 1, latency_ns, counts, failed, names, service_ns=service_ns,
                                      wait_ns=wait_ns).items()}


def empty_tick(index: int, t_start: float, t_end: float, mode: LoadMode) -> IntervalStats:
    return IntervalStats(index=index, t_start=t_start, t_end=t_end, mode=mode)
