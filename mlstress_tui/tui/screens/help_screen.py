"""The `?` overlay: every key, what it does, and whether it applies right now."""

from __future__ import annotations

import textwrap

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static


TEXT_WIDTH = 68
KEY_WIDTH = 8
DETAIL_COLUMN = 24
NOTES = (
    "Interval columns cover the last ~1 s of ticks; 'whole run' is cumulative.",
    "Harness lag: how late the workers' own 5 ms timer wakes (p99). Latencies of that order include delay "
    "from the tool or a busy machine, not only from the system under test.",
    "Arrow keys, PgUp and PgDn scroll the panels on small terminals.",
)


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
        # The body is about 70 columns inside its border and scrollbar: details wrap under their own column, never under the keys.
        lines = [Content.styled("Keys", "bold"), Content("")]
        for key, description, detail, enabled in self._rows:
            wrapped = textwrap.wrap(detail, TEXT_WIDTH - DETAIL_COLUMN) or [""]
            first = Content.assemble((key.ljust(KEY_WIDTH), "bold"), description.ljust(DETAIL_COLUMN - KEY_WIDTH),
                                     (wrapped[0], "dim"))
            rows = [first] + [Content.styled(" " * DETAIL_COLUMN + more, "dim") for more in wrapped[1:]]
            lines += [row if enabled else row.stylize("dim strike") for row in rows]
        lines.append(Content(""))
        lines.append(Content.assemble(("SLA light: ", "bold"), f"p95 of the last second against {self._sla:g} ms."))
        for paragraph in NOTES:
            lines += [Content(line) for line in textwrap.wrap(paragraph, TEXT_WIDTH)]
        lines += [Content(""), Content.styled("escape or ? closes this help", "dim")]
        with VerticalScroll(id="help-body"):
            yield Static(Content("\n").join(lines), id="help-text")
