"""The acceptance panel people screenshot: the verdict and whose run it is, each criterion against its threshold,
the cliff and the heavy users, and whether the harness vouches for the numbers.

Everything on it is read from one report document (report.json's, or a plain
run's built by session/run_acceptance.py); it computes nothing. It reads at
80×24 and 120×40, in every theme and in NO_COLOR (the words and glyphs say what
the colours say), and in acceptance.svg.
"""

from __future__ import annotations

from collections.abc import Mapping

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Static

from mlstress_tui.report.acceptance_report import end_summary, validity_summary
from mlstress_tui.stages import FAIL, INCOMPLETE, PASS
from mlstress_tui.tui.widgets.cliff_chart import CliffChart
from mlstress_tui.tui.widgets.criteria_gauges import CriteriaGauges
from mlstress_tui.tui.widgets.strata_chart import StrataChart

# The verdict badge's colour: only PASS is green; INCOMPLETE is not a pass, and not a failure of the system either.
VERDICT_STYLE = {PASS: "bold reverse $success", FAIL: "bold reverse $error", INCOMPLETE: "bold reverse $warning"}
# Below this width the two charts stand one above the other.
SIDE_BY_SIDE = 70
# The longest a state line may run before it is cut (two lines of an 80-column panel).
LINE_CHARS = 140


def _clipped(text: str, limit: int = LINE_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + " …"


def identity(report: Mapping) -> list[Content]:
    """Whose run this is: the target and its database (with the database's own seed), the preset, the tool's
    version, the label of the system under test, when it ran and for how long."""
    target = report.get("target") or {}
    database = report.get("database") or {}
    what = [f"{target.get('label', '?')} ({target.get('kind', '?')})"]
    data = []
    if database.get("users") is not None:
        data.append(f"{database['users']:,} users")
    if database.get("events") is not None:
        data.append(f"{database['events']:,} events")
    if database.get("seed") is not None:
        data.append(f"seed {database['seed']}")
    if data:
        what.append("db " + ", ".join(data))
    how = [f"preset {report.get('preset', '?')}"]
    if report.get("run_preset"):
        how[0] += f" (run from preset {report['run_preset']})"
    how.append(f"requests seed {report.get('seed')}")
    if report.get("tool_version"):
        how.append(f"mlstress-tui {report['tool_version']}")
    started = str(report.get("started_at", ""))[:16].replace("T", " ")
    how.append(f"{started} UTC, {float(report.get('duration_s') or 0):.1f} s")
    return [Content(" · ".join(what)), Content.styled(" · ".join(how), "dim")]


def head_lines(report: Mapping) -> list[Content]:
    """The verdict badge and the count, the run's label, whose run it is, and how the stages ended and are vouched for."""
    verdict = report.get("verdict", "?")
    criteria = report.get("criteria", [])
    badge = Content.assemble(
        (f" {verdict} ", VERDICT_STYLE.get(verdict, "bold reverse $error")),
        (f"  {report.get('passed', 0)} of {len(criteria)} criteria passed", "bold"))
    if report.get("label"):
        badge = Content.assemble(badge, ("  label ", "dim"), (str(report["label"]), "bold"))
    lines = [badge, *identity(report)]
    baseline = report.get("baseline")
    if baseline:
        said = " · ".join(str(part) for part in (baseline.get("label"), baseline.get("verdict"),
                                                  str(baseline.get("started_at") or "")[:16].replace("T", " "))
                          if part)
        lines.append(Content.styled(_clipped(f"against baseline {baseline.get('dir')} ({said}): base → now, change"),
                                    "dim"))
    ended = end_summary(report)
    if ended:
        style = "$warning" if verdict == INCOMPLETE else "$error"
        lines.append(Content.styled(_clipped(f"not finished: {ended}"), style))
    vouched, said = validity_summary(report)
    lines.append(Content.styled(_clipped(said), "$success" if vouched else "bold $warning"))
    return lines


class AcceptancePanel(Vertical):
    """One report's panel: the whole run (or suite), never the last second."""

    DEFAULT_CSS = """
    AcceptancePanel { height: auto; }
    AcceptancePanel #acceptance-head { height: auto; }
    AcceptancePanel #acceptance-criteria { margin-top: 1; }
    AcceptancePanel #acceptance-charts { height: auto; margin-top: 1; }
    AcceptancePanel #acceptance-charts > Widget { width: 1fr; }
    AcceptancePanel #acceptance-charts > #acceptance-cliff { margin-right: 2; }
    AcceptancePanel.-stacked #acceptance-charts { layout: vertical; }
    AcceptancePanel.-stacked #acceptance-charts > #acceptance-cliff { margin-right: 0; margin-bottom: 1; }
    """

    def __init__(self, report: Mapping, *, chart_rows: int | None = None, id: str | None = None) -> None:  # noqa: A002
        """`chart_rows`: the bars' height in rows; by default what the terminal's height leaves room for."""
        super().__init__(id=id)
        self.report = report
        self._chart_rows = chart_rows

    def compose(self) -> ComposeResult:
        rows = self._chart_rows or self.rows_for(self.app.size.height)
        yield Static(Content("\n").join(head_lines(self.report)), id="acceptance-head")
        yield CriteriaGauges(self.report.get("criteria", []), id="acceptance-criteria")
        with Horizontal(id="acceptance-charts"):
            yield CliffChart(self.report.get("cliff"), rows=rows, id="acceptance-cliff")
            yield StrataChart(self.report.get("heavy_users"), rows=rows, id="acceptance-heavy")

    @staticmethod
    def rows_for(height: int) -> int:
        """Bar rows that leave the head, the criteria and the labels in view: 4 at 24 lines, 12 at 40."""
        return max(3, min(12, (height - 16) // 2))

    def on_resize(self) -> None:
        self.set_class(self.size.width < SIDE_BY_SIDE, "-stacked")

    def text(self) -> str:
        """What the panel says, as plain lines (the tests read it; a person reads report.md)."""
        parts: list[str] = []
        for widget in self.query(Widget):
            if widget is self or isinstance(widget, Horizontal):
                continue
            parts.append(str(widget.render()))
        return "\n".join(parts)
