"""A worker's tick: the outcomes gathered since the last one, folded into one `IntervalStats` with numpy."""

from __future__ import annotations

from collections import Counter

import numpy as np

from mlstress_tui.load.worker.records import Outcome, Records
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
        if batch:
            self._fold(tick, batch)
        for kind, message in self._records.take_failures().items():
            tick.last_error[kind] = message
        return tick

    def _fold(self, tick: IntervalStats, batch: list[Outcome]) -> None:
        latency, service, wait, event_count, kinds, groups, paths = zip(*batch)
        count = len(batch)
        tick.requests = count
        errors = Counter(kind for kind in kinds if kind is not None)
        tick.ok = count - sum(errors.values())
        tick.errors_by_kind = dict(errors)
        latency_ns = np.fromiter(latency, dtype=np.int64, count=count)
        wait_ns = np.fromiter(wait, dtype=np.int64, count=count)
        service_ns = np.fromiter(service, dtype=np.int64, count=count)
        tick.latency.record_many(latency_ns)
        tick.service.record_many(service_ns)
        tick.pool_wait.record_many(wait_ns)
        if tick.mode == OPEN:
            tick.late_starts = int(np.count_nonzero(wait_ns > LATE_START_NS))
        sample = self._rng.choice(count, size=min(count, self._scatter_per_tick), replace=False)
        counts = np.fromiter(event_count, dtype=np.int64, count=count)
        tick.scatter = np.column_stack([counts[sample].astype(np.float64), latency_ns[sample] / 1e6])
        failed = kinds if errors else None
        if self._strata_edges is not None:
            by_stratum = np.searchsorted(self._strata_edges, counts, side="right") - 1
            tick.strata = group_stats(by_stratum, latency_ns, counts, failed)
        if self._edge_mix:
            tick.edge_classes = group_stats(np.fromiter(groups, dtype=np.int64, count=count),
                                            latency_ns, counts, failed)
        if paths.count(None) != count:  # a C-level count: most targets have no paths
            names = sorted({path for path in paths if path is not None})
            index = {name: number for number, name in enumerate(names)}
            keys = np.fromiter((index[path] if path is not None else -1 for path in paths), dtype=np.int64,
                               count=count)
            tick.paths = {names[key]: group for key, group in
                          group_stats(keys, latency_ns, counts, failed, service_ns=service_ns, wait_ns=wait_ns).items()}


def empty_tick(index: int, t_start: float, t_end: float, mode: LoadMode) -> IntervalStats:
    return IntervalStats(index=index, t_start=t_start, t_end=t_end, mode=mode)
