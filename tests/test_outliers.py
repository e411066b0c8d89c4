"""Heavy users: strata of event counts, the share of a histogram above a threshold, and the breach event count of a p95 curve."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlstress_tui.analysis.acceptance import evaluate
from mlstress_tui.analysis.latency_curve import LatencyCurve
from mlstress_tui.analysis.outliers import breach_event_count, heavy_breach_rate, outliers_report, strata_table
from mlstress_tui.analysis.stratum_result import StratumResult
from mlstress_tui.stages import Criterion
from mlstress_tui.load.user_strata import Stratum, build_strata, population_counts, stratum_index
from mlstress_tui.results.histogram import LatencyHistogram

Z95 = 1.6448536269514722
THRESHOLD_MS = 200.0
# The first whole event count whose p95, 0.5 ms + 0.02 ms per event, is above 200 ms.
TRUE_BREACH = 9_976


def heavy_tailed_population(seed: int = 42, users: int = 100_000) -> np.ndarray:
    """Pareto event counts (tail index 1.2): a fifth of users with none, the heaviest past 100,000."""
    return np.floor(np.random.default_rng(seed).pareto(1.2, users) * 5).astype(np.int64)


def assert_partition(counts: np.ndarray, strata: list[Stratum]) -> None:
    """Strata are ordered, contiguous and non-empty, and every user falls in exactly one."""
    assert [s.index for s in strata] == list(range(len(strata)))
    for below, above in zip(strata, strata[1:]):
        assert above.min_events == below.max_events + 1
    assert all(s.min_events <= s.max_events and s.users > 0 for s in strata)
    assert strata[0].min_events <= counts.min() and strata[-1].max_events == counts.max()
    index = stratum_index(counts, strata)
    lower = np.array([s.min_events for s in strata])[index]
    upper = np.array([s.max_events for s in strata])[index]
    assert np.all((lower <= counts) & (counts <= upper))
    assert population_counts(counts, strata).tolist() == [s.users for s in strata]
    assert sum(s.users for s in strata) == counts.size


def test_strata_of_a_heavy_tailed_population_cover_every_user_once():
    counts = heavy_tailed_population()
    strata = build_strata(counts)
    assert_partition(counts, strata)
    assert [s.name for s in strata[:4]] == ["0", "1", "2-4", "5-9"]
    top_1, top_01, heaviest = strata[-3:]
    assert (top_1.name, top_01.name, heaviest.name) == ("top 1%", "top 0.1%", "heaviest 10")
    assert abs(top_1.users + top_01.users + heaviest.users - 1_000) <= 10
    assert abs(top_01.users + heaviest.users - 100) <= 2
    assert heaviest.users == 10 and heaviest.min_events == np.sort(counts)[-10]


def test_bulk_strata_are_log_spaced_at_about_three_a_decade():
    counts = heavy_tailed_population()
    bulk = [s for s in build_strata(counts) if s.min_events > 0 and not s.name.startswith(("top", "heaviest"))]
    decades = np.log10(bulk[-1].max_events + 1)
    assert len(bulk) <= 3 * decades + 2
    widths = np.array([(s.max_events + 1) / s.min_events for s in bulk[1:-1]])
    assert np.all((widths >= 1.9) & (widths <= 2.6))


@pytest.mark.parametrize(
    "population",
    [
        [0],
        [7],
        [0] * 1_000,
        [5] * 50,
        [0] * 99 + [3],
        list(range(20)),
        [1, 1, 1, 2, 2, 1_000] * 3_000,
        [3] * 50_000 + [9] * 40_000 + [200] * 10_000,
    ],
    ids=["one-zero", "one-user", "all-zero", "all-tied", "one-active", "tiny-range", "tied-top", "three-values"],
)
def test_edge_populations_still_give_a_partition(population):
    counts = np.array(population, dtype=np.int64)
    assert_partition(counts, build_strata(counts))


def test_all_zero_users_form_one_stratum_and_a_lone_user_is_the_heaviest():
    assert [(s.name, s.users) for s in build_strata(np.zeros(500, dtype=np.int64))] == [("0", 500)]
    assert [(s.name, s.min_events, s.max_events) for s in build_strata(np.array([7]))] == [("heaviest 1", 7, 7)]


def test_ties_at_the_top_give_one_heaviest_stratum_named_by_its_users():
    counts = np.array([1, 1, 1, 2, 2, 1_000] * 3_000)
    assert [(s.name, s.users) for s in build_strata(counts)] == [("1", 9_000), ("2-999", 6_000), ("heaviest 3000", 3_000)]


def test_counts_outside_the_strata_go_to_the_end_strata():
    strata = build_strata(np.arange(1, 1_000))
    assert stratum_index(np.array([0, 10**9]), strata).tolist() == [0, len(strata) - 1]


def histogram_of(latencies_ms: np.ndarray) -> LatencyHistogram:
    histogram = LatencyHistogram()
    histogram.record_many(np.round(latencies_ms * 1e6).astype(np.int64))
    return histogram


@pytest.mark.parametrize("threshold_ms", [0.5, 2.0, 10.0, 50.0])
def test_share_above_is_exact_but_for_values_within_a_bucket_of_the_threshold(threshold_ms):
    latencies = np.random.default_rng(5).lognormal(np.log(3.0), 1.0, 200_000)
    share = histogram_of(latencies).share_above_ms(threshold_ms)
    exact = np.mean(latencies > threshold_ms)
    near = np.mean(np.abs(np.log(latencies / threshold_ms)) <= np.log(1.01))
    assert 0.0 < exact < 1.0
    assert abs(share - exact) <= near


def test_share_above_is_zero_when_empty_or_above_the_max_and_one_below_the_min():
    assert LatencyHistogram().share_above_ms(1.0) == 0.0
    histogram = histogram_of(np.array([2.0, 3.0, 4.0]))
    assert histogram.share_above_ms(4.0) == 0.0
    assert histogram.share_above_ms(1.9) == 1.0


def measured_strata(counts, strata, latency_ms, *, requests=1_000, seed=3, sigma=0.3, slow=None):
    """Requests drawn evenly over each stratum's users; a user's latency has p95 `latency_ms(events)` and log-normal spread."""
    rng = np.random.default_rng(seed)
    results = []
    for stratum in strata:
        members = counts[(counts >= stratum.min_events) & (counts <= stratum.max_events)]
        events = rng.choice(members, requests)
        # Scaled so that 95% of a user's requests are at or below latency_ms(events).
        latencies = latency_ms(events) * np.exp(rng.normal(-Z95 * sigma, sigma, requests))
        if slow is not None and stratum.index == slow:
            latencies[: requests // 10] = rng.uniform(400.0, 600.0, requests // 10)
        results.append(StratumResult(stratum, requests, histogram_of(latencies), float(events.mean())))
    return results


def test_breach_from_the_fitted_curve_is_within_ten_percent_of_the_truth():
    counts = heavy_tailed_population()
    strata = build_strata(counts)
    results = measured_strata(counts, strata, lambda events: 0.5 + 0.02 * events)
    report = outliers_report(results, threshold_ms=THRESHOLD_MS, event_counts_population=counts, concurrency=8)
    breach = report["breach_event_count"]
    assert abs(breach - TRUE_BREACH) <= 0.1 * TRUE_BREACH
    assert report["users_above"] == int(np.sum(counts >= breach))
    assert report["population_share_above"] == pytest.approx(report["users_above"] / counts.size, abs=1e-6)
    assert report["action"].startswith(f"cache or precompute features for users with {breach:,} events or more")
    assert report["fit"]["method"] == f"mixture fit of p50 and p95 over {len(strata)} strata"
    json.dumps(report, allow_nan=False)


def test_a_population_that_never_breaches_gives_none_and_says_so():
    counts = heavy_tailed_population()
    strata = build_strata(counts)
    results = measured_strata(counts, strata, lambda events: 0.5 + 0.001 * events)
    report = outliers_report(results, threshold_ms=THRESHOLD_MS, event_counts_population=counts, concurrency=8)
    assert report["breach_event_count"] is None
    assert (report["users_above"], report["population_share_above"]) == (0, 0.0)
    assert report["action"].startswith("no user breaches p95 200 ms: the heaviest user")


def test_one_noisy_stratum_over_the_threshold_is_not_a_breach_when_the_curve_is_not():
    counts = heavy_tailed_population()
    strata = build_strata(counts)
    noisy = next(s.index for s in strata if s.name == "50-99")
    results = measured_strata(counts, strata, lambda events: 0.5 + 0.001 * events, slow=noisy)
    assert results[noisy].latency.percentile_ms(95) > THRESHOLD_MS
    breach = breach_event_count(results, threshold_ms=THRESHOLD_MS, event_counts_population=counts)
    assert breach.event_count is None
    assert breach.curve.predict(strata[noisy].max_events) < THRESHOLD_MS


def test_with_one_stratum_of_data_the_strata_decide_and_the_method_says_so():
    counts = heavy_tailed_population()
    strata = build_strata(counts)
    results = measured_strata(counts, strata, lambda events: 0.5 + 0.02 * events, requests=10)
    results[-1] = measured_strata(counts, strata[-1:], lambda events: 0.5 + 0.02 * events)[0]
    breach = breach_event_count(results, threshold_ms=THRESHOLD_MS, event_counts_population=counts)
    assert breach.curve is None and breach.method.startswith("strata: 1 stratum with 20+ requests")
    assert breach.event_count == strata[-1].min_events


def test_curve_inverse_is_zero_above_at_the_start_and_none_when_never_reached():
    line = LatencyCurve(a=0.5, b=0.02, c=1.0, method="exact")
    assert line.inverse(THRESHOLD_MS) == pytest.approx(9_975.0)
    assert line.inverse(THRESHOLD_MS, up_to=5_000) is None
    assert LatencyCurve(a=250.0, b=0.02, c=1.0, method="exact").inverse(THRESHOLD_MS) == 0.0
    assert LatencyCurve(a=0.5, b=0.0, c=1.0, method="flat").inverse(THRESHOLD_MS) is None


def test_strata_table_has_a_row_per_stratum_and_names_the_threshold():
    counts = heavy_tailed_population()
    strata = build_strata(counts)
    results = measured_strata(counts, strata, lambda events: 0.5 + 0.02 * events, requests=200)
    report = outliers_report(results, threshold_ms=THRESHOLD_MS, event_counts_population=counts, concurrency=4)
    table = strata_table(report)
    assert list(table["Stratum"]) == [s.name for s in strata]
    assert "Share over 200 ms" in table.columns
    assert table["Users"].sum() == counts.size


def test_too_few_requests_are_not_judged_rather_than_nobody_breaching():
    from mlstress_tui.analysis.outliers import outliers_report
    from mlstress_tui.load.user_strata import build_strata
    from mlstress_tui.results.histogram import LatencyHistogram

    population = np.arange(1, 2001)
    results = []
    for stratum in build_strata(population):
        latency = LatencyHistogram()
        latency.record_many(np.full(3, 900_000_000))  # 900 ms, far past the budget, but 3 requests only
        results.append(StratumResult(stratum, 3, latency, float(stratum.min_events)))
    report = outliers_report(results, threshold_ms=200, event_counts_population=population, concurrency=1)
    assert report["judged"] is False and report["breach_event_count"] is None
    assert "too few requests" in report["action"] and "no user breaches" not in report["action"]


def failing_above(results, min_events, *, kind="RuntimeError", latency_ms=0.006):
    """The strata from `min_events` up fail every request fast, as a target that raises at once for heavy users."""
    failed = []
    for result in results:
        if result.stratum.min_events < min_events:
            failed.append(result)
            continue
        latency = histogram_of(np.full(result.requests, latency_ms))
        failed.append(StratumResult(result.stratum, result.requests, latency, result.mean_events,
                                    {kind: result.requests}))
    return failed


def test_failing_heavy_users_are_the_breach_and_the_action_names_them():
    counts = heavy_tailed_population()
    strata = build_strata(counts)
    first = next(s for s in strata if s.min_events >= 100)
    results = failing_above(measured_strata(counts, strata, lambda events: 0.5 + 0.001 * events, requests=200),
                            first.min_events)
    report = outliers_report(results, threshold_ms=THRESHOLD_MS, event_counts_population=counts, concurrency=1)
    assert report["breach_event_count"] == first.min_events
    assert report["users_above"] == int(np.sum(counts >= first.min_events))
    assert report["failing"]["text"] == f"users with {first.min_events:,}+ events fail: RuntimeError 100%"
    assert report["action"].startswith(f"users with {first.min_events:,}+ events fail: RuntimeError 100%")
    rows = {row["name"]: row for row in report["strata"]}
    heaviest = report["strata"][-1]
    # The failures' own 0.006 ms is not shown as the stratum's latency: nothing answered, so no percentile.
    assert (heaviest["errors"], heaviest["error_rate"], heaviest["p95_ms"]) == (200, 1.0, None)
    assert heaviest["errors_by_kind"] == {"RuntimeError": 200} and heaviest["share_above_threshold"] == 1.0
    assert rows[strata[0].name]["errors"] == 0 and rows[strata[0].name]["share_above_threshold"] == 0.0
    assert heavy_breach_rate(report) == 1.0
    [result] = evaluate([Criterion("heavy", "breach_rate", "<", 0.05)], {"heavy": {"breach_rate": heavy_breach_rate(report)}})
    assert result.passed is False
    table = strata_table(report)
    assert table["Errors"].iloc[-1] == 200 and table["Error rate"].iloc[-1] == 1.0
    json.dumps(report, allow_nan=False)


def test_a_few_fast_failures_count_past_the_budget_without_failing_the_stratum():
    stratum = Stratum(0, "1-9", 1, 9, 100)
    answered = np.full(98, 5.0)
    latency = histogram_of(np.concatenate([answered, [0.01, 0.01]]))
    result = StratumResult(stratum, 100, latency, 5.0, {"ValueError": 2})
    assert result.errors == 2 and not result.fails
    assert result.share_past_ms(200.0) == pytest.approx(0.02)
    assert result.answered.count == 98 and result.answered.percentile_ms(50) == pytest.approx(5.0, rel=0.01)
    # Ranked past every answer: the p99 of 100 requests with 2 failures is a failure.
    assert result.percentile_ms(95) == pytest.approx(5.0, rel=0.01) and result.percentile_ms(99) == float("inf")


def test_timeouts_are_the_slowest_recorded_and_the_failed_latencies_when_sent_are_exact():
    stratum = Stratum(0, "1-9", 1, 9, 100)
    values = np.concatenate([np.full(90, 3.0), np.full(10, 5000.0)])
    timeouts = StratumResult(stratum, 100, histogram_of(values), 5.0, {"timeout": 10})
    assert timeouts.answered.max_ns < 4e6 and timeouts.fails
    # A failure that took 2 s (a slow 5xx): with the failed requests' own latencies the split is exact.
    slow_5xx = np.concatenate([np.full(97, 3.0), np.full(3, 2000.0)])
    exact = StratumResult(stratum, 100, histogram_of(slow_5xx), 5.0, {"http_5xx": 3},
                          failed_latency=histogram_of(np.full(3, 2000.0)))
    assert exact.answered.count == 97 and exact.answered.max_ns < 4e6
    assert exact.share_past_ms(200.0) == pytest.approx(0.03)
def cached_latency(cached_from: int, cache_ms: float):
    """The database's 0.5 ms + 0.02 ms/event below `cached_from`, a flat `cache_ms` from there on."""
    return lambda events: np.where(events >= cached_from, cache_ms, 0.5 + 0.02 * events)


def cached_target(cached_from: int) -> dict:
    return {"kind": "sqlite", "cache": {"redis": "redis 127.0.0.1:6379/13", "at_least_events": cached_from,
                                        "fallback": False}}


def test_behind_a_cache_from_below_the_breach_no_user_breaches_and_the_action_says_why():
    counts = heavy_tailed_population()
    strata = build_strata(counts)
    cached_from = int(TRUE_BREACH * 0.8)
    results = measured_strata(counts, strata, cached_latency(cached_from, 0.3))
    # Without knowing of the cache the one curve is fitted through a mix it cannot describe.
    assert outliers_report(results, threshold_ms=THRESHOLD_MS, event_counts_population=counts,
                           concurrency=8)["fit"].get("cached_from_events") is None
    report = outliers_report(results, threshold_ms=THRESHOLD_MS, event_counts_population=counts, concurrency=8,
                             target=cached_target(cached_from))
    assert report["breach_event_count"] is None and report["users_above"] == 0
    assert report["fit"]["cached_from_events"] == cached_from
    assert report["fit"]["cache_p95_ms"] == pytest.approx(0.3, rel=0.2)
    assert report["action"].startswith(f"no user breaches p95 200 ms with the cache: users with {cached_from:,}+")


def test_behind_a_cache_that_starts_too_high_the_breach_is_the_database_curve_s_and_counts_only_uncached_users():
    counts = heavy_tailed_population()
    strata = build_strata(counts)
    cached_from = TRUE_BREACH * 3
    results = measured_strata(counts, strata, cached_latency(cached_from, 0.3))
    report = outliers_report(results, threshold_ms=THRESHOLD_MS, event_counts_population=counts, concurrency=8,
                             target=cached_target(cached_from))
    breach = report["breach_event_count"]
    assert abs(breach - TRUE_BREACH) <= 0.1 * TRUE_BREACH
    assert report["users_above"] == int(np.sum((counts >= breach) & (counts < cached_from))) > 0
    assert report["action"].startswith(f"the cache starts too high: lower --cache-above to {breach:,} events")


def test_a_cache_slower_than_the_budget_is_the_breach_at_its_threshold():
    counts = heavy_tailed_population()
    strata = build_strata(counts)
    cached_from = int(TRUE_BREACH * 0.5)
    results = measured_strata(counts, strata, cached_latency(cached_from, 400.0))
    report = outliers_report(results, threshold_ms=THRESHOLD_MS, event_counts_population=counts, concurrency=8,
                             target=cached_target(cached_from))
    assert report["breach_event_count"] == cached_from
    assert report["action"].startswith("the cache itself breaches p95 200 ms")
