"""Small column charts drawn in text for the acceptance panel: crisp in a terminal, in NO_COLOR and in an SVG.

One column per step (a ramp's levels, heavy-user strata): its p95 as a bar on
a log axis, a dashed line at the budget, bars past it drawn in another glyph
(so the breach reads without colour), a row of throughput as eighth-blocks, the
x labels and a marker row (the knee, the breach). Figures are the caller's;
this only places them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from textual.content import Content

WITHIN = "█"
OVER = "▓"
LINE = "┄"
EIGHTHS = " ▁▂▃▄▅▆▇█"
LABEL_WIDTH = 7


@dataclass(frozen=True)
class Column:
    """One step: its x label, its p95 (None when nothing answered), and optionally its throughput."""

    label: str
    p95_ms: float | None
    throughput_rps: float | None = None
    failed: bool = False  # its failures alone break the budget (drawn as over, whatever its p95)


def fmt_axis_ms(value: float) -> str:
    """A latency on an axis, short: `0.3 ms`, `12 ms`, `1.2 s`."""
    if value >= 1000:
        return f"{value / 1000:.3g} s"
    return f"{value:.2g} ms" if value < 10 else f"{value:.0f} ms"


def fmt_short(value: float) -> str:
    """A count or a level in three characters or so: `8`, `250`, `1.5k`, `12k`, `1.2M`."""
    if value >= 1e6:
        return f"{value / 1e6:.2g}M"
    if value >= 1e3:
        return f"{value / 1e3:.2g}k"
    return f"{value:.3g}"


def column_width(columns: int, width: int) -> int:
    """Cells per column that fit `width` beside the axis labels (0 when even two do not)."""
    if columns == 0:
        return 0
    cells = (width - LABEL_WIDTH - 1) // columns
    return min(cells, 6) if cells >= 2 else 0


def x_labels(columns: Sequence[Column], cell: int) -> list[tuple[str, str]]:
    """Each column's label ending under its bar (a label that would run into the one before it is left out), as
    (pad, label) segments: the pads styled apart, since an SVG renderer drops a text's leading spaces."""
    parts: list[tuple[str, str]] = []
    free = 0  # the first cell not yet written
    for index, column in enumerate(columns):
        end = (index + 1) * cell
        start = end - len(column.label)
        if start < free + (1 if free else 0):
            continue
        parts += [(" " * (start - free), "dim"), (column.label, "")]
        free = end
    return parts


def column_chart(columns: Sequence[Column], *, budget_ms: float, rows: int, width: int, mark: int | None = None,
                 mark_text: str = "", x_title: str = "", colours: tuple[str, str, str] = ("$success", "$error",
                                                                                            "$warning")) -> list[Content]:
    """The chart's lines: `rows` rows of bars, the throughput row (when any column has one), x labels, the mark row.

    `mark`: the index of the column to point at (the knee, the breach) with `mark_text` beside the arrow.
    """
    cell = column_width(len(columns), width)
    values = [c.p95_ms for c in columns if c.p95_ms]
    if not cell or not values or rows < 2:
        return [Content.styled("too narrow to draw: see the report", "dim")]
    within_style, over_style, line_style = colours
    top = max([*values, budget_ms])
    floor = min([*values, budget_ms]) / 2
    span = math.log10(top / floor) or 1.0

    def row_of(value: float) -> int:
        """The row (0 at the bottom) a value's bar reaches: the rows whose lower edge lies below it."""
        return max(0, min(rows - 1, math.ceil(math.log10(value / floor) / span * rows) - 1))

    budget_row = row_of(budget_ms)
    lines: list[Content] = []
    for row in range(rows - 1, -1, -1):
        # Two labels on a log axis: the top (the highest p95 or the budget) and the budget's own row.
        label = fmt_axis_ms(budget_ms) if row == budget_row else fmt_axis_ms(top) if row == rows - 1 else ""
        axis = "┼" if row == budget_row else "│"
        parts: list[tuple[str, str] | str] = [(f"{label:>{LABEL_WIDTH}}", "dim"), (axis, "dim")]
        for column in columns:
            filler = LINE if row == budget_row else " "
            value = column.p95_ms
            if value and row <= row_of(value):
                over = column.failed or value > budget_ms
                parts.append((filler * (cell - 1), line_style if row == budget_row else ""))
                # A bar within the budget is solid (its colour as background too: an SVG renderer leaves gaps
                # between rows of glyphs); one past it keeps the shade glyph's texture, which reads without colour.
                parts.append((OVER, f"bold {over_style}") if over else (WITHIN, f"{within_style} on {within_style}"))
            else:
                parts.append((filler * cell, line_style if row == budget_row else ""))
        lines.append(Content.assemble(*parts))
    throughputs = [c.throughput_rps for c in columns]
    if any(throughputs):
        best = max(value or 0.0 for value in throughputs)
        cells = [part for value in throughputs
                 for part in ((" " * (cell - 1), "dim"), (EIGHTHS[round((value or 0.0) / best * 8)], "$accent"))]
        # The row's scale is its label: a full block is the best throughput, from 0.
        lines.append(Content.assemble((f"{fmt_short(best) + '/s':>{LABEL_WIDTH}} ", "dim"), *cells))
    lines.append(Content.assemble((f"{x_title[:LABEL_WIDTH]:>{LABEL_WIDTH}} ", "dim"), *x_labels(columns, cell)))
    if mark is not None and 0 <= mark < len(columns):
        at = LABEL_WIDTH + 1 + (mark + 1) * cell - 1
        text = f"▲ {mark_text}"
        if at + len(text) > width:  # the arrow, and the words to its left where they do not fit to its right
            start = max(at - len(mark_text) - 1, 0)
            lines.append(Content.assemble((" " * start, "dim"), (f"{mark_text} ▲", "bold")))
        else:
            lines.append(Content.assemble((" " * at, "dim"), (text, "bold")))
    return lines
