"""The acceptance panel people screenshot: verdict, each criterion measured vs threshold, the run's key facts."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from mlstress_tui.report.acceptance_report import end_summary, outcome, validity_summary
from mlstress_tui.stages import FAIL, INCOMPLETE, PASS, format_metric

# The verdict badge's colour: only PASS is green; INCOMPLETE is not a pass, and not a failure of the system either.
VERDICT_STYLE = {PASS: "bold reverse $success", FAIL: "bold reverse $error", INCOMPLETE: "bold reverse $warning"}
# A criterion's mark (four columns, so the table keeps its place): NOT JUDGED is shown as dashes, and the line
# saying which stages did not finish says why.
MARKS = {"PASS": ("PASS", "bold $success"), "FAIL": ("FAIL", "bold $error"), "NOT JUDGED": ("----", "bold $warning")}
# The longest a note or a state line may run (two lines of an 80-column panel), cut at a word with an ellipsis.
LINE_CHARS = 140


def _clipped(text: str, limit: int = LINE_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + " …"


def _fact_line(report: dict) -> Content:
    facts = []
    if report.get("knee_concurrency") is not None:
        facts.append(f"knee {report['knee_concurrency']:g} users")
    if report.get("safe_concurrency") is not None:
        facts.append(f"safe {report['safe_concurrency']:g} users")
    if report.get("breach_event_count") is not None:
        facts.append(f"breach at {report['breach_event_count']:,} events")
    elif report.get("breach_measured") or any(stage.get("kind") == "outliers" and stage.get("ran")
                                              for stage in report.get("stages", [])):
        facts.append("no heavy user breaches")
    return Content(" · ".join(facts) if facts else "knee, safe concurrency, breach: not measured in this run")


def _data_line(report: dict) -> Content:
    database = report.get("database") or {}
    target = (report.get("target") or {}).get("label", "")
    parts = [target] if target else []
    if database.get("users") is not None:
        parts.append(f"{database['users']:,} users")
    if database.get("events") is not None:
        parts.append(f"{database['events']:,} events")
    parts.append(f"seed {report.get('seed')}")
    return Content(" · ".join(parts))


def _state_lines(report: dict) -> list[Content]:
    """How the stages ended (when any did not run to its end), then whether the harness vouches for them."""
    lines = []
    ended = end_summary(report)
    if ended:
        style = "$warning" if report.get("verdict") == INCOMPLETE else "$error"
        lines.append(Content.styled(_clipped(f"not finished: {ended}"), style))
    vouched, said = validity_summary(report)
    lines.append(Content.styled(_clipped(said), "$success" if vouched else "$warning"))
    return lines


class AcceptancePanel(Static):
    """Renders one report (report.json's document); the whole run, never the last second."""

    def show(self, report: dict) -> None:
        verdict_word = report.get("verdict", "?")
        criteria = report.get("criteria", [])
        verdict = Content.assemble(
            (f" {verdict_word} ", VERDICT_STYLE.get(verdict_word, "bold reverse $error")),
            f"  {report.get('passed', 0)} of {len(criteria)} criteria passed",
            ("  preset ", "dim"), str(report.get("preset", "")))
        lines = [verdict, Content("")]
        name_width = max([len(c["stage"]) for c in criteria] + [5])
        for criterion in criteria:
            mark = MARKS[outcome(criterion)]
            threshold = f"{criterion['op']} {format_metric(criterion['metric'], criterion['threshold'])}"
            # Padding trails each cell, so an SVG viewer that trims leading spaces keeps the columns.
            lines.append(Content.assemble(
                (mark[0] + "  ", mark[1]), (criterion["stage"].ljust(name_width) + "  ", "bold"),
                criterion["metric"].ljust(20), format_metric(criterion["metric"], criterion["measured"]).ljust(12),
                ("vs ", "dim"), threshold))
            if criterion.get("note") and not criterion["passed"] and criterion.get("judged", True):
                lines.append(Content.styled(_clipped(f"      {criterion['note']}"), "dim"))
        started = str(report.get("started_at", ""))[:19].replace("T", " ")
        lines += [Content(""), _fact_line(report), _data_line(report), *_state_lines(report),
                  Content.styled(f"{started} UTC · {report.get('duration_s', 0):.1f} s", "dim")]
        self.update(Content("\n").join(lines))
