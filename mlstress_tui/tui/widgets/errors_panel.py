"""Errors by kind: counts in the last second and overall, and the last message of each kind."""

from __future__ import annotations

from collections.abc import Iterable

from textual.content import Content
from textual.widgets import Static

from mlstress_tui.results.interval_stats import IntervalStats
from mlstress_tui.tui.format import fmt_count

MAX_KINDS = 6


class ErrorsPanel(Static):
    """Recent errors, the most frequent kinds first."""

    def on_mount(self) -> None:
        self.border_title = "errors"
        self.show(None, None, [])

    def show(self, interval: IntervalStats | None, total: IntervalStats | None,
             recent: Iterable[tuple[float, str, str]], faults: Iterable[str] = ()) -> None:
        # Faults of the measurement itself come first: a dead worker, users stuck, the target's output.
        lines = [Content.assemble(("! ", "bold $warning"), (fault, "$warning")) for fault in faults]
        totals = total.errors_by_kind if total else {}
        if not totals:
            lines.append(Content.styled("no errors", "dim"))
            self._show(Content("\n").join(lines))
            return
        last_message: dict[str, str] = {}
        for _, kind, message in recent:
            last_message[kind] = message
        now = interval.errors_by_kind if interval else {}
        kinds = sorted(totals, key=lambda kind: (-totals[kind], kind))
        for kind in kinds[:MAX_KINDS]:
            # Spaces trail segments (an SVG renderer drops a segment's leading spaces).
            lines.append(Content.assemble(
                (kind + " ", "bold $error"), f"{fmt_count(totals[kind])} ",
                (f"({fmt_count(now.get(kind, 0))} in last 1 s)", "dim"),
            ))
            if kind in last_message:
                lines.append(Content.assemble(("  └ ", "dim"), (last_message[kind].splitlines()[0] if last_message[kind] else "", "italic")))
        if len(kinds) > MAX_KINDS:
            lines.append(Content.styled(f"… and {len(kinds) - MAX_KINDS} more kinds", "dim"))
        self._show(Content("\n").join(lines))

    def _show(self, content: Content) -> None:
        if content == getattr(self, "_content", None):
            return
        relayout = len(content.split("\n")) != getattr(self, "_lines", 0)
        self._content, self._lines = content, len(content.split("\n"))
        self.update(content, layout=relayout)
