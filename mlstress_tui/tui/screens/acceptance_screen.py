"""The `a` overlay and the final screen of `accept` and `show`: the acceptance panel of a whole run."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen

from mlstress_tui.tui.widgets.acceptance_panel import AcceptancePanel


class AcceptanceScreen(ModalScreen[None]):
    """One report's acceptance panel; escape or a closes it."""

    BINDINGS = [Binding("escape,a", "dismiss", "Close", id="close-acceptance")]

    def __init__(self, report: dict) -> None:
        super().__init__()
        self._report = report

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="acceptance-body"):
            yield AcceptancePanel(id="acceptance-panel")

    def on_mount(self) -> None:
        panel = self.query_one(AcceptancePanel)
        panel.border_title = "acceptance"
        panel.show(self._report)
