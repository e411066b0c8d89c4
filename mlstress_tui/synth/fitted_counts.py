"""Events per user fitted to a profile's quantiles: a twin's heavy tail is production's, not a fixed power law.

Between the profiled quantiles the count is interpolated linearly in
(-log(1 - u), log(count)): a Pareto piece between each pair of knots, which is
what a heavy tail looks like locally. Above the last knot (p99.9) a truncated
power law runs to production's maximum; its index is fitted (scipy's brentq)
so that the total number of events comes out right. The heaviest user gets
production's maximum whenever the twin's events leave room for it: the heaviest
users are the point of a load test, and a 10x smaller twin should still hold one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import brentq

from mlstress_tui.synth.event_counts import EventCounts, settle

# Past this index the tail's mean no longer moves measurably (it sits at either bound).
TAIL_INDEX_BOUND = 12.0
# Single events are moved between users to hit the total exactly only when the
# fit left this little to move; a bigger gap is the fit's honest error, reported
# in the fit table instead of smeared over the body's quantiles.
SETTLE_SHARE = 0.02


def draw_fitted_counts(
    rng: np.random.Generator,
    users: int,
    knots: Sequence[tuple[float, float]],
    zero_share: float,
    total: int,
    cap: int,
) -> EventCounts:
    """Counts whose quantiles follow `knots` ((level, events) pairs, level in (0, 1)) and that sum to about `total`.

    `knots` covers users with events and without (a level below `zero_share` has 0 events);
    the first knot above `zero_share` should be the smallest non-zero count.
    """
    counts = np.zeros(users, dtype=np.int64)
    order = rng.permutation(users)
    zero_n = min(users, round(zero_share * users))
    active = order[zero_n:]
    # Between one event for everyone with events and the cap for all of them: any other total cannot be drawn.
    total = int(min(max(total, active.size), active.size * cap))
    if active.size == 0:
        return EventCounts(counts, zero_n, np.array([], dtype=np.int64), "no user has events")
    levels, values = _usable_knots(knots, zero_share, cap)
    # Stratified levels (one per user, in random order) keep the sample's quantiles on the knots at any size.
    conditional = (rng.permutation(active.size) + rng.random(active.size)) / active.size
    level = zero_share + conditional * (1.0 - zero_share)
    top = levels[-1]
    in_tail = level > top
    drawn = np.empty(active.size)
    drawn[~in_tail] = _interpolate(level[~in_tail], levels, values)
    heaviest = np.array([], dtype=np.int64)
    tail_index = None
    if in_tail.any():
        tail = np.flatnonzero(in_tail)
        heaviest_at = tail[np.argmax(level[tail])]
        rest = tail[tail != heaviest_at]
        # The rest of the tail holds at least the last knot each; the heaviest user gets production's
        # maximum when the total leaves room for it (a small twin of a huge maximum cannot hold it).
        budget = total - drawn[~in_tail].sum()
        ceiling = float(min(cap, max(values[-1], budget - rest.size * values[-1])))
        drawn[heaviest_at] = ceiling
        if rest.size:
            within = (level[rest] - top) / (1.0 - top)
            tail_index = _fit_tail_index(within, values[-1], ceiling, (budget - ceiling) / rest.size)
            drawn[rest] = _truncated_power(within, values[-1], ceiling, tail_index)
        heaviest = active[[heaviest_at]]
    # Stochastic rounding keeps the mean; a knot's own integer value stays exact.
    rounded = np.minimum(np.floor(drawn + rng.random(active.size)).astype(np.int64), cap)
    rounded = np.maximum(rounded, 1)
    gap = total - int(rounded.sum())
    if gap and abs(gap) <= SETTLE_SHARE * total:
        settle(rng, rounded, int(rounded.sum()) + gap, cap)
    counts[active] = rounded
    law = "profile quantiles, log-log interpolated"
    if tail_index is not None:
        law += f"; above p{100 * top:g} a truncated power law of index {tail_index:.3g}"
    if heaviest.size:
        law += f"; the heaviest user {int(drawn.max()):,} events (the profile's {cap:,})"
    return EventCounts(counts=counts, zero_event_users=zero_n, extreme_users=heaviest, law=law)


def _usable_knots(knots: Sequence[tuple[float, float]], zero_share: float, cap: int) -> tuple[np.ndarray, np.ndarray]:
    """Knots above the zero-event share, non-decreasing, at least one event and at most the cap."""
    kept = sorted((level, value) for level, value in knots if zero_share < level < 1.0)
    if not kept:
        kept = [(min(0.999, zero_share + 0.5 * (1 - zero_share)), max(1.0, cap / 2))]
    levels = np.array([zero_share] + [level for level, _ in kept])
    values = np.array([kept[0][1]] + [value for _, value in kept], dtype=float)
    values = np.clip(np.maximum.accumulate(values), 1.0, cap)
    return levels, values


def _interpolate(level: np.ndarray, levels: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.exp(np.interp(-np.log1p(-level), -np.log1p(-levels), np.log(values)))


def _truncated_power(within: np.ndarray, low: float, high: float, index: float) -> np.ndarray:
    """Quantiles `within` (0..1) of a power law of this index truncated to [low, high]; index < 0 leans to high."""
    ratio = high / low
    if abs(index) < 1e-9:
        return low * ratio**within
    return low * (1.0 - within * (1.0 - ratio ** (-index))) ** (-1.0 / index)


def _fit_tail_index(within: np.ndarray, low: float, high: float, wanted_mean: float) -> float:
    """The index whose tail has `wanted_mean` over these quantiles, or the nearest bound when none has."""
    if high <= low:
        return TAIL_INDEX_BOUND

    def excess(index: float) -> float:
        return float(_truncated_power(within, low, high, index).mean()) - wanted_mean

    if excess(TAIL_INDEX_BOUND) >= 0:
        return TAIL_INDEX_BOUND
    if excess(-TAIL_INDEX_BOUND) <= 0:
        return -TAIL_INDEX_BOUND
    return float(brentq(excess, -TAIL_INDEX_BOUND, TAIL_INDEX_BOUND, xtol=1e-6))
