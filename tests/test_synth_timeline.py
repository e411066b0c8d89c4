"""Event times: each user's events inside their active span, the whole stream in time order."""

from __future__ import annotations

import numpy as np

from mlstress_tui.synth.item_popularity import ItemPopularity
from mlstress_tui.synth.mixes import END_SECOND, SECONDS_PER_DAY
from mlstress_tui.synth.text_columns import date_strings, prefixed_ids, timestamp_strings
from mlstress_tui.synth.timeline import time_ordered_events


def test_windows_keep_counts_spans_and_order():
    rng = np.random.default_rng(5)
    signup_days = np.sort(rng.integers(0, 1096, 3_000))
    counts = rng.integers(0, 200, 3_000)
    users, seconds = [], []
    for window_users, window_seconds in time_ordered_events(rng, signup_days, counts, window_events=20_000):
        users.append(window_users)
        seconds.append(window_seconds)
    users, seconds = np.concatenate(users), np.concatenate(seconds)
    assert len(users) > 5 * 20_000 / 2  # several windows
    assert np.array_equal(np.bincount(users, minlength=counts.size), counts)
    assert np.all(np.diff(seconds) >= 0)
    assert np.all(seconds >= signup_days[users] * SECONDS_PER_DAY)
    assert np.all(seconds < END_SECOND)


def test_events_spread_uniformly_over_each_users_span():
    """A user who signed up at the start has as many events in the first half of the span as in the second."""
    rng = np.random.default_rng(6)
    signup_days = np.zeros(200, dtype=np.int64)
    counts = np.full(200, 500)
    seconds = np.concatenate([s for _, s in time_ordered_events(rng, signup_days, counts, window_events=10_000)])
    first_half = np.count_nonzero(seconds < END_SECOND / 2) / seconds.size
    assert abs(first_half - 0.5) < 0.01


def test_text_columns_format_ids_dates_and_timestamps():
    assert prefixed_ids("USR", np.array([1, 12_345_678]), 8) == ["USR00000001", "USR12345678"]
    assert prefixed_ids("EVT", np.array([7]), 9) == ["EVT000000007"]
    assert date_strings(np.array([0, 365, 1155])) == ["2023-01-01", "2024-01-01", "2026-03-01"]
    seconds = np.array([0, 86_399, 366 * 86_400 + 13 * 3600 + 5 * 60 + 9])
    assert timestamp_strings(seconds) == ["2023-01-01 00:00:00", "2023-01-01 23:59:59", "2024-01-02 13:05:09"]


def test_item_popularity_is_zipf_like_and_in_range():
    popularity = ItemPopularity(np.random.default_rng(1), 50_000, 1.0)
    items = popularity.draw(np.random.default_rng(2), 500_000)
    assert items.min() >= 1 and items.max() <= 50_000
    per_item = np.sort(np.bincount(items, minlength=50_001)[1:])[::-1]
    assert per_item[:500].sum() / items.size > 0.5  # top 1% of items, most events
    assert abs(per_item[0] / items.size - popularity.shares[0]) < 0.1 * popularity.shares[0]
