"""Event times in global time order, produced window by window without sorting the whole table.

Each user's events are independent uniform instants between signup and the end
of the data. Walking time windows in order, the number of a user's remaining
events that land in the next window is binomial, with p the window's share of
the user's remaining active span; drawing that count, then uniform instants
inside the window, gives exactly the same joint distribution as drawing all
instants at once. Only one window is ever sorted and held in memory.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from mlstress_tui.synth.mixes import END_DAY, SECONDS_PER_DAY
from mlstress_tui.synth.params import MAX_USERS

_USER_BITS = int(MAX_USERS).bit_length()
_USER_MASK = (1 << _USER_BITS) - 1
# Users whose binomial draws are made at once: bounds the per-window working memory whatever the population.
USER_CHUNK = 1 << 16
# Keys must fit in int64 with the seconds above the user index: about 2,000 years of seconds.
MAX_END_DAY = ((1 << (63 - _USER_BITS)) - 1) // SECONDS_PER_DAY


def window_bounds(start_days: np.ndarray, counts: np.ndarray, window_events: int, end_day: int = END_DAY) -> list[int]:
    """Day boundaries [0, ..., end_day] cutting the timeline into windows of about `window_events` expected events."""
    # Expected events on each day: the summed rates of everyone active by then.
    per_day = np.cumsum(_starting_rates(start_days, counts, end_day))
    cumulative = np.cumsum(per_day)
    total = cumulative[-1] if cumulative.size else 0.0
    windows = max(1, int(np.ceil(total / window_events)))
    cuts = np.searchsorted(cumulative, np.arange(1, windows) * total / windows) + 1
    inner = np.unique(cuts[(cuts > 0) & (cuts < end_day)]).tolist()
    return [0, *inner, end_day]


def _starting_rates(start_days: np.ndarray, counts: np.ndarray, end_day: int) -> np.ndarray:
    """Per day, the summed daily event rates of the users whose span starts then, a chunk of users at a time.

    `start_days` is ascending, so a day's users are contiguous: the one day a chunk boundary splits carries its
    running sum into the next chunk, and every sum is added in user order, as one bincount over all users adds it.
    """
    rates = np.zeros(end_day)
    for first in range(0, start_days.size, USER_CHUNK):
        days = start_days[first : first + USER_CHUNK]
        weights = counts[first : first + USER_CHUNK] / (end_day - days)
        head = int(np.searchsorted(days, days[0], side="right"))
        rates[days[0]] = np.cumsum(np.concatenate(([rates[days[0]]], weights[:head])))[-1]
        rates += np.bincount(days[head:], weights=weights[head:], minlength=end_day)[:end_day]
    return rates


def time_ordered_events(
    rng: np.random.Generator,
    signup_days: np.ndarray,
    counts: np.ndarray,
    window_events: int,
    end_day: int = END_DAY,
    first_day: int = 0,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(user index, seconds since the epoch) of every event, in time order, one window at a time.

    A user's events fall between max(signup, `first_day`) and `end_day`.
    `signup_days` must be ascending (user ids follow signup order), so the users
    active in a window are a prefix of the population; every signup must be before `end_day`.
    """
    if end_day > MAX_END_DAY:
        raise ValueError(f"a timeline of {end_day:,} days is longer than the {MAX_END_DAY:,} event keys can hold")
    # Held for the whole pass, per user: 4 bytes of start day, 4 of events still to place.
    start_days = np.maximum(signup_days, first_day).astype(np.int32)
    end_second = end_day * SECONDS_PER_DAY
    remaining = counts.astype(np.int32)
    bounds = window_bounds(start_days, counts, window_events, end_day)
    for window, (first_day, end_day) in enumerate(zip(bounds, bounds[1:])):
        window_start, window_end = first_day * SECONDS_PER_DAY, end_day * SECONDS_PER_DAY
        signed_up = int(np.searchsorted(start_days, end_day, side="left"))
        last = window == len(bounds) - 2
        placed = [_place(rng, start_days, remaining, at, min(at + USER_CHUNK, signed_up), window_start, window_end,
                         end_second, last) for at in range(0, signed_up, USER_CHUNK)]
        if not placed:
            continue
        users, here, from_second = (np.concatenate(parts) for parts in zip(*placed))
        user_of_event = np.repeat(users, here)
        event_from = np.repeat(from_second, here)
        spread = rng.random(user_of_event.size) * (window_end - event_from)
        seconds = np.minimum(event_from + spread.astype(np.int64), window_end - 1)
        # One sort of (second, user) packed into an integer is much faster than
        # a stable argsort, and as deterministic: equal keys are equal events.
        keys = (seconds << _USER_BITS) | user_of_event
        keys.sort()
        yield keys & _USER_MASK, keys >> _USER_BITS


def _place(
    rng: np.random.Generator,
    start_days: np.ndarray,
    remaining: np.ndarray,
    first: int,
    end: int,
    window_start: int,
    window_end: int,
    end_second: int,
    last: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """How many of their remaining events users first..end-1 get in this window: (users, events, first second).

    Only users who get an event are returned, so what a window holds is bounded by its events, not by the
    users signed up; the binomials are drawn in user order, chunk after chunk, as one call over all would.
    """
    users = np.flatnonzero(remaining[first:end]) + first
    if users.size == 0:
        return users, users, users
    from_second = np.maximum(start_days[users].astype(np.int64) * SECONDS_PER_DAY, window_start)
    if last:
        here = remaining[users].astype(np.int64)
    else:
        share = (window_end - from_second) / (end_second - from_second)
        here = rng.binomial(remaining[users], share)
    remaining[users] -= here.astype(np.int32)
    got = here > 0
    return users[got], here[got], from_second[got]
