"""Vectorised draws from a fixed categorical mix."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def draw_category(rng: np.random.Generator, shares: Sequence[float], size: int) -> np.ndarray:
    """Indices into `shares`, each drawn with its share's probability."""
    cumulative = np.cumsum(shares, dtype=np.float64)
    cumulative /= cumulative[-1]
    picks = np.searchsorted(cumulative, rng.random(size), side="right")
    return np.minimum(picks, len(shares) - 1)
