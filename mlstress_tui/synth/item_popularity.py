"""Skewed item popularity: a Zipf law over the catalogue, with popular items spread over the id range."""

from __future__ import annotations

import numpy as np


class ItemPopularity:
    """Draws item numbers (1-based) so that a few items get most events.

    Sampling uses Walker's alias method: two uniforms and two table look-ups per
    draw, instead of a binary search through the catalogue's cumulative weights.
    """

    def __init__(self, rng: np.random.Generator, item_count: int, exponent: float) -> None:
        weights = 1.0 / np.arange(1, item_count + 1) ** exponent
        self.shares = weights / weights.sum()
        # Rank 1 is not ITEM000001: popularity is unrelated to catalogue order.
        item_of_rank = (rng.permutation(item_count) + 1).astype(np.int32)
        keep, alias = _alias_table(self.shares)
        self._keep = keep
        self._own_item = item_of_rank
        self._alias_item = item_of_rank[alias]
        self.item_count = item_count
        self.exponent = exponent

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        scaled = rng.random(size) * self.item_count
        column = scaled.astype(np.int64)
        # The fractional part is a second uniform, independent of the column.
        own = scaled - column < self._keep[column]
        return np.where(own, self._own_item[column], self._alias_item[column])


def _alias_table(shares: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vose's alias table: column k keeps its own outcome with probability keep[k], else gives alias[k]."""
    size = shares.size
    scaled = shares * size
    keep = np.ones(size)
    alias = np.arange(size)
    small = [k for k in range(size) if scaled[k] < 1.0]
    large = [k for k in range(size) if scaled[k] >= 1.0]
    while small and large:
        low, high = small.pop(), large[-1]
        keep[low] = scaled[low]
        alias[low] = high
        scaled[high] -= 1.0 - scaled[low]
        if scaled[high] < 1.0:
            small.append(large.pop())
    return keep, alias
