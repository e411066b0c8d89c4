"""The `?` overlay: every key, what it does, and whether it applies right now."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static


class HelpScreen(ModalScreen[None]):
    """Lists the dashboard's keys; escape or ? closes it."""

    BINDINGS = [
        Binding("escape,question_mark", "dismiss", "Close help", id="close-help"),
    ]

    def __init__(self, rows: list[tuple[str, str, str, bool]], sla_p95_ms: float) -> None:
        super().__init__()
        self._rows = rows
        self._sla = sla_p95_ms

    def compose(self) -> ComposeResult:
        lines = [Content.styled("Keys", "bold"), Content("")]
        for key, description, detail, enabled in self._rows:
            line = Content.assemble((key.ljust(8), "bold"), description.ljust(18), (detail, "dim"))
            lines.append(line if enabled else line.stylize("dim strike"))
        lines += [
            Content(""),
            Content.assemble(("SLA light: ", "bold"), f"p95 of the last second against {self._sla:g} ms."),
            Content("Interval columns cover the last ~1 s of ticks; 'whole run' is cumulative."),
            Content("Harness lag: how late the workers' own 5 ms timer wakes (p99). Latencies of that order"),
            Content("include delay from the tool or a busy machine, not only from the system under test."),
            Content("Arrow keys / PgUp / PgDn scroll the panels on small terminals."),
            Content(""),
            Content.styled("escape or ? closes this help", "dim"),
        ]
        with VerticalScroll(id="help-body"):
            yield Static(Content("\n").join(lines), id="help-text")
