"""Strata of users by event count: log-spaced bands for the bulk, then the top 1%, the top 0.1% and the heaviest users.

A stratified sampler gives every stratum the same number of requests, so the
few users whose history is long enough to break the latency budget are
measured as well as the millions who are not; these strata are the bands it
draws from.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

HEAVIEST_USERS = 10
# Nested tiers above the bulk: (name, how many users from the top it holds as a function of n).
def _top_share(divisor: int) -> Callable[[int], int]:
    """How many users from the top a tier of 1/divisor of n holds (at least one)."""
    return lambda n: -(-n // divisor)


_TOP_TIERS: tuple[tuple[str, Callable[[int], int]], ...] = (("top 1%", _top_share(100)), ("top 0.1%", _top_share(1000)))


@dataclass(frozen=True)
class Stratum:
    """A band of event counts, inclusive at both ends, and how many users of the population fall in it."""

    index: int
    name: str
    min_events: int
    max_events: int
    users: int


def build_strata(event_counts: np.ndarray, *, per_decade: int = 3) -> list[Stratum]:
    """Disjoint, ordered, non-empty strata covering every user once, from 0 events up to the heaviest users."""
    counts = np.asarray(event_counts, dtype=np.int64)
    if counts.size == 0:
        return []
    if counts.min() < 0:
        raise ValueError(f"event counts must be 0 or more, got {int(counts.min())}")
    top = _top_tier_edges(counts)
    has_zero = bool((counts == 0).any())
    positive = counts[counts > 0]
    body_start = int(positive.min()) if positive.size else 1
    body_end = top[0][0] if top else int(counts.max()) + 1
    edges: list[tuple[int, str | None]] = [(0, "0")] if has_zero else []
    edges += [(edge, None) for edge in _log_edges(body_start, body_end, per_decade)]
    # A top tier whose threshold is 0 would overlap the zero stratum; it starts at 1 instead and holds only its non-zero users.
    edges += [(max(edge, 1) if has_zero else edge, name) for edge, name in top]
    return _merge_into_strata(counts, edges)


def stratum_index(event_counts: np.ndarray, strata: list[Stratum]) -> np.ndarray:
    """The index of each count's stratum; counts outside every stratum go to the nearest end one."""
    if not strata:
        raise ValueError("no strata to place event counts in: build them from a non-empty population")
    lower_edges = np.fromiter((s.min_events for s in strata), dtype=np.int64, count=len(strata))
    found = np.searchsorted(lower_edges, np.asarray(event_counts, dtype=np.int64), side="right") - 1
    return np.clip(found, 0, len(strata) - 1)


def population_counts(event_counts: np.ndarray, strata: list[Stratum]) -> np.ndarray:
    """How many of these users fall in each stratum."""
    return np.bincount(stratum_index(event_counts, strata), minlength=len(strata))


def _top_tier_edges(counts: np.ndarray) -> list[tuple[int, str]]:
    """Lower edges of the top 1%, top 0.1% and heaviest-users tiers, skipping tiers no wider than the heaviest users."""
    n = counts.size
    heaviest = min(HEAVIEST_USERS, n)
    # A tier of k users from the top starts at the k-th largest count; ties pull more users in.
    tiers = [(name, size(n)) for name, size in _TOP_TIERS if size(n) > heaviest]
    tiers.append(("heaviest", heaviest))
    ranks = sorted({n - k for _, k in tiers})
    ordered = np.partition(counts, ranks)
    return [(int(ordered[n - k]), name) for name, k in tiers]


def _log_edges(start: int, stop: int, per_decade: int) -> list[int]:
    """`start` and the round numbers about `per_decade` to a decade above it, below `stop`."""
    if start >= stop:
        return []
    # Round to one significant digit at 3 a decade (1, 2, 5, 10, 20, 50) and two at 10 a decade (10, 13, 16, 20, 25).
    digits = 1 + int(math.log10(per_decade))
    steps = np.arange(0, math.ceil(math.log10(stop) * per_decade) + 1)
    raw = 10.0 ** (steps / per_decade)
    scale = 10.0 ** (np.floor(np.log10(raw)) - digits + 1)
    rounded = np.floor(raw / scale + 0.5) * scale
    inside = {int(edge) for edge in rounded if start < edge < stop}
    return [start, *sorted(inside)]


def _merge_into_strata(counts: np.ndarray, edges: list[tuple[int, str | None]]) -> list[Stratum]:
    """Strata from (lower edge, name) pairs: a tier whose range is empty gives way, and empty bands merge into the one below."""
    by_edge: dict[int, str | None] = {}
    for edge, name in edges:
        by_edge[edge] = name  # the later, narrower tier owns a shared edge: the broader one's range is empty
    lower = np.array(sorted(by_edge), dtype=np.int64)
    users = np.bincount(np.searchsorted(lower, counts, side="right") - 1, minlength=lower.size)
    kept = [i for i in range(lower.size) if users[i] > 0]
    top = int(counts.max())
    strata: list[Stratum] = []
    for position, i in enumerate(kept):
        low = int(lower[i])
        high = int(lower[kept[position + 1]]) - 1 if position + 1 < len(kept) else top
        strata.append(Stratum(len(strata), _name(by_edge[low], low, high, int(users[i])), low, high, int(users[i])))
    return strata


def _name(tier: str | None, low: int, high: int, users: int) -> str:
    if tier == "heaviest":
        return f"heaviest {users}"
    if tier is not None:
        return tier
    return f"{low}" if low == high else f"{low}-{high}"
