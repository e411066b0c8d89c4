"""From what each stratum of users measured, the event count at which a user's p95 breaks the budget, and the outliers.json document.

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

A failed request is past any latency budget: a stratum's share over the
threshold counts its failures, its quantiles for the fit rank failures above
every answer, and a stratum whose failures alone pass its p95 (more than 5% of
its requests) *fails*: the breach is at its lower edge at the latest, and the
action names it ("users with 100+ events fail: RuntimeError 100%") before any
latency advice. The percentiles a stratum's row shows are of the requests that
answered, beside its error count and rate.

Behind `--cache … --cache-above N` a user's latency is no longer one curve:
users with N events or more are served from the cache at a p95 of their own,
k, whatever their events. The forward model then gives those users k (fitted
with a, b, c, σ), so a stratum that mixes cached and uncached users is read as
the mix it is, and the breach is where the database curve crosses the budget
below N (the cache should start lower) or N itself when k is over the budget.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import OptimizeResult, least_squares
from scipy.special import ndtr, ndtri

from mlstress_tui.load.user_strata import Stratum
from mlstress_tui.results.histogram import LatencyHistogram, bucket_value_ns

SCHEMA = "mlstress.outliers/1"
MODEL = "p95_ms = a + b * events^c"
# With fewer requests a stratum's p95 is little more than its slowest request.
MIN_REQUESTS = 20
NOT_JUDGED = f"no stratum has {MIN_REQUESTS}+ requests: too few to judge"
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
# A stratum whose failures alone reach past this quantile has its p95 past any budget: it fails.
FAILING_QUANTILE = 0.95
# Failures that are not timeouts are taken as fast (their latency at the bottom of the histogram) when the
# workers do not send the failed requests' own latencies; a timeout is recorded at its deadline, the slowest
# any request can be.
TIMEOUT_KIND = "timeout"


@dataclass(frozen=True)
class StratumResult:
    """What one stratum measured: its requests, their latencies (failed ones too), its errors by kind, the mean event count.

    `failed_latency` holds the failed requests' own latencies (a part of
    `latency`) when the workers send them; without it the split between the
    answered and the failed is inferred from the kinds (see TIMEOUT_KIND).
    """

    stratum: Stratum
    requests: int
    latency: LatencyHistogram
    mean_events: float
    errors_by_kind: Mapping[str, int] = field(default_factory=dict)
    failed_latency: LatencyHistogram | None = None

    @property
    def errors(self) -> int:
        return min(sum(self.errors_by_kind.values()), self.latency.count)

    @property
    def error_rate(self) -> float:
        return self.errors / self.latency.count if self.latency.count else 0.0

    @property
    def answered(self) -> LatencyHistogram:
        """The latencies of the requests that answered (the failed ones taken out)."""
        if not self.errors:
            return self.latency
        if self.failed_latency is not None and self.failed_latency.count == self.errors:
            return _histogram_of_counts(self.latency.counts - self.failed_latency.counts)
        timeouts = min(self.errors_by_kind.get(TIMEOUT_KIND, 0), self.errors)
        return _trimmed(self.latency, low=self.errors - timeouts, high=timeouts)

    @property
    def fails(self) -> bool:
        """Its failures alone put its p95 past any budget."""
        return math.isinf(self.percentile_ms(FAILING_QUANTILE * 100))

    def percentile_ms(self, percent: float) -> float:
        """The latency at `percent` with every failure ranked past every answer (math.inf where failures are)."""
        answered = self.answered
        rank = max(1, math.ceil(self.latency.count * percent / 100.0))
        if rank > answered.count:
            return math.inf
        return _value_at_rank(answered, rank)

    def share_past_ms(self, threshold_ms: float) -> float:
        """Of its requests, the share that failed or answered slower than `threshold_ms`."""
        if not self.latency.count:
            return 0.0
        answered = self.answered
        slow = answered.share_above_ms(threshold_ms) * answered.count
        return min(1.0, (slow + self.errors) / self.latency.count)


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


@dataclass(frozen=True)
class Breach:
    """The smallest event count whose p95 is predicted above the threshold (None when no user's is), and how it was found."""

    event_count: int | None
    curve: LatencyCurve | None
    method: str
    # When strata fail: where latency alone (the strata that answer) breaches, None when it does not.
    latency_event_count: int | None = None


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


def breach_event_count(
    strata_results: Sequence[StratumResult], *, threshold_ms: float, event_counts_population: np.ndarray,
    cached_from: int | None = None,
) -> Breach:
    """The smallest event count whose p95 is above `threshold_ms`: the lower edge of the first failing stratum, or
    where the curve fitted to the others crosses it, whichever is lower; None when no user of the population reaches it.

    With `cached_from` (users from that many events on served by a cache), the
    latency breach is the database curve's crossing below it, or `cached_from`
    itself when the cache's own p95 is over the threshold.
    """
    usable = sorted((r for r in strata_results if r.latency.count >= MIN_REQUESTS), key=lambda r: r.stratum.index)
    if not usable:
        return Breach(None, None, NOT_JUDGED)
    failing = [r for r in usable if r.fails]
    if not failing:
        return _latency_breach(usable, threshold_ms, event_counts_population, cached_from)
    method = f"failures: {_strata_names(failing)} {'fails' if len(failing) == 1 else 'fail'} (a failure is past any budget)"
    answering = [r for r in usable if not r.fails]
    below = _latency_breach(answering, threshold_ms, event_counts_population, cached_from) if answering else None
    first = failing[0].stratum.min_events
    latency = below.event_count if below is not None else None
    if latency is not None and latency < first:
        return Breach(latency, below.curve, f"{below.method}; {method}", latency)
    return Breach(first, below.curve if below else None, method, latency)


def _latency_breach(usable: Sequence[StratumResult], threshold_ms: float, event_counts_population: np.ndarray,
                    cached_from: int | None = None) -> Breach:
    """The breach from the latencies of strata that answer: a fitted curve, or the strata themselves when too few."""
    if len(usable) < 2:
        strata = "stratum" if len(usable) == 1 else "strata"
        return _breach_from_strata(usable, threshold_ms, f"{len(usable)} {strata} with {MIN_REQUESTS}+ requests, too few to fit")
    curve = fit_strata_curve(usable, event_counts_population, cached_from)
    if curve is None:
        return _breach_from_strata(usable, threshold_ms, "the curve fit did not converge")
    max_events = int(np.max(event_counts_population))
    crossing = curve.inverse(threshold_ms, up_to=max_events)
    # The curve equals the threshold at `crossing`; the first whole count above it breaches.
    count = None if crossing is None else 0 if curve.a > threshold_ms else math.floor(crossing) + 1
    if curve.cached_from is not None:
        if count is None or count >= curve.cached_from:
            # Past the cache threshold the database curve no longer applies: those users are the cache's.
            count = curve.cached_from if curve.cache_p95_ms > threshold_ms else None
    return Breach(count if count is not None and count <= max_events else None, curve, curve.method)


def outliers_report(
    strata_results: Sequence[StratumResult],
    *,
    threshold_ms: float,
    event_counts_population: np.ndarray,
    concurrency: int,
    target: dict | None = None,
) -> dict:
    """The content of outliers.json: each stratum's latencies, the breach event count, how many users are past it, and what to do."""
    population = np.sort(np.asarray(event_counts_population, dtype=np.int64))
    results = sorted(strata_results, key=lambda r: r.stratum.index)
    cached_from = ((target or {}).get("cache") or {}).get("at_least_events")
    breach = breach_event_count(results, threshold_ms=threshold_ms, event_counts_population=population,
                                cached_from=cached_from)
    failing = [r for r in results if r.latency.count >= MIN_REQUESTS and r.fails]
    curve = breach.curve
    latency_from = breach.latency_event_count if failing else breach.event_count
    # Users past the latency breach; behind a cache, only those below the cache threshold (the others are the cache's).
    past = np.zeros(population.size, dtype=bool) if latency_from is None else population >= latency_from
    if curve is not None and curve.cached_from is not None and latency_from is not None \
            and latency_from < curve.cached_from:
        past &= population < curve.cached_from
    for result in failing:  # and every user of a failing stratum
        past |= (population >= result.stratum.min_events) & (population <= result.stratum.max_events)
    users_above = int(past.sum())
    share_above = users_above / population.size if population.size else 0.0
    return {
        "schema": SCHEMA,
        "threshold_ms": _rounded(threshold_ms, 3),
        "concurrency": concurrency,
        "target": target,
        "strata": [_stratum_row(r, _members(population, r.stratum).size, threshold_ms) for r in results],
        "breach_event_count": breach.event_count,
        # Strata whose failures alone pass their p95: named before any latency advice.
        "failing": _failing(failing, results, population),
        # False when too few requests reached any stratum: a null breach then means "not known", not "nobody".
        "judged": breach.method != NOT_JUDGED,
        "population_share_above": _rounded(share_above, 6),
        "users_above": users_above,
        "fit": {
            "model": MODEL,
            "a": _rounded(curve.a, 6, significant=True) if curve else None,
            "b": _rounded(curve.b, 6, significant=True) if curve else None,
            "c": _rounded(curve.c, 4) if curve else None,
            "noise_sigma": _rounded(curve.noise_sigma, 4) if curve and curve.noise_sigma is not None else None,
            "method": breach.method,
            **({"cached_from_events": curve.cached_from, "cache_p95_ms": _rounded(curve.cache_p95_ms, 4)}
               if curve and curve.cached_from is not None else {}),
        },
        "action": _action(breach, threshold_ms, users_above, share_above, population, failing, results),
    }


def strata_results(strata: Sequence[Stratum], groups: dict) -> list[StratumResult]:
    """What each stratum measured, from a run's per-stratum counts (`IntervalStats.strata`), strata without requests left out."""
    return [StratumResult(stratum, group.requests, group.latency, group.mean_events, dict(group.errors_by_kind),
                          getattr(group, "failed_latency", None))
            for stratum in strata if (group := groups.get(stratum.index)) is not None and group.requests]


def heavy_breach_rate(report: dict) -> float | None:
    """Of requests by the top 1% of users (each user equally likely), the share that failed or was slower than the threshold."""
    heavy = [row for row in report["strata"] if row["name"].startswith(("top ", "heaviest"))]
    users = sum(row["users"] for row in heavy)
    if not users or any(row["share_above_threshold"] is None for row in heavy):
        return None
    return sum(row["users"] * row["share_above_threshold"] for row in heavy) / users


def strata_table(report: dict) -> pd.DataFrame:
    """The per-stratum rows of an outliers report as a table with the column names a reader expects."""
    over = f"Share over {report['threshold_ms']:g} ms"
    rows = [
        {
            "Stratum": row["name"],
            "Events": _event_range(row["min_events"], row["max_events"]),
            "Users": row["users"],
            "Requests": row["requests"],
            "Mean events": row["mean_events"],
            "Errors": row.get("errors", 0),
            "Error rate": row.get("error_rate", 0.0),
            "p50 ms": row["p50_ms"],
            "p95 ms": row["p95_ms"],
            "p99 ms": row["p99_ms"],
            over: row["share_above_threshold"],
        }
        for row in report["strata"]
    ]
    columns = ["Stratum", "Events", "Users", "Requests", "Mean events", "Errors", "Error rate", "p50 ms", "p95 ms",
               "p99 ms", over]
    return pd.DataFrame(rows, columns=columns)


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


def _members(sorted_population: np.ndarray, stratum: Stratum) -> np.ndarray:
    """The event counts of the population's users in a stratum (a slice of the sorted population)."""
    low = np.searchsorted(sorted_population, stratum.min_events, side="left")
    high = np.searchsorted(sorted_population, stratum.max_events, side="right")
    return sorted_population[low:high]


def _representative_users(results: Sequence[StratumResult], sorted_population: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per stratum, up to REPRESENTATIVE_USERS evenly spaced quantiles of its users' event counts, and their weights (rows sum to 1)."""
    events = np.zeros((len(results), REPRESENTATIVE_USERS))
    weights = np.zeros_like(events)
    for row, result in enumerate(results):
        members = _members(sorted_population, result.stratum)
        if members.size == 0:
            members = np.array([result.mean_events])  # a population without this stratum's users: its measured mean stands in
        taken = min(REPRESENTATIVE_USERS, members.size)
        positions = ((np.arange(taken) + 0.5) / taken * members.size).astype(np.int64)
        events[row, :taken] = members[positions]
        weights[row, :taken] = 1.0 / taken
    return events, weights


def _breach_from_strata(usable: Sequence[StratumResult], threshold_ms: float, why: str) -> Breach:
    """The lower edge of the first stratum whose measured p95 is above the threshold, for when no curve can be fitted."""
    method = f"strata: {why}; the breach is the first stratum whose p95 exceeds the threshold"
    for result in usable:
        if result.percentile_ms(95) > threshold_ms:
            return Breach(result.stratum.min_events, None, method)
    return Breach(None, None, method)


def _stratum_row(result: StratumResult, users: int, threshold_ms: float) -> dict:
    # The percentiles shown are of the requests that answered; the failures are counted beside them.
    answered = result.answered
    percentile = {key: _rounded(answered.percentile_ms(q), 3) for key, q in (("p50_ms", 50), ("p95_ms", 95), ("p99_ms", 99))}
    return {
        "name": result.stratum.name,
        "min_events": result.stratum.min_events,
        "max_events": result.stratum.max_events,
        "users": users,
        "requests": result.requests,
        "mean_events": _rounded(result.mean_events, 2),
        "errors": result.errors,
        "error_rate": _rounded(result.error_rate, 6),
        "errors_by_kind": dict(sorted(result.errors_by_kind.items())),
        **percentile,
        # Failures count as past the budget.
        "share_above_threshold": _rounded(result.share_past_ms(threshold_ms), 6),
    }


def _strata_names(results: Sequence[StratumResult]) -> str:
    names = [r.stratum.name for r in results]
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _kinds_share(results: Sequence[StratumResult]) -> str:
    """`RuntimeError 100%`: the failing strata's errors by kind, as shares of their requests, commonest first."""
    requests = sum(r.latency.count for r in results) or 1
    ranked = sorted(_merged_kinds(results).items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{kind} {_share_text(count / requests)}" for kind, count in ranked[:3])


def _failing_users(failing: Sequence[StratumResult], results: Sequence[StratumResult]) -> str:
    """`users with 100+ events`, when every stratum from the first failing one up fails; else the strata by name."""
    first = failing[0].stratum.index
    above = [r for r in results if r.stratum.index >= first and r.latency.count >= MIN_REQUESTS]
    if [r.stratum.index for r in above] == [r.stratum.index for r in failing]:
        return f"users with {failing[0].stratum.min_events:,}+ events"
    return "users in " + " and ".join(
        f"{r.stratum.min_events:,}" + (f"–{r.stratum.max_events:,}" if r.stratum.max_events != r.stratum.min_events
                                       else "") + " events" for r in failing[:3])


def _failing(failing: Sequence[StratumResult], results: Sequence[StratumResult], population: np.ndarray) -> dict | None:
    """outliers.json's `failing`: which strata fail, from which event count, by which errors, and the line that says so."""
    if not failing:
        return None
    users = sum(_members(population, r.stratum).size for r in failing)
    return {"strata": [r.stratum.name for r in failing], "min_events": failing[0].stratum.min_events,
            "users": int(users), "errors_by_kind": _merged_kinds(failing),
            "text": f"{_failing_users(failing, results)} fail: {_kinds_share(failing)}"}


def _merged_kinds(results: Sequence[StratumResult]) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for result in results:
        for kind, count in result.errors_by_kind.items():
            kinds[kind] = kinds.get(kind, 0) + count
    return dict(sorted(kinds.items()))


def _share_text(share: float) -> str:
    return f"{share:.0%}" if share >= 0.1 else f"{share:.1%}"


def _action(breach: Breach, threshold_ms: float, users_above: int, share_above: float, sorted_population: np.ndarray,
            failing: Sequence[StratumResult] = (), results: Sequence[StratumResult] = ()) -> str:
    """One line saying what to do about heavy users: failures first, then latency."""
    budget = f"p95 {threshold_ms:g} ms"
    if failing:
        said = (f"{_failing_users(failing, results)} fail: {_kinds_share(failing)}; fix the failures first "
                f"({_percent(share_above)} of users, {users_above:,} users at this scale, are past {budget})")
        return said
    if breach.method == NOT_JUDGED:
        return f"too few requests to judge {budget}: {NOT_JUDGED}; raise --requests-per-stratum"
    if breach.event_count == 0:
        return f"every user breaches {budget}, even with 0 events: the fixed cost per request is the problem, not heavy users"
    curve = breach.curve
    cached_from = curve.cached_from if curve is not None else None
    if cached_from is not None and breach.event_count == cached_from:
        return (f"the cache itself breaches {budget}: users with {cached_from:,}+ events are served from it at "
                f"p95 {curve.cache_p95_ms:.1f} ms; the cache, not the database, needs the work")
    if cached_from is not None and breach.event_count is not None:
        return (f"the cache starts too high: lower --cache-above to {breach.event_count:,} events "
                f"({_percent(share_above)} of users, {users_above:,} users below {cached_from:,} events still breach)")
    if breach.event_count is not None:
        return (f"cache or precompute features for users with {breach.event_count:,} events or more "
                f"({_percent(share_above)} of users, {users_above:,} users at this scale)")
    if curve is None:
        return f"no user breaches {budget} in the strata measured ({breach.method})"
    heaviest = int(sorted_population[-1]) if sorted_population.size else 0
    if cached_from is not None and cached_from <= 0:  # --cache-above 0: no user is left on the database path
        return f"no user breaches {budget} with the cache: every user is served from it at p95 {curve.cache_p95_ms:.2f} ms"
    if cached_from is not None:
        return (f"no user breaches {budget} with the cache: users with {cached_from:,}+ events are served from it at "
                f"p95 {curve.cache_p95_ms:.2f} ms; the heaviest on the database path ({cached_from - 1:,} events) is "
                f"predicted at {curve.predict(cached_from - 1):.1f} ms")
    predicted = curve.predict(heaviest)
    return f"no user breaches {budget}: the heaviest user ({heaviest:,} events) is predicted at {predicted:.1f} ms"


def _histogram_of_counts(counts: np.ndarray) -> LatencyHistogram:
    """A histogram holding these bucket counts; min, max and sum from the buckets' own values."""
    histogram = LatencyHistogram()
    counts = np.maximum(np.asarray(counts, dtype=np.int64), 0)
    filled = np.flatnonzero(counts)
    if filled.size:
        histogram.counts = counts
        histogram.count = int(counts.sum())
        histogram.min_ns = int(bucket_value_ns(int(filled[0])))
        histogram.max_ns = int(bucket_value_ns(int(filled[-1])))
        histogram.sum_ns = int(np.dot(counts[filled], bucket_value_ns(filled)))
    return histogram


def _trimmed(histogram: LatencyHistogram, *, low: int, high: int) -> LatencyHistogram:
    """The histogram without its `low` fastest and `high` slowest values."""
    counts = histogram.counts.copy()
    for remove, order in ((low, np.arange(counts.size)), (high, np.arange(counts.size)[::-1])):
        for index in order[counts[order] > 0]:
            if remove <= 0:
                break
            taken = min(remove, int(counts[index]))
            counts[index] -= taken
            remove -= taken
    return _histogram_of_counts(counts)


def _value_at_rank(histogram: LatencyHistogram, rank: int) -> float:
    """The rank-th smallest value (1-based) in milliseconds, as percentile_ms reports values."""
    index = int(np.searchsorted(np.cumsum(histogram.counts), rank))
    value = float(bucket_value_ns(index))
    return min(max(value, histogram.min_ns), histogram.max_ns) / 1e6


def _percent(share: float) -> str:
    """A share as a percentage with two significant digits below 1% (0.013%), one decimal above."""
    return f"{share:.1%}" if share >= 0.01 else f"{share * 100:.2g}%"


def _event_range(low: int, high: int) -> str:
    return f"{low:,}" if low == high else f"{low:,}–{high:,}"


def _rounded(value: float | None, digits: int, *, significant: bool = False) -> float | None:
    """A number rounded for JSON, None when missing or not finite (JSON has no NaN)."""
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.{digits}g}") if significant else round(float(value), digits)
