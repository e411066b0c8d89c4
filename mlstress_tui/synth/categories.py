"""Vectorised draws from a fixed categorical mix."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def draw_category(rng: np.random.Generator, shares: Sequence[float], size: int, exact: bool = False) -> np.ndarray:
    """Indices into `shares`, each drawn with its share's probability.

    `exact` deals each category its share of the `size` rows (the fractions
    rounded at random) and shuffles them: a small twin's mix is then its
    profile's, not the profile's plus sampling noise.
    """
    if exact:
        return rng.permutation(np.repeat(np.arange(len(shares)), exact_counts(rng, shares, size)))
    cumulative = np.cumsum(shares, dtype=np.float64)
    cumulative /= cumulative[-1]
    picks = np.searchsorted(cumulative, rng.random(size), side="right")
    return np.minimum(picks, len(shares) - 1)


def exact_counts(rng: np.random.Generator, shares: Sequence[float], size: int) -> np.ndarray:
    """How many of `size` rows each share gets: the whole parts, then the remainders given out at random by weight."""
    wanted = np.asarray(shares, dtype=np.float64) / np.sum(shares) * size
    counts = np.floor(wanted).astype(np.int64)
    left = size - int(counts.sum())
    if left:
        remainders = wanted - counts
        counts[rng.choice(len(counts), size=left, replace=False, p=remainders / remainders.sum())] += 1
    return counts


def exact_mask(rng: np.random.Generator, share: float, size: int) -> np.ndarray:
    """A mask with round(share x size) rows set (rounded at random), placed at random."""
    chosen = int(np.floor(share * size + rng.random()))
    mask = np.zeros(size, dtype=bool)
    mask[rng.choice(size, size=min(chosen, size), replace=False)] = True
    return mask
