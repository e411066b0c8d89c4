"""The heavy-user report of the run so far: latency by stratum of event count and the breach line, built here only.

The dashboard's `o` panel, its acceptance panel, `outliers.json` and `accept`'s
heavy stage all read this one report; live it is refitted at most every few
seconds (the fit takes ~25 ms), at the end once more on the whole run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mlstress_tui.analysis.outliers import outliers_report, strata_results
from mlstress_tui.load.user_strata import Stratum
from mlstress_tui.session.run_totals import RunTotals

REFIT_S = 2.0
NO_EVENT_COUNTS = "the target's users have no event counts: pass --users-db for a python or sleep target"


class HeavyUsers:
    """Builds the outliers report from the run's exact per-stratum counts."""

    def __init__(self, totals: RunTotals, strata: Sequence[Stratum], population: np.ndarray, *,
                 threshold_ms: float, concurrency: Callable[[], int], target: dict[str, Any]) -> None:
        self._totals = totals
        self._strata = list(strata)
        self._population = population
        self.threshold_ms = threshold_ms
        self._concurrency = concurrency
        self._target = target
        self._cached: tuple[float, dict[str, Any] | None] | None = None

    @property
    def available(self) -> bool:
        return bool(self._strata)

    @property
    def why_none(self) -> str:
        return NO_EVENT_COUNTS if not self._strata else "no requests yet"

    def report(self, *, fresh: bool = False) -> dict[str, Any] | None:
        """The report of the run so far (at most REFIT_S old unless `fresh`), None without strata or requests."""
        if not self._strata:
            return None
        now = time.monotonic()
        # An empty report is not kept: the first requests are shown as soon as they arrive, not REFIT_S later.
        if not fresh and self._cached is not None and self._cached[1] is not None and now - self._cached[0] < REFIT_S:
            return self._cached[1]
        results = strata_results(self._strata, self._totals.total.strata)
        report = (outliers_report(results, threshold_ms=self.threshold_ms, event_counts_population=self._population,
                                  concurrency=self._concurrency(), target=self._target) if results else None)
        self._cached = (now, report)
        return report
