"""The `?` overlay: every key, what it does, and whether it applies right now (or why not)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.content import Content
from textual.widgets import Static

from mlstress_tui.tui.screens.overlay import Overlay

# The body is 70 columns inside the box's border and padding (76 wide at most): details wrap under their column.
TEXT_WIDTH = 70
KEY_WIDTH = 4
DETAIL_COLUMN = 12
NOTES = (
    "Interval columns cover the last ~1 s of ticks; 'whole run' is cumulative.",
    "Harness lag: how late the workers' own 5 ms timer wakes (p99). Latencies of that order include delay "
    "from the tool or a busy machine, not only from the system under test.",
    "Arrow keys, PgUp and PgDn scroll the dashboard (and this help) on small terminals. Ctrl-P opens the command "
    "palette with the same keys.",
)


@dataclass(frozen=True)
class KeyRow:
    """One key as help lists it: `enabled` False is dimmed, with `why` it does not apply now."""

    key: str
    name: str
    detail: str
    enabled: bool = True
    why: str = ""


class HelpScreen(Overlay):
    """Lists the dashboard's keys; escape or ? closes it, the other keys act on the dashboard."""

    OWN_KEY = "question_mark"
    OWN_KEY_DISPLAY = "?"
    TITLE_TEXT = "keys"

    def __init__(self, rows: Sequence[KeyRow], sla_p95_ms: float) -> None:
        super().__init__()
        self._rows = rows
        self._sla = sla_p95_ms

    def body(self) -> ComposeResult:
        lines: list[Content] = []
        for row in self._rows:
            detail = row.detail + (f" ({row.why})" if row.why else "")
            wrapped = textwrap.wrap(detail, TEXT_WIDTH - DETAIL_COLUMN) or [""]
            first = Content.assemble((row.key.ljust(KEY_WIDTH), "bold"), row.name.ljust(DETAIL_COLUMN - KEY_WIDTH),
                                     (wrapped[0], "dim"))
            # The indent is a segment of its own: an SVG renderer drops a segment's leading spaces.
            rows = [first] + [Content.assemble(" " * DETAIL_COLUMN, (more, "dim")) for more in wrapped[1:]]
            lines += [line if row.enabled else line.stylize("dim") for line in rows]
        lines.append(Content(""))
        lines.append(Content.assemble(("SLA light: ", "bold"), f"p95 of the last second against {self._sla:g} ms."))
        for paragraph in NOTES:
            lines += [Content(line) for line in textwrap.wrap(paragraph, TEXT_WIDTH)]
        yield Static(Content("\n").join(lines), id="overlay-text")
