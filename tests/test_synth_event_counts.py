"""Events per user: heavy-tailed, the asked-for mean, a cap without a pile-up, deliberate outliers."""

from __future__ import annotations

import numpy as np
import pytest

from mlstress_tui.synth.event_counts import ZERO_EVENT_SHARE, draw_event_counts


def counts_for(users: int, mean: float = 45.0, cap: int = 45_000, edge_cases: bool = True, seed: int = 1):
    return draw_event_counts(np.random.default_rng(seed), users, mean, cap, edge_cases)


@pytest.mark.slow
@pytest.mark.parametrize("users", [2_000, 20_000, 200_000])
@pytest.mark.parametrize("mean", [1.0, 7.5, 45.0])
def test_realized_mean_is_the_one_asked_for(users, mean):
    counts = counts_for(users, mean, cap=round(1000 * mean)).counts
    assert abs(counts.mean() - mean) <= 0.03 * mean
    assert counts.sum() == round(users * mean)


def test_heaviest_tenth_of_a_percent_reach_ten_times_the_mean():
    counts = counts_for(200_000, edge_cases=False).counts
    heaviest = np.sort(counts)[-200:]
    assert heaviest.min() >= 10 * counts.mean()


def test_tail_is_a_power_law():
    """The Hill estimate of the tail index over the top 2% is near 2: a power law, not an exponential tail."""
    counts = np.sort(counts_for(200_000, edge_cases=False).counts)[::-1].astype(float)
    top = counts[:4_000]
    hill = 1.0 / np.mean(np.log(top[:-1] / top[-1]))
    assert 1.5 < hill < 2.6
    # Heavy skew: the median user is far below the mean.
    assert np.median(counts) < 0.6 * counts.mean()


def test_cap_is_respected_without_a_pile_up():
    mean, cap = 45.0, 450
    counts = counts_for(200_000, mean, cap=cap).counts
    assert counts.max() <= cap
    assert abs(counts.mean() - mean) <= 0.03 * mean
    at_cap = np.count_nonzero(counts == cap)
    just_below = np.count_nonzero((counts >= cap - 10) & (counts < cap)) / 10
    # The old recipe clipped 0.5% of users onto the cap; a truncated law leaves the cap no busier than its neighbours.
    assert at_cap / counts.size < 0.001
    assert at_cap <= 3 * just_below + 3


def test_edge_cases_inject_users_without_events_and_extreme_users():
    result = counts_for(100_000)
    counts = result.counts
    assert np.count_nonzero(counts == 0) == result.zero_event_users == round(ZERO_EVENT_SHARE * 100_000)
    assert result.extreme_users.size >= 1
    extreme = counts[result.extreme_users]
    regular_top = np.percentile(np.delete(counts, result.extreme_users), 99.9)
    assert extreme.min() > regular_top
    assert extreme.min() >= 100 * 45


def test_without_edge_cases_every_user_has_events():
    result = counts_for(20_000, edge_cases=False)
    assert result.counts.min() >= 1
    assert result.zero_event_users == 0
    assert result.extreme_users.size == 0


def test_same_seed_same_counts_different_seed_different_counts():
    assert np.array_equal(counts_for(5_000, seed=3).counts, counts_for(5_000, seed=3).counts)
    assert not np.array_equal(counts_for(5_000, seed=3).counts, counts_for(5_000, seed=4).counts)


@pytest.mark.parametrize("tail_index, low, high", [(1.4, 1.2, 1.7), (3.5, 2.7, 4.2)])
def test_tail_index_sets_how_heavy_the_tail_is(tail_index, low, high):
    """The Hill estimate over the top 0.2% follows --tail-index, and the mean stays the one asked for."""
    counts = draw_event_counts(np.random.default_rng(1), 200_000, 20.0, 20_000, False, tail_index).counts
    top = np.sort(counts)[::-1][:400].astype(float)
    hill = 1.0 / np.mean(np.log(top[:-1] / top[-1]))
    assert low < hill < high
    assert counts.sum() == 200_000 * 20
