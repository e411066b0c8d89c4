"""Each acceptance criterion on one line: its result, what was measured against its threshold, and a gauge.

The gauge puts the threshold in its middle (┃) and the measurement as a bar
on the same scale (▶ when it runs off the end), green when the criterion
passed and red when it failed; the words PASS/FAIL say it without colour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from textual.app import RenderResult
from textual.content import Content
from textual.widget import Widget

from mlstress_tui.report.acceptance_report import baseline_figures, outcome
from mlstress_tui.stages import format_metric

# A criterion's mark (four columns, so the table keeps its place): NOT JUDGED is shown as dashes.
MARKS = {"PASS": ("PASS", "bold $success"), "FAIL": ("FAIL", "bold $error"), "NOT JUDGED": ("----", "bold $warning")}
MEASURED_WIDTH = 11
MIN_GAUGE = 8
MAX_GAUGE = 30


def gauge(measured: float | None, threshold: float, passed: bool, width: int) -> Content:
    """`width` cells: the threshold at the middle (or the left end for a threshold of 0), the measurement a bar."""
    if measured is None:
        return Content.styled("not measured".ljust(width)[:width], "dim")
    style = "$success" if passed else "$error"
    if threshold > 0:
        scale, marker = 2.0 * threshold, width // 2
    else:
        scale, marker = max(abs(measured), 1.0) * 2.0, 0
    filled = min(width, round(max(measured, 0.0) / scale * width)) if scale > 0 else 0
    overflow = measured > scale
    parts: list[tuple[str, str]] = []
    for cell in range(width):
        on_bar = cell < filled
        if cell == marker:
            parts.append(("┃", f"bold $foreground on {style}" if on_bar else "bold $foreground"))
        elif overflow and cell == width - 1:
            parts.append(("▶", f"bold {style}"))
        elif on_bar:
            parts.append(("█", f"{style} on {style}"))
        else:
            parts.append(("─", "dim"))
    return Content.assemble(*parts)


def criterion_lines(criteria: Sequence[Mapping], width: int) -> list[Content]:
    """One line per criterion (a gauge when there is room), and under a failed one the note that says why."""
    if not criteria:
        return [Content.styled("no criteria: nothing to judge", "dim")]
    stage_width = max(len(c["stage"]) for c in criteria)
    metric_width = min(max(len(c["metric"]) for c in criteria), 20)
    thresholds = [f"{c['op']} {format_metric(c['metric'], c['threshold'])}" for c in criteria]
    # With a baseline: its measurement before this one, and the change (report.baseline_figures says both).
    befores = [baseline_figures(c) if "baseline" in c else None for c in criteria]
    with_base = any(before is not None for before in befores)
    measured_width = MEASURED_WIDTH
    if with_base:
        # Three figures where there was one: each column as wide as its widest cell, so 80 columns still hold a line.
        figures = [before for before in befores if before is not None]
        base_width = max(len(before[0]) for before in figures)
        change_width = max(len(before[2]) for before in figures)
        measured_width = max(len(format_metric(c["metric"], c["measured"])) for c in criteria)
    fixed = 4 + 2 + stage_width + 2 + metric_width + 1 + measured_width + 2 + max(map(len, thresholds)) + 1
    if with_base:
        fixed += base_width + len(" → ") + change_width + 2
    room = min(width - fixed, MAX_GAUGE) if width else MAX_GAUGE
    lines = []
    for criterion, threshold, before in zip(criteria, thresholds, befores):
        result = outcome(criterion)
        mark = MARKS[result]
        measured = format_metric(criterion["metric"], criterion["measured"])
        # Padding trails each cell, so an SVG viewer that trims leading spaces keeps the columns.
        parts: list[tuple[str, str] | str | Content] = [
            (mark[0] + "  ", mark[1]), (criterion["stage"].ljust(stage_width) + "  ", "bold"),
            criterion["metric"][:metric_width].ljust(metric_width) + " "]
        if with_base:
            base, _, change = before if before is not None else ("", "", "")
            parts += [(" " * (base_width - len(base)) + base, "dim"), (" → ", "dim")]
        parts += [" " * (measured_width - len(measured)), (measured + "  ", "bold")]
        if with_base:
            parts.append((change.rjust(change_width) + "  ", "bold"))
        if room >= MIN_GAUGE and result != "NOT JUDGED":
            parts += [gauge(criterion["measured"], float(criterion["threshold"]), result == "PASS", room), " "]
        elif result == "NOT JUDGED" and room >= MIN_GAUGE:
            parts.append(("not judged".ljust(room) + " ", "dim"))
        parts.append((threshold, "dim"))
        lines.append(Content.assemble(*parts))
        if criterion.get("note") and result == "FAIL":
            note = Content.styled(f"      {criterion['note']}", "dim")
            lines.append(note.truncate(width, ellipsis=True) if width else note)
    return lines


class CriteriaGauges(Widget):
    """The criteria of one report, drawn to the width they are given."""

    DEFAULT_CSS = """
    CriteriaGauges { height: auto; }
    """

    def __init__(self, criteria: Sequence[Mapping], *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self._criteria = criteria

    def render(self) -> RenderResult:
        return Content("\n").join(criterion_lines(self._criteria, self.content_size.width))
