"""A finished run read back to be drawn beside another: each level's p95 and throughput, and its latency histogram.

The figures are the ones the run itself wrote (summary.json's `levels`, each
made by session.level_analysis.level_figures, as read by report/run_dir.py for
`compare`), never recomputed from its seconds; the histogram is the run's own
(latency_histogram.json). A run from before the histogram file has its
curve and no histogram, said in `histogram_note`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mlstress_tui.errors import UsageError
from mlstress_tui.report.run_dir import ReportRecord, RunRecord, read_compared
from mlstress_tui.report.summary import HISTOGRAM_FILE
from mlstress_tui.results.histogram import LatencyHistogram


@dataclass(frozen=True)
class CurvePoint:
    """One level of a finished run, as the level charts draw it (the same fields as analysis.ramp.RampStep's)."""

    mode: str  # "closed" | "open"
    level: float
    seconds: float
    p95_ms: float | None
    throughput_rps: float


@dataclass(frozen=True)
class RunCurve:
    """A finished run's levels (lowest first, every mode it ran in) and its whole-run latency histogram."""

    record: RunRecord
    points: tuple[CurvePoint, ...]
    histogram: LatencyHistogram | None
    histogram_note: str = ""  # why there is no histogram

    @property
    def path(self) -> Path:
        return self.record.path

    @property
    def name(self) -> str:
        """What the run is called on screen: its --label, else its directory's name."""
        label = self.record.summary.get("label")
        return str(label) if label else self.record.path.name

    def curve(self, mode: str) -> tuple[CurvePoint, ...]:
        """The levels run in `mode` (a run that switched loops has two curves)."""
        return tuple(point for point in self.points if point.mode == mode)


def read_run_curve(path: Path) -> RunCurve:
    """A run directory (run, ramp, outliers, or an accept stage's) as `show --baseline` and the dashboard draw it.

    One line (UsageError) when there is no finished run there, or an accept
    report directory: its stages are runs of their own.
    """
    record = read_compared(path)
    if isinstance(record, ReportRecord):
        stages = ", ".join(str(stage.path) for stage in record.stages.values() if stage is not None) or "none ran"
        raise UsageError(f"{str(path)!r} is an accept report, not a run: pass one of its stages' run directories "
                         f"({stages})")
    points = sorted((CurvePoint(mode=level.key[0], level=level.key[1], seconds=level.seconds,
                                p95_ms=level.figures.get("p95_ms"),
                                throughput_rps=level.figures.get("throughput_rps") or 0.0)
                     for level in record.levels), key=lambda point: (point.mode, point.level))
    histogram, note = _histogram(path / HISTOGRAM_FILE)
    return RunCurve(record=record, points=tuple(points), histogram=histogram, histogram_note=note)


def _histogram(path: Path) -> tuple[LatencyHistogram | None, str]:
    if not path.is_file():
        return None, f"no {HISTOGRAM_FILE} (a run written before runs kept their histogram)"
    try:
        return LatencyHistogram.from_json(json.loads(path.read_text(encoding="utf-8"))), ""
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
        return None, f"{HISTOGRAM_FILE} unreadable ({error})"
