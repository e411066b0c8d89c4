"""A finished run beside its baseline (`show NEW --baseline BASE`): both level curves, both histograms, the table.

It draws and never computes: the curves and histograms are what each run
wrote (report/run_curve.py), the per-level changes are compare's
(`compare.json`'s document, rendered by report/compare_report.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.widgets import Static

from mlstress_tui.presets import DEFAULT_SLA_P95_MS
from mlstress_tui.report.compare_report import differences_rows, side_by_side_lines
from mlstress_tui.report.run_curve import RunCurve
from mlstress_tui.tui.themes import DEFAULT_THEME, load_themes
from mlstress_tui.tui.widgets.latency_histogram_chart import LatencyHistogramChart
from mlstress_tui.tui.widgets.level_latency_chart import LevelLatencyChart
from mlstress_tui.tui.widgets.level_throughput_chart import LevelThroughputChart

SVG_SIZE = (120, 40)
# The fewest rows a chart is drawn in; below that the view scrolls.
MIN_CHART_ROWS = 8


def run_line(side: str, curve: RunCurve) -> Content:
    """`base  NAME · sleep:2ms · 2026-03-01 10:00 UTC, 4.0 s · DIR`: which run a side is."""
    summary = curve.record.summary
    target = (summary.get("target") or {}).get("label", "?")
    started = str(summary.get("started_at", ""))[:16].replace("T", " ")
    said = f"{curve.name} · {target} · {started} UTC, {float(summary.get('duration_s') or 0):.1f} s · {curve.path}"
    return Content.assemble((f"{side:<5}", "bold"), (" ◇ " if side == "base" else " ● ", "bold"), said)


def head_lines(base: RunCurve, new: RunCurve, document: Mapping) -> list[Content]:
    """Which run is which, what differs between them (noted, not refused), and what a side cannot show."""
    lines = [run_line("new", new), run_line("base", base)]
    noted = [f"{field} {was} → {now}" for field, was, now, _ in differences_rows(document)]
    if noted:
        lines.append(Content.styled("differs in: " + "; ".join(noted), "dim"))
    for side, curve in (("base", base), ("new", new)):
        if curve.histogram is None:
            lines.append(Content.styled(f"{side}: {curve.histogram_note}", "$warning"))
    return lines


class BaselineApp(App[None]):
    """A finished run and its baseline, full screen, to read or screenshot over SSH."""

    CSS = """
    #baseline-body {
        border: round $primary;
        border-title-color: $primary;
        border-subtitle-color: $foreground;
        padding: 0 1;
        scrollbar-size-vertical: 1;
    }
    #baseline-head { height: auto; }
    #baseline-table { height: auto; margin-top: 1; }
    #baseline-levels { height: auto; margin-top: 1; }
    #baseline-levels > .chart { width: 1fr; }
    .chart { border: round $primary 50%; border-title-color: $primary; border-subtitle-color: $foreground; }
    """
    BINDINGS = [Binding("q,escape", "quit", "Quit", id="quit")]

    def __init__(self, base: RunCurve, new: RunCurve, document: Mapping, theme: str | None = None) -> None:
        super().__init__()
        self._base, self._new, self._document = base, new, document
        self._theme_name = theme
        self.title = f"mlstress-tui: {new.name} against baseline {base.name}"

    def compose(self) -> ComposeResult:
        body = VerticalScroll(id="baseline-body")
        body.border_title = f"{self._new.name} against baseline {self._base.name}"
        body.border_subtitle = "q closes"
        with body:
            yield Static(Content("\n").join(head_lines(self._base, self._new, self._document)), id="baseline-head")
            yield Static("\n".join(line.rstrip() for line in side_by_side_lines(self._document)),
                         id="baseline-table")
            with Horizontal(id="baseline-levels"):
                yield LevelLatencyChart(id="baseline-p95", classes="chart")
                yield LevelThroughputChart(id="baseline-throughput", classes="chart")
            yield LatencyHistogramChart(id="baseline-histogram", classes="chart")

    def on_mount(self) -> None:
        for theme in load_themes().themes:
            self.register_theme(theme)
        self.theme = self._theme_name if self._theme_name in self.available_themes else DEFAULT_THEME
        self.theme_changed_signal.subscribe(self, lambda _theme: self.draw(force=True))
        self.call_after_refresh(self._size_charts)

    def on_resize(self) -> None:
        self.call_after_refresh(self._size_charts)

    def _size_charts(self) -> None:
        """The level charts and the histogram share what the head and the table leave (each at least 8 rows)."""
        used = 2 + sum(widget.outer_size.height for widget in self.query("#baseline-head, #baseline-table"))
        rows = max(MIN_CHART_ROWS, (self.size.height - used - 1) // 2)
        self.query_one("#baseline-levels").styles.height = rows
        self.query_one("#baseline-histogram").styles.height = rows
        self.call_after_refresh(self.draw, force=True)

    def draw(self, *, force: bool = False) -> None:
        base, new = self._base, self._new
        summary = new.record.summary
        mode = str((summary.get("load") or {}).get("mode") or (new.points[0].mode if new.points else "closed"))
        sla = float(summary.get("sla_p95_ms") or DEFAULT_SLA_P95_MS)
        names = {"base_name": "base", "new_name": "new"}
        self.query_one(LevelLatencyChart).show(new.curve(mode), mode, None, sla, None, base=base.curve(mode),
                                               force=force, **names)
        self.query_one(LevelThroughputChart).show(new.curve(mode), mode, None, None, None, base=base.curve(mode),
                                                  force=force, **names)
        self.query_one(LatencyHistogramChart).show(new.histogram, "whole run", sla, waiting=new.histogram_note,
                                                   base=base.histogram, base_name="base", force=force)


def show_baseline(base: RunCurve, new: RunCurve, document: Mapping, theme: str | None = None) -> None:
    """The two runs on this terminal until q."""
    BaselineApp(base, new, document, theme).run()


def save_baseline_svg(base: RunCurve, new: RunCurve, document: Mapping, directory: Path,
                      theme: str | None = None) -> Path:
    """baseline.svg: the view rendered headless at 120×40, as the app shows it."""

    async def render() -> None:
        app = BaselineApp(base, new, document, theme)
        async with app.run_test(size=SVG_SIZE) as pilot:
            await pilot.pause()
            await pilot.pause()
            app.save_screenshot(filename="baseline.svg", path=str(directory))

    asyncio.run(render())
    return directory / "baseline.svg"
