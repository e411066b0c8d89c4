"""The acceptance panel's cliff: each ramp step's p95 (log, against the SLA line) and throughput, the knee marked."""

from __future__ import annotations

from collections.abc import Mapping

from textual.app import RenderResult
from textual.content import Content
from textual.widget import Widget

from mlstress_tui.tui.text_chart import Column, column_chart, fmt_short


class CliffChart(Widget):
    """p95 and throughput against the level of a ramp (or the levels a run visited), or why there is none."""

    DEFAULT_CSS = """
    CliffChart { height: auto; }
    """

    def __init__(self, cliff: Mapping | None, *, rows: int, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self._cliff = cliff
        self.rows = rows

    def render(self) -> RenderResult:
        cliff = self._cliff
        width = self.content_size.width
        if not cliff:
            return Content.assemble(("cliff: ", "bold"),
                                    ("no ramp and no levels to compare (a ramp stage, or r on the dashboard)", "dim"))
        open_loop = cliff["mode"] == "open"
        unit = "req/s" if open_loop else "users"
        sla = cliff.get("sla_p95_ms")
        steps = cliff["steps"]
        columns = [Column(fmt_short(step["level"]), step.get("p95_ms"), step.get("throughput_rps"),
                          failed=bool(step.get("error_rate")) and step["error_rate"] > 0.01)
                   for step in steps]
        knee = cliff.get("knee")
        mark = next((index for index, step in enumerate(steps) if knee is not None and step["level"] == knee), None)
        title = Content.assemble((f"{cliff['stage']}: ", "bold"), (f"p95 by {unit}, ┄ SLA", "dim"))
        if sla is None:
            return Content("\n").join([title, Content.styled("no SLA to draw against", "dim")])
        lines = column_chart(columns, budget_ms=float(sla), rows=self.rows, width=width, mark=mark,
                             mark_text=f"knee {fmt_short(knee)}" if knee is not None else "", x_title=unit)
        if knee is None:
            lines.append(Content.styled("no knee: no step within the SLA where throughput grew", "dim"))
        return Content("\n").join([title, *lines])
