"""Each level's figures, and the knee and USL fit over the levels visited, computed here and read by every front end.

A level's figures (`level_figures`) are what the ramp's steps, the level
table of summary.json and the dashboard's level charts all show; the knee and
the USL curve come from the levels visited in the current loop, by the ramp or
by hand alike, refitted only when a level's figures changed.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

from mlstress_tui.analysis.ramp import MIN_GAIN_SHARE, KneeResult, RampStep, UslFit, find_knee, fit_usl
from mlstress_tui.results.harness_verdict import harness_verdict
from mlstress_tui.results.kinds import OPEN, LoadMode
from mlstress_tui.results.level_stats import LevelStats
from mlstress_tui.session.level_ledger import LevelLedger

# A knee needs at least this many levels: with one there is nothing to compare.
MIN_LEVELS_FOR_KNEE = 2


def level_figures(stats: LevelStats, *, target_kind: str | None, workers: int) -> RampStep:
    """What one level measured (its warm-up left out), as the knee and USL analysis and every report take it."""
    totals = stats.totals
    latency = totals.latency
    return RampStep(
        mode=stats.mode.value, level=stats.level, seconds=round(stats.seconds, 3), requests=totals.requests,
        errors=totals.errors, throughput_rps=stats.throughput_rps,
        p50_ms=latency.percentile_ms(50), p95_ms=latency.percentile_ms(95), p99_ms=latency.percentile_ms(99),
        pool_wait_p95_ms=totals.pool_wait.percentile_ms(95),
        mean_latency_ms=latency.sum_ns / latency.count / 1e6 if latency.count else None,
        verdict=str(harness_verdict(totals, target_kind=target_kind, workers=workers, busy=stats.tick_busy)["verdict"]),
        offered_rps=stats.level if stats.mode == OPEN else None,
        warmup_s=round(stats.warmup_s, 3), throughput_se=relative_standard_error(stats.tick_throughputs),
    )


def relative_standard_error(series: list[float]) -> float | None:
    """The standard error of a series' mean over the mean (the level's throughput noise); None under 3 values."""
    if len(series) < 3:
        return None
    mean = statistics.fmean(series)
    return statistics.stdev(series) / math.sqrt(len(series)) / mean if mean > 0 else None


@dataclass(frozen=True)
class LevelCurve:
    """The levels visited in one loop (chart points, lowest first), their knee and their USL fit."""

    mode: LoadMode
    points: tuple[RampStep, ...]
    knee: KneeResult | None
    usl: UslFit | None

    def as_ramp(self, sla_p95_ms: float) -> dict[str, Any] | None:
        """The levels shaped as ramp.json (a point per level value, the knee) for the acceptance panel; None with
        fewer than two levels."""
        if len(self.points) < 2:
            return None
        knee = self.knee.knee_level if self.knee is not None else None
        return {"mode": self.mode.value, "sla_p95_ms": sla_p95_ms,
                "knee_rate" if self.mode == OPEN else "knee_concurrency": knee,
                "steps": [point.to_json() for point in self.points]}


class LevelAnalysis:
    """The knee and the USL fit over the ledger's levels, refitted only when the ledger changed."""

    def __init__(self, ledger: LevelLedger, *, sla_p95_ms: float, target_kind: str | None, workers: int,
                 max_error_rate: float = 0.01) -> None:
        self._ledger = ledger
        self.sla_p95_ms = sla_p95_ms
        self.max_error_rate = max_error_rate
        self._target_kind = target_kind
        self._workers = workers
        self._cache: dict[LoadMode, tuple[int, LevelCurve]] = {}

    def figures(self, stats: LevelStats) -> RampStep:
        return level_figures(stats, target_kind=self._target_kind, workers=self._workers)

    def curve(self, mode: LoadMode) -> LevelCurve:
        cached = self._cache.get(mode)
        if cached is not None and cached[0] == self._ledger.version:
            return cached[1]
        points = tuple(self.figures(stats) for stats in self._ledger.by_value(mode) if stats.requests)
        knee = (find_knee(points, sla_p95_ms=self.sla_p95_ms, max_error_rate=self.max_error_rate,
                          min_gain_share=MIN_GAIN_SHARE)
                if len(points) >= MIN_LEVELS_FOR_KNEE else None)
        usl = None
        if mode != OPEN:
            usl = fit_usl([point.level for point in points], [point.throughput_rps for point in points])
        curve = LevelCurve(mode, points, knee, usl)
        self._cache[mode] = (self._ledger.version, curve)
        return curve
