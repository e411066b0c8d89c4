"""The acceptance panel outside the dashboard: its own small app (`show`, the end of `accept`), its SVG, its text."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll

from mlstress_tui.report.acceptance_report import baseline_figures, end_summary, outcome, validity_summary
from mlstress_tui.stages import format_metric
from mlstress_tui.tui.themes import DEFAULT_THEME, load_themes
from mlstress_tui.tui.widgets.acceptance_panel import AcceptancePanel

# The panel's screenshot size: the smallest terminal the README promises; taller when the panel needs it.
SVG_SIZE = (80, 24)


class AcceptanceApp(App[None]):
    """A finished run's acceptance panel, full screen, to read or screenshot over SSH."""

    CSS = """
    #acceptance-body {
        border: round $primary;
        border-title-color: $primary;
        border-subtitle-color: $foreground;
        padding: 0 1;
        height: auto;
        max-height: 100%;
        scrollbar-size-vertical: 1;
    }
    """
    BINDINGS = [Binding("q,escape", "quit", "Quit", id="quit")]

    def __init__(self, report: dict, theme: str | None = None) -> None:
        super().__init__()
        self._report = report
        self._theme_name = theme
        # The SVG's window title: what the picture is, not the class that drew it.
        self.title = f"mlstress-tui acceptance: {report.get('verdict', '?')} (preset {report.get('preset', '?')})"

    def compose(self) -> ComposeResult:
        body = VerticalScroll(id="acceptance-body")
        body.border_title = "mlstress-tui acceptance"
        body.border_subtitle = "q closes"
        with body:
            yield AcceptancePanel(self._report, id="acceptance-panel")

    def on_mount(self) -> None:
        for theme in load_themes().themes:
            self.register_theme(theme)
        self.theme = self._theme_name if self._theme_name in self.available_themes else DEFAULT_THEME


def show_acceptance(report: dict, theme: str | None = None) -> None:
    """The panel on this terminal until q."""
    AcceptanceApp(report, theme).run()


def save_acceptance_svg(report: dict, directory: Path, theme: str | None = None) -> Path:
    """acceptance.svg: the panel rendered headless at 80 columns, exactly as the app shows it, as tall as it needs
    (24 lines unless it has more to say)."""

    async def render() -> None:
        app = AcceptanceApp(report, theme)
        async with app.run_test(size=SVG_SIZE) as pilot:
            await pilot.pause()
            needed = app.query_one("#acceptance-panel").outer_size.height + 2
            if needed > SVG_SIZE[1]:
                await pilot.resize_terminal(SVG_SIZE[0], needed)
                await pilot.pause()
            app.save_screenshot(filename="acceptance.svg", path=str(directory))

    asyncio.run(render())
    return directory / "acceptance.svg"


def acceptance_text(report: dict) -> str:
    """The verdict, the criteria, how the stages ended and whether they are vouched for, as plain lines for a log or a CI console."""
    lines = [f"acceptance {report['verdict']}: {report['passed']} of {len(report['criteria'])} criteria passed "
             f"(preset {report['preset']})"]
    baseline = report.get("baseline")
    if baseline:
        lines.append(f"  baseline {baseline.get('dir')} ({baseline.get('label') or 'no label'}, "
                     f"{baseline.get('verdict', '?')}): base → measured, change")
    for criterion in report["criteria"]:
        threshold = f"{criterion['op']} {format_metric(criterion['metric'], criterion['threshold'])}"
        measured = format_metric(criterion["metric"], criterion["measured"])
        if baseline and "baseline" in criterion:
            base, measured, change = baseline_figures(criterion)
            measured = f"{base:>12} → {measured:>12} {change:>7}"
        lines.append(f"  {outcome(criterion):<10}  {criterion['stage']:10} "
                     f"{criterion['metric']:22} {measured:>12}  "
                     f"vs {threshold}" + (f"  ({criterion['note']})" if criterion["note"] else ""))
    ended = end_summary(report)
    if ended:
        lines.append(f"  not finished: {ended}")
    lines.append(f"  {validity_summary(report)[1]}")
    return "\n".join(lines)
