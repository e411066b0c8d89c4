"""The `a` overlay: the acceptance panel of the whole run so far, judged against its SLA."""

from __future__ import annotations

from textual.app import ComposeResult

from mlstress_tui.tui.screens.overlay import Overlay
from mlstress_tui.tui.widgets.acceptance_panel import AcceptancePanel


class AcceptanceScreen(Overlay):
    """One report's acceptance panel; escape or a closes it, s shoots it."""

    OWN_KEY = "a"
    TITLE_TEXT = "acceptance"

    def __init__(self, report: dict) -> None:
        super().__init__()
        self._report = report

    def body(self) -> ComposeResult:
        yield AcceptancePanel(self._report, id="acceptance-panel")

    def close_hint(self) -> str:
        return "esc or a closes · s saves it as SVG · other keys act on the dashboard"
