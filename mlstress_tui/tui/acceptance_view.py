"""The acceptance panel outside the dashboard: its own small app (`show`, the end of `accept`), its SVG, its text."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer

from mlstress_tui.report.acceptance_report import end_summary, outcome, validity_summary
from mlstress_tui.stages import format_metric
from mlstress_tui.tui.themes import DEFAULT_THEME, load_themes
from mlstress_tui.tui.widgets.acceptance_panel import AcceptancePanel

# The panel's screenshot size: it must fit the smallest terminal the README promises.
SVG_SIZE = (80, 24)


class AcceptanceApp(App[None]):
    """A finished run's acceptance panel, full screen, to read or screenshot over SSH."""

    CSS = """
    AcceptancePanel { border: round $primary; padding: 0 1; height: auto; }
    """
    BINDINGS = [Binding("q,escape", "quit", "Quit", id="quit")]

    def __init__(self, report: dict, theme: str | None = None) -> None:
        super().__init__()
        self._report = report
        self._theme_name = theme

    def compose(self) -> ComposeResult:
        yield AcceptancePanel()
        yield Footer()

    def on_mount(self) -> None:
        for theme in load_themes().themes:
            self.register_theme(theme)
        self.theme = self._theme_name if self._theme_name in self.available_themes else DEFAULT_THEME
        panel = self.query_one(AcceptancePanel)
        panel.border_title = "mlstress-tui acceptance"
        panel.show(self._report)


def show_acceptance(report: dict, theme: str | None = None) -> None:
    """The panel on this terminal until q."""
    AcceptanceApp(report, theme).run()


def save_acceptance_svg(report: dict, directory: Path, theme: str | None = None) -> Path:
    """acceptance.svg: the panel rendered headless at 80x24, exactly as the app shows it."""

    async def render() -> None:
        app = AcceptanceApp(report, theme)
        async with app.run_test(size=SVG_SIZE) as pilot:
            await pilot.pause()
            app.save_screenshot(filename="acceptance.svg", path=str(directory))

    asyncio.run(render())
    return directory / "acceptance.svg"


def acceptance_text(report: dict) -> str:
    """The verdict, the criteria, how the stages ended and whether they are vouched for, as plain lines for a log or a CI console."""
    lines = [f"acceptance {report['verdict']}: {report['passed']} of {len(report['criteria'])} criteria passed "
             f"(preset {report['preset']})"]
    for criterion in report["criteria"]:
        threshold = f"{criterion['op']} {format_metric(criterion['metric'], criterion['threshold'])}"
        lines.append(f"  {outcome(criterion):<10}  {criterion['stage']:10} "
                     f"{criterion['metric']:22} {format_metric(criterion['metric'], criterion['measured']):>12}  "
                     f"vs {threshold}" + (f"  ({criterion['note']})" if criterion["note"] else ""))
    ended = end_summary(report)
    if ended:
        lines.append(f"  not finished: {ended}")
    lines.append(f"  {validity_summary(report)[1]}")
    return "\n".join(lines)
