"""What one stratum of users measured: its latencies (the failed requests' too), its errors, and the users it holds.

A failed request is past any latency budget: a stratum's quantiles rank its
failures above every answer, and a stratum whose failures alone pass its p95
(more than 5% of its requests) *fails*. The percentiles a stratum's row shows
are of the requests that answered (`answered`), beside its error count.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from mlstress_tui.load.user_strata import Stratum
from mlstress_tui.results.histogram import LatencyHistogram, bucket_value_ns

# A stratum whose failures alone reach past this quantile has its p95 past any budget: it fails.
FAILING_QUANTILE = 0.95
# Failures that are not timeouts are taken as fast (their latency at the bottom of the histogram) when the
# workers do not send the failed requests' own latencies; a timeout is recorded at its deadline, the slowest
# any request can be.
TIMEOUT_KIND = "timeout"


@dataclass(frozen=True)
class StratumResult:
    """What one stratum measured: its requests, their latencies (failed ones too), its errors by kind, the mean event count.

    `failed_latency` holds the failed requests' own latencies (a part of
    `latency`) when the workers send them; without it the split between the
    answered and the failed is inferred from the kinds (see TIMEOUT_KIND).
    """

    stratum: Stratum
    requests: int
    latency: LatencyHistogram
    mean_events: float
    errors_by_kind: Mapping[str, int] = field(default_factory=dict)
    failed_latency: LatencyHistogram | None = None

    @property
    def errors(self) -> int:
        return min(sum(self.errors_by_kind.values()), self.latency.count)

    @property
    def error_rate(self) -> float:
        return self.errors / self.latency.count if self.latency.count else 0.0

    @property
    def answered(self) -> LatencyHistogram:
        """The latencies of the requests that answered (the failed ones taken out)."""
        if not self.errors:
            return self.latency
        if self.failed_latency is not None and self.failed_latency.count == self.errors:
            return _histogram_of_counts(self.latency.counts - self.failed_latency.counts)
        timeouts = min(self.errors_by_kind.get(TIMEOUT_KIND, 0), self.errors)
        return _trimmed(self.latency, low=self.errors - timeouts, high=timeouts)

    @property
    def fails(self) -> bool:
        """Its failures alone put its p95 past any budget."""
        return math.isinf(self.percentile_ms(FAILING_QUANTILE * 100))

    def percentile_ms(self, percent: float) -> float:
        """The latency at `percent` with every failure ranked past every answer (math.inf where failures are)."""
        answered = self.answered
        rank = max(1, math.ceil(self.latency.count * percent / 100.0))
        if rank > answered.count:
            return math.inf
        return _value_at_rank(answered, rank)

    def share_past_ms(self, threshold_ms: float) -> float:
        """Of its requests, the share that failed or answered slower than `threshold_ms`."""
        if not self.latency.count:
            return 0.0
        answered = self.answered
        slow = answered.share_above_ms(threshold_ms) * answered.count
        return min(1.0, (slow + self.errors) / self.latency.count)


def members(sorted_population: np.ndarray, stratum: Stratum) -> np.ndarray:
    """The event counts of the population's users in a stratum (a slice of the sorted population)."""
    low = np.searchsorted(sorted_population, stratum.min_events, side="left")
    high = np.searchsorted(sorted_population, stratum.max_events, side="right")
    return sorted_population[low:high]


def _histogram_of_counts(counts: np.ndarray) -> LatencyHistogram:
    """A histogram holding these bucket counts; min, max and sum from the buckets' own values."""
    histogram = LatencyHistogram()
    counts = np.maximum(np.asarray(counts, dtype=np.int64), 0)
    filled = np.flatnonzero(counts)
    if filled.size:
        histogram.counts = counts
        histogram.count = int(counts.sum())
        histogram.min_ns = int(bucket_value_ns(int(filled[0])))
        histogram.max_ns = int(bucket_value_ns(int(filled[-1])))
        histogram.sum_ns = int(np.dot(counts[filled], bucket_value_ns(filled)))
    return histogram


def _trimmed(histogram: LatencyHistogram, *, low: int, high: int) -> LatencyHistogram:
    """The histogram without its `low` fastest and `high` slowest values."""
    counts = histogram.counts.copy()
    for remove, order in ((low, np.arange(counts.size)), (high, np.arange(counts.size)[::-1])):
        for index in order[counts[order] > 0]:
            if remove <= 0:
                break
            taken = min(remove, int(counts[index]))
            counts[index] -= taken
            remove -= taken
    return _histogram_of_counts(counts)


def _value_at_rank(histogram: LatencyHistogram, rank: int) -> float:
    """The rank-th smallest value (1-based) in milliseconds, as percentile_ms reports values."""
    index = int(np.searchsorted(np.cumsum(histogram.counts), rank))
    value = float(bucket_value_ns(index))
    return min(max(value, histogram.min_ns), histogram.max_ns) / 1e6
