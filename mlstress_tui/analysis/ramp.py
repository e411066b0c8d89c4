"""Where a ramp's knee is, when a ramp is past its cliff, and a Universal Scalability Law fit of it.

The USL is Neil Gunther's model of throughput at concurrency N,
X(N) = λN / (1 + σ(N − 1) + κN(N − 1)): σ is contention (queueing on a shared
resource), κ is coherency (crosstalk that makes throughput fall), and
throughput peaks at N* = √((1 − σ)/κ). See N. J. Gunther, "Guerrilla Capacity
Planning" (Springer, 2007), chapter 4.

A coefficient the data cannot tell from zero is zero: least squares hands back
κ = 7e-18 for a target with no limit at all, and √(1/κ) turns that rounding
noise into a "peak" at 367 million users. A term is kept only when its share
of the USL's denominator at the largest N measured is at least 0.1% (below
that it changes no prediction a measurement resolves) and the data shows it:
for κ, throughput measured falling (a step under 90% of the best below it, the
ramp's own noise allowance), or either term making the fit better than the
fit without it by more than noise (an F-test of the two nested fits at 5%, so
noise alone keeps a term about one ramp in twenty; with no residual degrees of
freedom the share alone decides). A term dropped is 0 and the rest refitted.
With κ = 0 there is no peak. On a flat 50 ms sleep to 64 users measured with
0.2–2% noise, the test's p for κ was 0.08–1.0 over five seeds; for a true
κ = 0.0005 under the same noise it was below 1e-4.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
from scipy.optimize import least_squares
from scipy.stats import f as f_distribution

from mlstress_tui.results.units import format_rate

SCHEMA = "mlstress.ramp/1"
# A step "still grows" when it gains at least this share of what linear scaling would give.
MIN_GAIN_SHARE = 0.2
# The least share of the USL denominator at the largest N measured a σ or κ term must make to be kept.
MIN_TERM_SHARE = 1e-3
# A term is kept when the fit without it is worse than the fit with it beyond this chance (F-test).
TERM_SIGNIFICANCE = 0.05
# Throughput under this share of the best at a lower N has fallen (past_cliff's allowance for noise).
FALLEN_SHARE = 0.9
NO_PEAK = "no retrograde term: throughput did not fall"


def _clean(value: float | None, digits: int, *, significant: bool = False) -> float | None:
    """A number rounded for JSON (significant digits for USL coefficients like κ ~ 1e-5); None when not finite."""
    if value is None or not math.isfinite(value):
        return None  # JSON has no NaN or infinity
    return float(f"{value:.{digits}g}") if significant else round(float(value), digits)


@dataclass(frozen=True)
class RampStep:
    """What one ramp step measured."""

    mode: str  # "closed" | "open"
    level: float  # commanded concurrency (closed) or rate in req/s (open)
    seconds: float
    requests: int
    errors: int
    throughput_rps: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    pool_wait_p95_ms: float | None
    mean_latency_ms: float | None
    verdict: str = "ok"  # the harness verdict for this step: ok | unknown | timer_lag | cpu_bound | stopped
    offered_rps: float | None = None  # open loop: the rate asked for
    warmup_s: float = 0.0  # the step's first ticks, until its throughput settled: measured, left out of its figures
    # The relative standard error of the step's throughput, from its own tick-to-tick spread (None: too few ticks).
    throughput_se: float | None = None

    @property
    def error_rate(self) -> float:
        """Share of requests that failed, 0 when none were sent."""
        return self.errors / self.requests if self.requests else 0.0

    @property
    def concurrency(self) -> float | None:
        """Requests in flight: the commanded level in closed loop, Little's law (L = X·W) in open loop."""
        if self.mode == "closed":
            return self.level
        if self.mean_latency_ms is None:
            return None
        return self.throughput_rps * self.mean_latency_ms / 1000.0

    def to_json(self) -> dict:
        """All fields plus error rate and concurrency, rounded for a report."""
        data = asdict(self)
        for name in ("p50_ms", "p95_ms", "p99_ms", "pool_wait_p95_ms", "mean_latency_ms", "seconds", "warmup_s"):
            data[name] = _clean(data[name], 3)
        data["throughput_se"] = _clean(self.throughput_se, 4)
        for name in ("level", "throughput_rps", "offered_rps"):
            data[name] = _clean(data[name], 2)
        data["error_rate"] = _clean(self.error_rate, 6)
        data["concurrency"] = _clean(self.concurrency, 2)
        return data


@dataclass(frozen=True)
class UslFit:
    """Fitted USL coefficients, the concurrency of peak throughput and how well the curve fits."""

    lam: float
    sigma: float
    kappa: float
    peak_concurrency: float | None
    r2: float
    peak_note: str | None = None  # why there is no peak, when there is none

    def throughput(self, n: float | np.ndarray) -> float | np.ndarray:
        """Throughput the fitted law predicts at concurrency n."""
        return _usl(np.asarray(n, dtype=float), self.lam, self.sigma, self.kappa)

    def to_json(self) -> dict:
        """The fit as ramp.json stores it."""
        return {
            "lambda": _clean(self.lam, 6, significant=True),
            "sigma": _clean(self.sigma, 6, significant=True),
            "kappa": _clean(self.kappa, 6, significant=True),
            "peak_concurrency": _clean(self.peak_concurrency, 2),
            "peak_note": self.peak_note,
            "r2": _clean(self.r2, 4),
        }


def _usl(n: np.ndarray, lam: float, sigma: float, kappa: float) -> np.ndarray:
    return lam * n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))


def fit_usl(concurrency: Sequence[float], throughput: Sequence[float]) -> UslFit | None:
    """Least-squares USL fit with λ > 0, 0 ≤ σ ≤ 1, κ ≥ 0, terms the data cannot resolve set to 0 (see the module);
    None with under 3 distinct usable N or when the fit fails."""
    n = np.asarray(concurrency, dtype=float)
    x = np.asarray(throughput, dtype=float)
    keep = np.isfinite(n) & np.isfinite(x) & (n > 0) & (x > 0)
    n, x = n[keep], x[keep]
    if len(np.unique(n)) < 3:
        return None
    free = {"sigma": True, "kappa": True}
    fitted = _least_squares_usl(n, x, **_as_free(free))
    if fitted is None:
        return None
    # κ first (the peak rests on it), then σ: each dropped when the data cannot tell it from zero.
    for term, index in (("kappa", 2), ("sigma", 1)):
        if fitted[index] == 0:
            continue
        without = _least_squares_usl(n, x, **_as_free({**free, term: False}))
        fell = term == "kappa" and _throughput_fell(n, x)
        if without is not None and not _term_resolved(n, x, fitted, without, index, sum(free.values()) + 1, fell):
            free[term] = False
            fitted = without
    lam, sigma, kappa = fitted
    ss_res = float(np.sum((_usl(n, lam, sigma, kappa) - x) ** 2))
    ss_tot = float(np.sum((x - x.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else 0.0)
    peak = math.sqrt((1.0 - sigma) / kappa) if kappa > 0 and sigma < 1 else None
    note = None if peak is not None else (NO_PEAK if kappa == 0 else "no peak: contention alone (σ = 1) caps throughput")
    return UslFit(lam=lam, sigma=sigma, kappa=kappa, peak_concurrency=peak, r2=r2, peak_note=note)


def _as_free(free: dict[str, bool]) -> dict[str, bool]:
    return {"free_sigma": free["sigma"], "free_kappa": free["kappa"]}


def _throughput_fell(n: np.ndarray, x: np.ndarray) -> bool:
    """Some step's throughput is under FALLEN_SHARE of the best measured at a lower N."""
    order = np.argsort(n, kind="stable")
    levels, rates = n[order], x[order]
    best_below = -np.inf
    for level in np.unique(levels):
        here = rates[levels == level]
        if np.any(here < FALLEN_SHARE * best_below):
            return True
        best_below = max(best_below, float(here.max()))
    return False


def _term_resolved(n: np.ndarray, x: np.ndarray, with_term: tuple[float, float, float],
                   without: tuple[float, float, float], index: int, parameters: int, fell: bool) -> bool:
    """Whether the σ (index 1) or κ (index 2) of `with_term` is a term the data resolves (see the module)."""
    top = float(n.max())
    lam, sigma, kappa = with_term
    terms = (0.0, sigma * (top - 1.0), kappa * top * (top - 1.0))
    if terms[index] / (1.0 + terms[1] + terms[2]) < MIN_TERM_SHARE:
        return False
    if fell:
        return True
    dof = n.size - parameters
    if dof <= 0:
        return True  # an exact fit: no residuals to judge it by, only the share
    ss_with = float(np.sum((_usl(n, *with_term) - x) ** 2))
    ss_without = float(np.sum((_usl(n, *without) - x) ** 2))
    if ss_with <= 0:
        return ss_without > 0
    improvement = max(ss_without - ss_with, 0.0) / (ss_with / dof)
    return float(f_distribution.sf(improvement, 1, dof)) < TERM_SIGNIFICANCE


def _least_squares_usl(n: np.ndarray, x: np.ndarray, *, free_sigma: bool,
                       free_kappa: bool) -> tuple[float, float, float] | None:
    """λ, σ, κ by least squares, σ and κ held at 0 where not free; None when the fit fails."""
    lowest = n == n.min()
    lam0 = float(x[lowest].mean() / n.min())
    start = [lam0] + [0.01] * free_sigma + [1e-4] * free_kappa
    lower = [lam0 * 1e-9] + [0.0] * free_sigma + [0.0] * free_kappa
    upper = [np.inf] + [1.0] * free_sigma + [np.inf] * free_kappa

    def unpack(p: np.ndarray) -> tuple[float, float, float]:
        values = iter(p[1:])
        return float(p[0]), float(next(values)) if free_sigma else 0.0, float(next(values)) if free_kappa else 0.0

    try:
        with np.errstate(all="ignore"):
            result = least_squares(lambda p: _usl(n, *unpack(p)) - x, x0=start, bounds=(lower, upper), x_scale="jac")
    except (ValueError, ArithmeticError, np.linalg.LinAlgError):
        return None
    fitted = unpack(result.x)
    if not result.success or not all(map(math.isfinite, fitted)):
        return None
    return fitted


@dataclass(frozen=True)
class KneeResult:
    """The knee of a ramp, the level it is safe to run at, and one line saying why."""

    knee_level: float | None
    safe_level: float | None
    reason: str


def _name(step: RampStep) -> str:
    if step.mode == "open":
        return f"{step.level:g} req/s"
    return f"{step.level:g} user" + ("" if step.level == 1 else "s")


def _breach(step: RampStep, sla_p95_ms: float, max_error_rate: float) -> str | None:
    """Why a step is outside the SLA, or None when it is within it."""
    if step.requests <= 0:
        return "no request completed"
    if step.error_rate > max_error_rate:
        return f"error rate {step.error_rate:.1%} > {max_error_rate:.1%}"
    if step.p95_ms is None:
        return "no p95 was measured"
    if step.p95_ms > sla_p95_ms:
        return f"p95 {step.p95_ms:.1f} ms > {sla_p95_ms:g} ms"
    return None


def _gains(previous: RampStep, step: RampStep) -> tuple[float, float]:
    """Relative throughput gain and relative load gain from one step to the next."""
    load = step.level / previous.level - 1.0 if previous.level > 0 else 0.0
    if previous.throughput_rps > 0:
        return step.throughput_rps / previous.throughput_rps - 1.0, load
    return (math.inf if step.throughput_rps > 0 else 0.0), load


def _percent(change: float) -> str:
    """A signed percentage with no "-0%" for a change that rounds to nothing."""
    return f"{round(change * 100) + 0:+d}%" if math.isfinite(change) else "+∞%"


def _grew(previous: RampStep, step: RampStep, min_gain_share: float) -> bool:
    """The step gained a share of linear scaling, and more than the two steps' own noise can explain."""
    throughput, load = _gains(previous, step)
    return throughput >= max(min_gain_share * load, _noise(previous, step))


def _noise(previous: RampStep, step: RampStep) -> float:
    """A relative throughput change the steps' tick-to-tick spread alone makes likely (two standard errors)."""
    errors = [se for se in (previous.throughput_se, step.throughput_se) if se is not None]
    return 2.0 * math.sqrt(sum(se * se for se in errors)) if errors else 0.0


def _knee_index(
    steps: Sequence[RampStep], sla_p95_ms: float, max_error_rate: float, min_gain_share: float
) -> tuple[int | None, str]:
    """Index of the knee step (see find_knee) and the reason it is there."""
    if not steps:
        return None, "no ramp step was measured"
    knee = None
    for i, step in enumerate(steps):
        if _breach(step, sla_p95_ms, max_error_rate) is not None:
            break
        if i == 0 or _grew(steps[i - 1], step, min_gain_share):
            knee = i
    if knee is None:
        why = _breach(steps[0], sla_p95_ms, max_error_rate)
        return None, f"none: the first step ({_name(steps[0])}) already breaks the SLA: {why}"
    step = steps[knee]
    within = f"within the SLA (p95 {step.p95_ms:.1f} ms <= {sla_p95_ms:g} ms)"
    if knee == 0:
        head = f"{_name(step)}: the first step, {within}"
    else:
        throughput, load = _gains(steps[knee - 1], step)
        growth = f"{_percent(throughput)} for {_percent(load)} load"
        head = f"{_name(step)}: the last step {within} where throughput still grew ({growth})"
    if knee == len(steps) - 1:
        return knee, f"{head}; it is the last step measured, so the cliff was not reached: raise --max"
    after = steps[knee + 1]
    why = _breach(after, sla_p95_ms, max_error_rate)
    if why is not None:
        return knee, f"{head}; at {_name(after)} the SLA broke: {why}"
    throughput, load = _gains(step, after)
    p95 = f"{after.p95_ms:.1f} ms" if after.p95_ms is not None else "n/a"
    return knee, (f"{head}; at {_name(after)} it grew {_percent(throughput)} for {_percent(load)} load "
                  f"while p95 rose to {p95}")


def find_knee(
    steps: Sequence[RampStep], *, sla_p95_ms: float, max_error_rate: float = 0.01, min_gain_share: float = MIN_GAIN_SHARE
) -> KneeResult:
    """The last step before the first SLA breach whose throughput still grew: the level it is safe to run at."""
    index, reason = _knee_index(steps, sla_p95_ms, max_error_rate, min_gain_share)
    level = steps[index].level if index is not None else None
    return KneeResult(knee_level=level, safe_level=level, reason=reason)


def past_cliff(
    steps: Sequence[RampStep], *, sla_p95_ms: float, max_error_rate: float = 0.01, min_gain_share: float = MIN_GAIN_SHARE
) -> str | None:
    """Why the last step is clearly past the cliff (so the ramp should stop), or None to keep going.

    Past the cliff: the step breaks the SLA (no completions, error rate, p95);
    its throughput is under 90% of the best earlier step (10% covers noise); it
    gained under min_gain_share of linear scaling while its p95 grew over 50%
    (saturated and queueing); or the last two steps each gained under
    min_gain_share while p95 grew over 50% across both (a gentler slope).
    """
    if not steps:
        return None
    last = steps[-1]
    why = _breach(last, sla_p95_ms, max_error_rate)
    if why is not None:
        return f"{_name(last)} breaks the SLA: {why}"
    best = max((s.throughput_rps for s in steps[:-1]), default=0.0)
    if last.throughput_rps < 0.9 * best:
        drop = 1 - last.throughput_rps / best
        return f"throughput fell at {_name(last)}: {format_rate(last.throughput_rps)} req/s, {drop:.0%} below the best {format_rate(best)} req/s"
    previous = steps[-2] if len(steps) >= 2 else None
    if (previous is not None and previous.p95_ms and last.p95_ms is not None
            and not _grew(previous, last, min_gain_share) and last.p95_ms > 1.5 * previous.p95_ms):
        return (f"saturated at {_name(last)}: throughput stopped growing while p95 rose from "
                f"{previous.p95_ms:.1f} ms to {last.p95_ms:.1f} ms")
    if len(steps) >= 3:
        before, middle = steps[-3], steps[-2]
        flat = not _grew(before, middle, min_gain_share) and not _grew(middle, last, min_gain_share)
        if flat and before.p95_ms and last.p95_ms is not None and last.p95_ms > 1.5 * before.p95_ms:
            return (
                f"saturated at {_name(last)}: throughput stopped growing for two steps "
                f"while p95 rose from {before.p95_ms:.1f} ms to {last.p95_ms:.1f} ms"
            )
    return None


def ramp_report(
    steps: Sequence[RampStep], *, sla_p95_ms: float, max_error_rate: float = 0.01,
    min_gain_share: float = MIN_GAIN_SHARE, stopped_because: str | None = None,
) -> dict:
    """The content of ramp.json: the steps, the knee and safe level, why, and the USL fit."""
    open_loop = bool(steps) and steps[0].mode == "open"
    index, reason = _knee_index(steps, sla_p95_ms, max_error_rate, min_gain_share)
    knee = steps[index] if index is not None else None
    usable = [s for s in steps if s.requests > 0 and s.concurrency is not None]
    fit = fit_usl([s.concurrency for s in usable], [s.throughput_rps for s in usable])
    report = {
        "schema": SCHEMA,
        "mode": "open" if open_loop else "closed",
        "sla_p95_ms": _clean(sla_p95_ms, 3),
        "steps": [s.to_json() for s in steps],
    }
    if open_loop:
        rate = _clean(knee.level, 2) if knee else None
        concurrency = _clean(knee.concurrency, 1) if knee else None
        report |= {"knee_rate": rate, "safe_rate": rate}
        report |= {"knee_concurrency": concurrency, "safe_concurrency": concurrency}
    else:
        level = _clean(knee.level, 2) if knee else None
        report |= {"knee_concurrency": level, "safe_concurrency": level}
    report |= {"reason": reason, "stopped_because": stopped_because, "usl": fit.to_json() if fit else None}
    return report
