"""Errors by kind: counts in the last second and overall, the last message of each kind, and what went wrong.

What holds now (users stuck, the pool as the bottleneck, a queue that does not
drain, a preset that missed its point) is said whole, wrapped. Events that
happened (a stall, a worker that died) and error messages take one line each,
cut to the panel's width; the run log (`l`) has each whole.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual.content import Content
from textual.widgets import Static

from mlstress_tui.results.interval_stats import IntervalStats
from mlstress_tui.tui.format import fmt_count

MAX_KINDS = 6
CUT_HINT = "l: whole lines"


class ErrorsPanel(Static):
    """The measurement's own state first, then recent faults, then errors, the most frequent kinds first."""

    def on_mount(self) -> None:
        self.border_title = "errors"
        self._shown: tuple[object, ...] = ()
        self.show(None, None, [])

    def show(self, interval: IntervalStats | None, total: IntervalStats | None,
             recent: Iterable[tuple[float, str, str]], faults: Iterable[str] = (), states: Iterable[str] = ()) -> None:
        width = self.content_size.width
        recent, faults, states = list(recent), list(faults), list(states)
        shown = (width, interval and interval.index, total and total.requests, len(recent), faults, states,
                 total and tuple(sorted(total.errors_by_kind.items())))
        if shown == self._shown:
            return
        self._shown = shown
        lines: list[Content] = []
        cut = False

        def one_line(content: Content) -> Content:
            nonlocal cut
            if width and content.cell_length > width:
                cut = True
                return content.truncate(width, ellipsis=True)
            return content

        for state in states:
            lines += Content.assemble(("! ", "bold $warning"), (state, "bold $warning")).wrap(width or 1000)
        for fault in faults:
            lines.append(one_line(Content.assemble(("! ", "bold $warning"), (fault, "$warning"))))
        totals = total.errors_by_kind if total else {}
        if not totals:
            lines.append(Content.styled("no errors", "dim"))
        else:
            last_message: dict[str, str] = {}
            for _, kind, message in recent:
                last_message[kind] = message
            now = interval.errors_by_kind if interval else {}
            kinds = sorted(totals, key=lambda kind: (-totals[kind], kind))
            for kind in kinds[:MAX_KINDS]:
                # Spaces trail segments (an SVG renderer drops a segment's leading spaces).
                lines.append(one_line(Content.assemble(
                    (kind + " ", "bold $error"), f"{fmt_count(totals[kind])} ",
                    (f"({fmt_count(now.get(kind, 0))} in last 1 s)", "dim"))))
                if last_message.get(kind):
                    lines.append(one_line(Content.assemble(("└ ", "dim"),
                                                           (last_message[kind].splitlines()[0], "italic"))))
            if len(kinds) > MAX_KINDS:
                lines.append(Content.styled(f"… and {len(kinds) - MAX_KINDS} more kinds", "dim"))
        self.border_subtitle = CUT_HINT if cut else ""
        # A re-layout of the screen costs more than the repaint: only a change in the number of lines needs one.
        relayout = len(lines) != getattr(self, "_lines", 0)
        self._lines = len(lines)
        self.update(Content("\n").join(lines), layout=relayout)
