"""A user's p95 as a function of event count, fitted so each stratum's mix of users reproduces what it measured.

A stratum's latencies mix users whose event counts span a band (the heaviest
ten of a seeded 100k population run from about 5,600 to 32,000 events), so a
stratum's p95 is not the p95 of a user with its mean event count: fitting the
one against the other put the breach of a known 0.5 ms + 0.02 ms/event curve
20–50% too low on seeded populations. The fit here forward-models each stratum
instead: a user with e events has p95 f(e) = a + b·e^c and a log-normal spread
σ around it, a stratum's latency is the even mix of its users (as the
stratified sampler draws them), and a, b, c, σ are chosen so each stratum's mix
reproduces the p50 and p95 it measured. On the same data that lands within
about 3% of the true breach with 1,000+ requests a stratum, also under gamma
and uniform noise the model does not assume.

Behind `--cache … --cache-above N` users with N events or more are served from
the cache at a p95 of their own, k, whatever their events: the forward model
gives those users k (fitted with a, b, c, σ), so a stratum that mixes cached
and uncached users is read as the mix it is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import OptimizeResult, least_squares
from scipy.special import ndtr, ndtri

from mlstress_tui.analysis.stratum_result import StratumResult, members

MODEL = "p95_ms = a + b * events^c"
# p50 against p95 separates a user's own spread (σ) from the spread of event counts within a stratum.
FIT_QUANTILES = np.array([0.5, 0.95])
# Event counts standing in for a stratum's users in the fit: quantiles of the stratum's population.
REPRESENTATIVE_USERS = 64
# The exponent is fitted from this many strata; with fewer the curve is a straight line.
MIN_STRATA_FOR_EXPONENT = 3
EXPONENT_BOUNDS = (0.3, 3.0)
SIGMA_BOUNDS = (0.01, 3.0)
# The histogram's smallest value: keeps logarithms finite for a curve that reaches zero.
FLOOR_MS = 1e-4
_Z95 = float(ndtri(0.95))


@dataclass(frozen=True)
class LatencyCurve:
    """A user's p95 latency as a non-decreasing function of event count, a + b·events^c, and how it was fitted."""

    a: float
    b: float
    c: float
    method: str
    noise_sigma: float | None = None  # log-normal spread of one user's latencies, when the fit models it
    cached_from: int | None = None  # users with this many events or more are served by the cache, at cache_p95_ms
    cache_p95_ms: float | None = None

    def predict(self, events: float | np.ndarray) -> float | np.ndarray:
        """The p95 in milliseconds of a user with `events` events (the cache's p95 for a cached user)."""
        events = np.asarray(events, dtype=np.float64)
        values = self.a + self.b * events ** self.c
        if self.cached_from is not None:
            values = np.where(events >= self.cached_from, self.cache_p95_ms, values)
        return values if values.ndim else float(values)

    def inverse(self, threshold_ms: float, *, up_to: float = math.inf) -> float | None:
        """Where the database curve a + b·events^c rises above `threshold_ms`: 0 if it starts above, None if it stays at or below up to `up_to` events."""
        if self.a > threshold_ms:
            return 0.0
        if self.b <= 0:
            return None
        with np.errstate(over="ignore"):
            events = float(np.float64((threshold_ms - self.a) / self.b) ** (1.0 / self.c))
        return events if math.isfinite(events) and events <= up_to else None


def fit_latency_curve(events: np.ndarray, p95_ms: np.ndarray, weights: np.ndarray) -> LatencyCurve | None:
    """Fit p95 = a + b·events^c through points on log residuals; biased steep for strata wide in events, so it seeds the mixture fit."""
    x = np.asarray(events, dtype=np.float64)
    y = np.maximum(np.asarray(p95_ms, dtype=np.float64), FLOOR_MS)
    w = np.sqrt(np.asarray(weights, dtype=np.float64) / np.mean(weights))
    scale = max(float(x.max()), 1.0)
    free_exponent = x.size >= MIN_STRATA_FOR_EXPONENT
    u = x / scale

    def residuals(params: np.ndarray) -> np.ndarray:
        a, scaled_b, c = _curve_params(params, free_exponent)
        return w * (np.log(np.maximum(a + scaled_b * u**c, FLOOR_MS)) - np.log(y))

    starts = [[y.min() / 2, y.max(), c] for c in (0.5, 1.0, 2.0)]
    lower, upper = [0.0, 0.0, EXPONENT_BOUNDS[0]], [np.inf, np.inf, EXPONENT_BOUNDS[1]]
    result = _best_fit(residuals, starts, lower, upper, free_exponent)
    if result is None:
        return None
    a, scaled_b, c = _curve_params(result.x, free_exponent)
    return LatencyCurve(a, scaled_b / scale**c, c, method=f"point fit over {x.size} strata")


def fit_strata_curve(results: Sequence[StratumResult], event_counts_population: np.ndarray,
                     cached_from: int | None = None) -> LatencyCurve | None:
    """Fit a user's p95 curve so that each stratum's mix of users reproduces the p50 and p95 it measured; None if it fails.

    With `cached_from`, users with that many events or more get the cache's own p95 instead of the curve.
    """
    if len(results) < 2:
        raise ValueError(f"a curve needs 2 or more strata with data, got {len(results)}")
    population = np.sort(np.asarray(event_counts_population, dtype=np.int64))
    user_events, user_weights = _representative_users(results, population)
    cached = (user_events >= cached_from) & (user_weights > 0) if cached_from is not None else None
    if cached is not None and not cached.any():
        cached_from, cached = None, None  # nobody measured is past the cache threshold: one curve, as without it
    observed = np.log([[r.percentile_ms(q * 100) for q in FIT_QUANTILES] for r in results])
    # Binomial standard error of a quantile's rank: residuals in these units weigh a stratum by its requests, not its milliseconds.
    rank_error = np.sqrt(FIT_QUANTILES * (1 - FIT_QUANTILES) / np.array([r.latency.count for r in results])[:, None])
    scale = max(float(user_events.max()), 1.0)
    u = user_events / scale
    free_exponent = len(results) >= MIN_STRATA_FOR_EXPONENT

    def residuals(params: np.ndarray) -> np.ndarray:
        a, scaled_b, c = _curve_params(params, free_exponent)
        curve = a + scaled_b * u**c
        if cached is not None:
            sigma, cache_p95 = params[-2], params[-1]
            curve = np.where(cached, cache_p95, curve)
        else:
            sigma = params[-1]
        log_median = np.log(np.maximum(curve, FLOOR_MS)) - sigma * _Z95
        z = (observed[:, :, None] - log_median[:, None, :]) / sigma
        mixed_cdf = np.sum(ndtr(z) * user_weights[:, None, :], axis=2)
        return ((mixed_cdf - FIT_QUANTILES) / rank_error).ravel()

    # The point fit that seeds the search sees the database path only: strata wholly below the cache.
    seeding = np.array([cached_from is None or r.stratum.max_events < cached_from for r in results])
    seeding = seeding if seeding.sum() >= 2 else np.ones(len(results), dtype=bool)
    seed = fit_latency_curve(
        np.array([r.mean_events for r in results])[seeding],
        np.exp(observed[seeding, 1]),
        np.array([r.latency.count for r in results], dtype=np.float64)[seeding],
    )
    seed_c = seed.c if seed is not None else 1.0
    seed_a = seed.a if seed is not None else float(np.exp(observed[:, 1].min()))
    seed_b = seed.b * scale**seed_c if seed is not None else float(np.exp(observed[:, 1].max()))
    starts = [[seed_a, seed_b, c, 0.3] for c in (seed_c, 0.5, 2.0)]
    lower = [0.0, 0.0, EXPONENT_BOUNDS[0], SIGMA_BOUNDS[0]]
    upper = [np.inf, np.inf, EXPONENT_BOUNDS[1], SIGMA_BOUNDS[1]]
    if cached is not None:
        # The cache's p95 starts at the fastest stratum's (a lookup as cheap as the lightest user) and at the
        # slowest's (a cache as slow as the worst): from one side alone the search can stall where the mix saturates.
        starts = [[*start, float(np.exp(edge))] for start in starts for edge in (observed[:, 1].min(), observed[:, 1].max())]
        lower, upper = [*lower, FLOOR_MS], [*upper, np.inf]
    result = _best_fit(residuals, starts, lower, upper, free_exponent)
    if result is None:
        return None
    a, scaled_b, c = _curve_params(result.x, free_exponent)
    method = f"mixture fit of p50 and p95 over {len(results)} strata"
    if not free_exponent:
        method += " (exponent fixed at 1: too few strata to fit it)"
    if cached is None:
        return LatencyCurve(a, scaled_b / scale**c, c, method=method, noise_sigma=float(result.x[-1]))
    method += f", users with {cached_from:,}+ events at the cache's own p95"
    return LatencyCurve(a, scaled_b / scale**c, c, method=method, noise_sigma=float(result.x[-2]),
                        cached_from=cached_from, cache_p95_ms=float(result.x[-1]))


def _curve_params(params: np.ndarray, free_exponent: bool) -> tuple[float, float, float]:
    """a, b scaled to events / max events, and c (1 when the exponent is not fitted)."""
    return float(params[0]), float(params[1]), float(params[2]) if free_exponent else 1.0


def _best_fit(
    residuals: Callable[[np.ndarray], np.ndarray], starts: list[list[float]],
    lower: list[float], upper: list[float], free_exponent: bool,
) -> OptimizeResult | None:
    """The lowest-cost least-squares solution over several starts (the exponent makes the problem non-convex)."""
    if not free_exponent:
        # The parameter vector drops the exponent (index 2) and keeps any after it.
        drop = [[v for i, v in enumerate(start) if i != 2] for start in starts]
        starts, lower, upper = drop, lower[:2] + lower[3:], upper[:2] + upper[3:]
    best = None
    for start in starts:
        clipped = np.clip(np.asarray(start, dtype=np.float64), np.add(lower, 1e-9), np.subtract(upper, 1e-9))
        try:
            with np.errstate(all="ignore"):
                result = least_squares(residuals, clipped, bounds=(lower, upper), x_scale="jac")
        except (ValueError, ArithmeticError, np.linalg.LinAlgError):
            continue
        if result.success and np.all(np.isfinite(result.x)) and (best is None or result.cost < best.cost):
            best = result
    return best


def _representative_users(results: Sequence[StratumResult], sorted_population: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per stratum, up to REPRESENTATIVE_USERS evenly spaced quantiles of its users' event counts, and their weights (rows sum to 1)."""
    events = np.zeros((len(results), REPRESENTATIVE_USERS))
    weights = np.zeros_like(events)
    for row, result in enumerate(results):
        counts = members(sorted_population, result.stratum)
        if counts.size == 0:
            counts = np.array([result.mean_events])  # a population without this stratum's users: its measured mean stands in
        taken = min(REPRESENTATIVE_USERS, counts.size)
        positions = ((np.arange(taken) + 0.5) / taken * counts.size).astype(np.int64)
        events[row, :taken] = counts[positions]
        weights[row, :taken] = 1.0 / taken
    return events, weights
