"""The acceptance panel people screenshot: verdict, each criterion measured vs threshold, the run's key facts."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from mlstress_tui.stages import format_metric


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


def _validity_line(report: dict) -> Content:
    suspect = [stage for stage in report.get("stages", []) if stage.get("suspect")]
    not_run = [stage["name"] for stage in report.get("stages", []) if not stage.get("ran")]
    if report.get("interrupted"):
        return Content.styled("run interrupted: stages after it did not run", "$warning")
    if suspect:
        first = suspect[0]
        return Content.styled(f"measurement suspect: {first['name']}: {first['suspect']}"[:160], "$warning")
    if not_run:
        return Content.styled(f"did not run: {', '.join(not_run)}", "$warning")
    return Content.styled("valid: the harness vouches for every stage", "$success")


class AcceptancePanel(Static):
    """Renders one report (report.json's document); the whole run, never the last second."""

    def show(self, report: dict) -> None:
        passed = report.get("verdict") == "PASS"
        criteria = report.get("criteria", [])
        verdict = Content.assemble(
            (f" {report.get('verdict', '?')} ", "bold reverse $success" if passed else "bold reverse $error"),
            f"  {report.get('passed', 0)} of {len(criteria)} criteria passed",
            ("  preset ", "dim"), str(report.get("preset", "")))
        lines = [verdict, Content("")]
        name_width = max([len(c["stage"]) for c in criteria] + [5])
        for criterion in criteria:
            mark = ("PASS", "bold $success") if criterion["passed"] else ("FAIL", "bold $error")
            threshold = f"{criterion['op']} {format_metric(criterion['metric'], criterion['threshold'])}"
            # Padding trails each cell, so an SVG viewer that trims leading spaces keeps the columns.
            lines.append(Content.assemble(
                (mark[0] + "  ", mark[1]), (criterion["stage"].ljust(name_width) + "  ", "bold"),
                criterion["metric"].ljust(20), format_metric(criterion["metric"], criterion["measured"]).ljust(12),
                ("vs ", "dim"), threshold))
            if criterion.get("note") and not criterion["passed"]:
                lines.append(Content.styled(f"      {criterion['note']}"[:160], "dim"))
        started = str(report.get("started_at", ""))[:19].replace("T", " ")
        lines += [Content(""), _fact_line(report), _data_line(report), _validity_line(report),
                  Content.styled(f"{started} UTC · {report.get('duration_s', 0):.1f} s", "dim")]
        self.update(Content("\n").join(lines))
