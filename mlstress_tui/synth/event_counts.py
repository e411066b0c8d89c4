"""Events per user: a power law whose realized mean is the one asked for, plus deliberate outliers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Tail index of the power law, P(count > x) ~ x**-2: median user about 0.4x
# the mean, the 99.9th percentile about 30x.
TAIL_INDEX = 2.0
ZERO_EVENT_SHARE = 0.03
# Extreme users share at most this much of all events, so a small database is
# not dominated by them.
EXTREME_EVENT_SHARE = 0.03
USERS_PER_EXTREME_USER = 25_000
# Extreme users are drawn between these fractions of their ceiling (the cap),
# not piled up on it.
EXTREME_LOW, EXTREME_HIGH = 0.6, 1.0
MIN_USERS_FOR_EDGE_CASES = 100


@dataclass(frozen=True)
class EventCounts:
    """Per-user event counts in user order, and which users were made outliers on purpose."""

    counts: np.ndarray  # int64, one per user
    zero_event_users: int
    extreme_users: np.ndarray  # user indices
    law: str  # how the counts were drawn, in words, for mlstress_meta


def draw_event_counts(
    rng: np.random.Generator, users: int, mean: float, cap: int, edge_cases: bool, tail_index: float = TAIL_INDEX
) -> EventCounts:
    """Counts summing to exactly round(users * mean), each at most `cap`."""
    total = round(users * mean)
    counts = np.zeros(users, dtype=np.int64)
    order = rng.permutation(users)
    zero_n = extreme_n = 0
    if edge_cases and users >= MIN_USERS_FOR_EDGE_CASES:
        zero_n = round(ZERO_EVENT_SHARE * users)
        extreme_n = max(1, users // USERS_PER_EXTREME_USER)
    extreme = np.sort(order[zero_n : zero_n + extreme_n])
    if extreme_n:
        ceiling = min(cap, EXTREME_EVENT_SHARE * total / extreme_n)
        counts[extreme] = np.round(ceiling * rng.uniform(EXTREME_LOW, EXTREME_HIGH, extreme_n))
    regular = order[zero_n + extreme_n :]
    remaining_total = total - int(counts.sum())
    # Every regular user has 1 + X events with X a truncated Lomax (Pareto II).
    # Stratified quantiles instead of independent draws keep the sample's mean
    # stable, so fitting the scale gives the asked-for mean at any population size.
    # The arithmetic runs in place: a few float arrays of one value per user at most, whatever the population.
    quantiles = rng.permutation(regular.size).astype(np.float64)
    quantiles += rng.random(regular.size)
    quantiles /= regular.size
    excess_mean = remaining_total / regular.size - 1.0
    excess = np.empty_like(quantiles)
    scale = _fit_scale(quantiles, excess_mean, cap - 1, tail_index, excess)
    _truncated_lomax(quantiles, scale, cap - 1, tail_index, excess)
    del quantiles
    # Stochastic rounding keeps the mean; the last few units are settled exactly.
    rounded = rng.random(regular.size)
    rounded += excess
    del excess
    regular_counts = np.floor(rounded, out=rounded).astype(np.int64)
    del rounded
    regular_counts += 1
    settle(rng, regular_counts, remaining_total, cap)
    counts[regular] = regular_counts
    law = f"1 + truncated Lomax, tail index {tail_index:g}, scale {scale:.4g}"
    return EventCounts(counts=counts, zero_event_users=zero_n, extreme_users=extreme, law=law)


def _truncated_lomax(quantiles: np.ndarray, scale: float, upper: float, index: float,
                     out: np.ndarray | None = None) -> np.ndarray:
    """The power law's values at these quantiles, computed into `out` (a new array when None)."""
    kept = 1.0 - (1.0 + upper / scale) ** -index
    values = np.multiply(quantiles, kept, out=out)
    np.subtract(1.0, values, out=values)
    values **= -1.0 / index
    values -= 1.0
    values *= scale
    return values


def _fit_scale(quantiles: np.ndarray, target_mean: float, upper: float, index: float,
               scratch: np.ndarray | None = None) -> float:
    """The scale whose truncated power law has `target_mean` over these quantiles (bisection in log space)."""
    if target_mean <= 0:
        return 1e-12
    scratch = np.empty_like(quantiles) if scratch is None else scratch
    low, high = np.log(1e-9), np.log(1e12)
    if _truncated_lomax(quantiles, float(np.exp(high)), upper, index, scratch).mean() < target_mean:
        raise ValueError("the cap is too close to the mean for a heavy tail")
    for _ in range(60):
        middle = (low + high) / 2
        if _truncated_lomax(quantiles, float(np.exp(middle)), upper, index, scratch).mean() < target_mean:
            low = middle
        else:
            high = middle
    return float(np.exp((low + high) / 2))


def settle(rng: np.random.Generator, counts: np.ndarray, target: int, cap: int) -> None:
    """Add or remove single events at random users until `counts` sums to `target`, or no user has room left."""
    gap = target - int(counts.sum())
    while gap:
        room = counts < cap if gap > 0 else counts > 1
        candidates = np.flatnonzero(room)
        if candidates.size == 0:
            return  # every user at the cap (or at one event): the rest of the gap cannot be placed
        chosen = rng.choice(candidates, size=min(abs(gap), candidates.size), replace=False)
        counts[chosen] += 1 if gap > 0 else -1
        gap = target - int(counts.sum())
