"""The acceptance panel's heavy users: each stratum's p95 (log, against the budget) and where the breach starts."""

from __future__ import annotations

from collections.abc import Mapping

from textual.app import RenderResult
from textual.content import Content
from textual.widget import Widget

from mlstress_tui.tui.text_chart import Column, column_chart, fmt_short

# The top tiers' names, short enough for a column.
TIER_LABELS = {"top 1%": "1%", "top 0.1%": ".1%"}


def stratum_label(row: Mapping) -> str:
    """A stratum as an x label: its lowest event count, or its tier."""
    if row["name"] in TIER_LABELS:
        return TIER_LABELS[row["name"]]
    if row["name"].startswith("heaviest"):
        return "max"
    low = row.get("min_events")
    return fmt_short(low) if low is not None else row["name"]


class StrataChart(Widget):
    """p95 per stratum of users by event count against the budget, the breach marked, or why there is none."""

    DEFAULT_CSS = """
    StrataChart { height: auto; }
    """

    def __init__(self, heavy: Mapping | None, *, rows: int, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self._heavy = heavy
        self.rows = rows

    def render(self) -> RenderResult:
        heavy = self._heavy
        width = self.content_size.width
        if not heavy:
            return Content.assemble(("heavy users: ", "bold"),
                                    ("not measured (an outliers stage, or o on the dashboard)", "dim"))
        strata = heavy["strata"]
        budget = heavy.get("threshold_ms")
        failing = heavy.get("failing")
        columns = [Column(stratum_label(row), row.get("p95_ms"),
                          failed=bool(failing) and bool(row.get("errors")) and row.get("p95_ms") is None)
                   for row in strata]
        breach = heavy.get("breach_event_count")
        mark = None
        if breach is not None:
            starts = [index for index, row in enumerate(strata) if (row.get("min_events") or 0) <= breach]
            mark = starts[-1] if starts else 0
        title = Content.assemble((f"{heavy['stage']}: ", "bold"), ("p95 by events, ┄ budget", "dim"))
        if budget is None:
            return Content("\n").join([title, Content.styled("no budget to draw against", "dim")])
        lines = column_chart(columns, budget_ms=float(budget), rows=self.rows, width=width, mark=mark,
                             mark_text=f"breach {breach:,} events" if breach is not None else "", x_title="events")
        if failing:
            lines.append(Content.styled(failing, "bold $error").truncate(width, ellipsis=True) if width
                         else Content.styled(failing, "bold $error"))
        elif breach is None:
            lines.append(Content.styled(f"no stratum past p95 {budget:g} ms", "$success"))
        else:
            users = heavy.get("users_above")
            share = heavy.get("population_share_above")
            if users is not None and share is not None:
                said = f"{share:.2%}" if share >= 0.0001 else "under 0.01%"
                lines.append(Content.styled(f"{users:,} user{'s' * (users != 1)} ({said}) past it", "$error"))
        return Content("\n").join([title, *lines])
