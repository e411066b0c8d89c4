"""Events per user fitted to a profile's quantiles: a twin's heavy tail is production's, not a fixed power law.

Between the profiled quantiles the count is interpolated linearly in
(-log(1 - u), log(count)): a Pareto piece between each pair of knots, which is
what a heavy tail looks like locally. Above the last knot (p99.9) a truncated
power law runs to production's maximum; its index is fitted (scipy's brentq)
so that the total number of events comes out right.

The heaviest user (the highest level drawn) gets production's maximum whenever
the other users give up at most MAX_ROOM_SHARE of their events to make room for
it: the heaviest users are the point of a load test, and a 10x smaller twin
should still hold one. Everyone else is then scaled to the events left, so the
total is the profile's at every scale and for every seed; in a twin too small to
hold the maximum that way, the heaviest user holds what the others leave.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import brentq

from mlstress_tui.synth.event_counts import EventCounts, settle

# Past this index the tail's mean no longer moves measurably (it sits at either bound).
TAIL_INDEX_BOUND = 12.0
# The most the other users' events shrink to make room for production's heaviest user: their quantiles stay
# well inside the fit table's 20%.
MAX_ROOM_SHARE = 0.10


def draw_fitted_counts(
    rng: np.random.Generator,
    users: int,
    knots: Sequence[tuple[float, float]],
    zero_share: float,
    total: int,
    cap: int,
) -> EventCounts:
    """Counts whose quantiles follow `knots` ((level, events) pairs, level in (0, 1)) and that sum to `total`.

    `knots` covers users with events and without (a level below `zero_share` has 0 events);
    the first knot above `zero_share` should be the smallest non-zero count. `cap` is production's maximum.
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
    heaviest_at = int(np.argmax(level))
    drawn = np.empty(active.size)
    drawn[~in_tail] = _interpolate(level[~in_tail], levels, values)
    drawn[heaviest_at] = 0.0
    tail_index = None
    rest = np.flatnonzero(in_tail)
    rest = rest[rest != heaviest_at]
    if rest.size:
        # The rest of the tail shares what the body and production's maximum leave, each at least the last knot.
        budget = total - drawn[~in_tail].sum() - cap
        within = (level[rest] - top) / (1.0 - top)
        tail_index = _fit_tail_index(within, values[-1], float(cap), budget / rest.size)
        drawn[rest] = _truncated_power(within, values[-1], float(cap), tail_index)
    others = float(drawn.sum())
    kept = others <= 0 or total - cap >= (1.0 - MAX_ROOM_SHARE) * others
    # Not kept, the heaviest user holds what the others leave, as the tail law would give it (and no less than
    # the next heaviest).
    heaviest = float(cap) if kept else float(min(cap, max(drawn.max(), total - others)))
    if others > 0:
        drawn *= max(total - heaviest, 0.0) / others
    # Stochastic rounding keeps the mean; the last few events are settled one at a time among the others.
    rounded = np.clip(np.floor(drawn + rng.random(active.size)).astype(np.int64), 1, cap)
    rounded[heaviest_at] = int(heaviest)
    rest_of_them = np.delete(np.arange(active.size), heaviest_at)
    others_rounded = rounded[rest_of_them]
    settle(rng, others_rounded, total - int(heaviest), cap)
    rounded[rest_of_them] = others_rounded
    counts[active] = rounded
    law = "profile quantiles, log-log interpolated"
    if tail_index is not None:
        law += f"; above p{100 * top:g} a truncated power law of index {tail_index:.3g}"
    law += (f"; the heaviest user {int(heaviest):,} events, " + ("production's maximum" if kept else
            f"not production's {cap:,}: the others would give up more than {MAX_ROOM_SHARE:.0%} of their events"))
    return EventCounts(counts=counts, zero_event_users=zero_n, extreme_users=active[[heaviest_at]], law=law)


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
