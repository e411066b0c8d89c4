"""From what each stratum of users measured, the event count at which a user's p95 breaks the budget, and the outliers.json document.

The curve a user's p95 follows with their events is fitted in
analysis/latency_curve.py (a forward model of each stratum's mix of users);
what a stratum measured, failures included, is analysis/stratum_result.py.

A failed request is past any latency budget: a stratum whose failures alone
pass its p95 *fails*, the breach is at its lower edge at the latest, and the
action names it ("users with 100+ events fail: RuntimeError 100%") before any
latency advice.

Behind `--cache … --cache-above N` the breach is where the database curve
crosses the budget below N (the cache should start lower) or N itself when
the cache's own p95 is over the budget.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlstress_tui.analysis.latency_curve import MODEL, LatencyCurve, fit_strata_curve
from mlstress_tui.analysis.stratum_result import StratumResult, members
from mlstress_tui.load.user_strata import Stratum

SCHEMA = "mlstress.outliers/1"
# With fewer requests a stratum's p95 is little more than its slowest request.
MIN_REQUESTS = 20
NOT_JUDGED = f"no stratum has {MIN_REQUESTS}+ requests: too few to judge"


@dataclass(frozen=True)
class Breach:
    """The smallest event count whose p95 is predicted above the threshold (None when no user's is), and how it was found."""

    event_count: int | None
    curve: LatencyCurve | None
    method: str
    # When strata fail: where latency alone (the strata that answer) breaches, None when it does not.
    latency_event_count: int | None = None


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
        "strata": [_stratum_row(r, members(population, r.stratum).size, threshold_ms) for r in results],
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
    users = sum(members(population, r.stratum).size for r in failing)
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
