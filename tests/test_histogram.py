"""The latency histogram: bounded error, exact extremes, fixed memory, cheap to ship."""

import pickle

import numpy as np
import pytest

from mlstress_tui.results.histogram import BUCKETS, LatencyHistogram


@pytest.fixture
def samples_ns() -> np.ndarray:
    rng = np.random.default_rng(1)
    return (rng.lognormal(mean=np.log(2e6), sigma=1.0, size=200_000)).astype(np.int64)


def test_percentiles_within_one_percent_of_exact(samples_ns):
    histogram = LatencyHistogram()
    histogram.record_many(samples_ns)
    for percent in (50, 90, 95, 99, 99.9):
        exact = np.percentile(samples_ns, percent, method="inverted_cdf") / 1e6
        assert histogram.percentile_ms(percent) == pytest.approx(exact, rel=0.01)


def test_count_min_max_mean_are_exact(samples_ns):
    histogram = LatencyHistogram()
    histogram.record_many(samples_ns[:1000])
    histogram.record_many(samples_ns[1000:])
    summary = histogram.summary_ms()
    assert histogram.count == len(samples_ns)
    assert summary["max"] == pytest.approx(samples_ns.max() / 1e6, rel=1e-6)
    assert summary["mean"] == pytest.approx(samples_ns.mean() / 1e6, rel=1e-6)
    assert histogram.min_ns == samples_ns.min()


def test_sub_millisecond_latencies_keep_microsecond_resolution():
    histogram = LatencyHistogram()
    histogram.record_many(np.full(100, 3_000))  # 3 µs
    assert histogram.percentile_ms(50) == pytest.approx(0.003, rel=0.01)


def test_merge_equals_recording_everything_in_one(samples_ns):
    whole, left, right = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    whole.record_many(samples_ns)
    left.record_many(samples_ns[::2])
    right.record_many(samples_ns[1::2])
    left.merge(right)
    assert left.summary_ms() == whole.summary_ms()
    assert np.array_equal(left.counts, whole.counts)


def test_memory_is_fixed_and_pickle_round_trips(samples_ns):
    histogram = LatencyHistogram()
    for _ in range(5):
        histogram.record_many(samples_ns)
    assert histogram.counts.shape == (BUCKETS,)
    clone = pickle.loads(pickle.dumps(histogram))
    assert clone.summary_ms() == histogram.summary_ms()
    assert len(pickle.dumps(histogram)) < 16_000


def test_empty_histogram_reports_nulls():
    summary = LatencyHistogram().summary_ms()
    assert set(summary) == {"p50", "p90", "p95", "p99", "p999", "max", "mean"}
    assert all(value is None for value in summary.values())


def test_log_bins_keep_every_count(samples_ns):
    histogram = LatencyHistogram()
    histogram.record_many(samples_ns)
    edges, counts = histogram.log_bins_ms(per_decade=5)
    assert counts.sum() == len(samples_ns)
    assert len(edges) == len(counts) + 1
    assert np.all(np.diff(np.log10(edges)) == pytest.approx(0.2))
