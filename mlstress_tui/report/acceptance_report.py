"""An acceptance run's verdict as `report.json` (schema `mlstress.report/1`), `report.md` and `junit.xml`.

The report document is built once from plain data (stages, criterion results,
measured metrics); the Markdown and JUnit files are renderings of that
document, so the three never disagree. report/ may not import analysis/, so a
criterion result is taken by shape (`CriterionOutcome`), not by class.
"""

from __future__ import annotations

import contextlib
import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol

from mlstress_tui.report.summary import write_json
from mlstress_tui.stages import (COMPLETED, INTERRUPTED, METRIC_UNITS, NOT_RUN, UNFINISHED, Criterion, Stage,
                                 StageEnd, format_metric, verdict_of)

SCHEMA = "mlstress.report/1"
SUITE_NAME = "mlstress-tui acceptance"
# Stage columns of report.md: the metrics most stages have, shown when a stage measured them.
STAGE_COLUMNS = (("requests", "Requests"), ("throughput_rps", "Throughput"), ("p95_ms", "p95"),
                 ("error_rate", "Error rate"))


class CriterionOutcome(Protocol):
    """What the report needs of a criterion's result (analysis.acceptance.CriterionResult has this shape)."""

    @property
    def criterion(self) -> Criterion: ...
    @property
    def measured(self) -> float | None: ...
    @property
    def passed(self) -> bool: ...
    @property
    def note(self) -> str: ...
    @property
    def judged(self) -> bool: ...


def _number(value: float | None) -> float | int | None:
    """A number for JSON: ints kept, floats rounded, None for a missing or infinite one (JSON has no infinity)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    return round(float(value), 6) if math.isfinite(value) else None


def _first_measured(stages: Sequence[Stage], measured: Mapping[str, Mapping[str, float | None]],
                    kind: str, metric: str) -> float | int | None:
    """The metric from the first stage of this kind that ran: the headline a reader looks for."""
    for stage in stages:
        if stage.kind == kind and stage.name in measured:
            return _number(measured[stage.name].get(metric))
    return None


def build_report(*, preset_name: str, stages: Sequence[Stage], results: Sequence[CriterionOutcome],
                 measured: Mapping[str, Mapping[str, float | None]], suspect: Mapping[str, str | None] | None = None,
                 summaries: Mapping[str, Mapping] | None = None, seed: int, database: Mapping,
                 started_at: datetime | str, duration_s: float, ends: Mapping[str, StageEnd] | None = None,
                 validity: Mapping[str, Mapping] | None = None) -> dict:
    """The report.json document: the verdict, each criterion against its measurement, and each stage.

    `measured` is {stage: {metric: value}} as the criteria were judged on;
    `summaries` an optional excerpt per stage to keep beside it (what the
    runner found worth keeping, e.g. its run directory); `suspect` a reason per
    stage whose measurement is in doubt; `ends` how each stage ended (default:
    completed when measured, else not run); `validity` each stage's
    `analysis.validity.Validity.to_json()`.
    """
    suspect = suspect or {}
    summaries = summaries or {}
    validity = validity or {}
    criteria = [
        {"stage": r.criterion.stage, "metric": r.criterion.metric, "op": r.criterion.op,
         "threshold": r.criterion.value, "unit": METRIC_UNITS.get(r.criterion.metric, ""),
         "measured": _number(r.measured), "passed": r.passed is True, "judged": getattr(r, "judged", True),
         "note": r.note}
        for r in results
    ]
    stage_ends = {stage.name: _end_of(stage.name, measured, ends) for stage in stages}
    return {
        "schema": SCHEMA,
        "verdict": verdict_of((c["passed"] for c in criteria),
                              [end.status for end in stage_ends.values()]
                              + [NOT_RUN for c in criteria if not c["judged"]]),
        "preset": preset_name,
        "passed": sum(c["passed"] for c in criteria),
        "failed": sum(c["judged"] and not c["passed"] for c in criteria),
        "not_judged": sum(not c["judged"] for c in criteria),
        "criteria": criteria,
        "stages": [
            {"name": stage.name, "kind": stage.kind, "ran": stage.name in measured,
             "status": stage_ends[stage.name].status, "reason": stage_ends[stage.name].reason or None,
             "suspect": suspect.get(stage.name) or None,
             "validity": dict(validity[stage.name]) if stage.name in validity else None,
             "metrics": {key: _number(value) for key, value in measured.get(stage.name, {}).items()},
             "summary": dict(summaries[stage.name]) if stage.name in summaries else None}
            for stage in stages
        ],
        "knee_concurrency": _first_measured(stages, measured, "ramp", "knee_concurrency"),
        "safe_concurrency": _first_measured(stages, measured, "ramp", "safe_concurrency"),
        "breach_event_count": _first_measured(stages, measured, "outliers", "breach_event_count"),
        "seed": seed,
        "database": dict(database),
        "started_at": started_at.isoformat(timespec="milliseconds") if isinstance(started_at, datetime) else started_at,
        "duration_s": round(duration_s, 3),
    }


def _end_of(name: str, measured: Mapping[str, object], ends: Mapping[str, StageEnd] | None) -> StageEnd:
    if ends and name in ends:
        return ends[name]
    return StageEnd(COMPLETED) if name in measured else StageEnd(NOT_RUN, "did not run")


def report_verdict(report: Mapping) -> str:
    """A stored report's verdict by today's rule (`stages.verdict_of`), also for a report.json written before it.

    Older reports said PASS for an interrupted suite (`"interrupted": true`);
    read again, that is INCOMPLETE.
    """
    criteria = report.get("criteria", [])
    statuses = [stage_status(stage) for stage in report.get("stages", [])]
    if report.get("interrupted"):
        statuses.append(INTERRUPTED)
    statuses += [NOT_RUN for c in criteria if not c.get("judged", True)]
    return verdict_of((c.get("passed") is True for c in criteria), statuses)


def unfinished_stages(report: Mapping) -> list[Mapping]:
    """The stages of a report that did not finish (interrupted, did not end, did not run), in suite order."""
    return [stage for stage in report.get("stages", []) if stage_status(stage) in UNFINISHED]


def write_reports(report: dict, report_dir: Path, errors: list[str] | None = None) -> list[Path]:
    """report.json, report.md and junit.xml in report_dir, each written beside its place and renamed into it.

    With `errors`, a file that cannot be written (a full disk, a removed or
    read-only directory) is one line there and the others are still tried;
    without, the OSError is raised. Returns the files written.
    """
    renderings = ((report_dir / "report.json", lambda path: write_json(path, report)),
                  (report_dir / "report.md", lambda path: _write_text(path, report_markdown(report))),
                  (report_dir / "junit.xml", lambda path: _write_text(path, report_junit(report))))
    written = []
    for path, write in renderings:
        try:
            report_dir.mkdir(parents=True, exist_ok=True)
            write(path)
        except OSError as error:
            if errors is None:
                raise
            errors.append(f"cannot write {path}: {error.strerror or error}")
            with contextlib.suppress(OSError):  # a half-written temporary file is not left behind
                path.with_name(path.name + ".tmp").unlink(missing_ok=True)
            continue
        written.append(path)
    return written


def _write_text(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def _threshold(criterion: dict) -> str:
    """`< 100.0 ms`: the comparison and the threshold in the metric's unit."""
    return f"{criterion['op']} {format_metric(criterion['metric'], criterion['threshold'])}"


def _cell(text: object) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return lines


def outcome(criterion: Mapping) -> str:
    """PASS, FAIL or NOT JUDGED (its stage did not finish): a criterion's result as every rendering says it."""
    if not criterion.get("judged", True):
        return "NOT JUDGED"
    return "PASS" if criterion["passed"] else "FAIL"


def stage_status(stage: Mapping) -> str:
    """How a report's stage ended (`stages.COMPLETED` …), also for a report.json written before stages said so."""
    return stage.get("status") or (COMPLETED if stage.get("ran") else NOT_RUN)


def stage_end_text(stage: Mapping) -> str:
    """`completed`, `interrupted after 2.5 s`, `could not start: …`: how a stage ended, in one cell."""
    status = stage_status(stage)
    words = "did not run" if status == NOT_RUN else status.replace("_", " ")
    reason = stage.get("reason")
    if not reason or reason == words:
        return words
    return reason if reason.startswith(words) else f"{words}: {reason}"


def stage_measurement_text(stage: Mapping) -> str:
    """Whether the harness vouches for a stage (`analysis.validity`'s line), empty for a stage that measured nothing."""
    validity = stage.get("validity")
    if validity:
        return validity["line"]
    return f"measurement suspect: {stage['suspect']}" if stage.get("suspect") else ""


def _summary_line(report: Mapping) -> str:
    criteria = report["criteria"]
    line = f"{report['passed']} of {len(criteria)} criteria passed"
    if report.get("not_judged"):
        line += f", {report['not_judged']} not judged (their stage did not finish)"
    return line


def baseline_figures(criterion: Mapping) -> tuple[str, str, str]:
    """A criterion's baseline measurement, its own and the change between them, each as a person reads it.

    The one place report.md, the printed verdict and the acceptance panel take
    "before and after" from: the two figures report.json holds, and the change
    as a share of the baseline's (`n/a` when either is missing or the base is 0).
    """
    metric, before, after = criterion["metric"], criterion.get("baseline"), criterion.get("measured")
    if before is None or after is None or not before:
        change = "n/a"
    else:
        change = f"{(after - before) / abs(before):+.1%}"
    return format_metric(metric, before), format_metric(metric, after), change


def report_markdown(report: dict) -> str:
    """report.md: the verdict, the criteria (measured against threshold, with units), the stages, how each ended and whether it is vouched for."""
    criteria = report["criteria"]
    lines = [f"# Acceptance {report['verdict']}: preset `{report['preset']}`", "",
             f"{_summary_line(report)}.", "",
             f"- Started {report['started_at']}, {report['duration_s']:g} s, seed {report['seed']}"]
    database = ", ".join(f"{key} {value}" for key, value in report["database"].items()
                         if isinstance(value, str | int | float) and not isinstance(value, bool))
    if database:
        lines.append(f"- Database: {database}")
    for metric, label in (("knee_concurrency", "Knee"), ("safe_concurrency", "Safe concurrency"),
                          ("breach_event_count", "Breach event count")):
        if report[metric] is not None:
            lines.append(f"- {label}: {format_metric(metric, report[metric])}")
    baseline = report.get("baseline")
    if baseline:
        said = ", ".join(str(part) for part in (baseline.get("label"), baseline.get("verdict"), baseline.get("started_at"))
                         if part)
        lines.append(f"- Baseline: `{baseline.get('dir')}` ({said})")
    lines += ["", "## Criteria", ""]
    if baseline:
        lines += _table(["Result", "Stage", "Criterion", "Baseline", "Measured", "Change", "Note"], [
            [outcome(c), c["stage"], c.get("stated") or f"{c['metric']} {_threshold(c)}", *baseline_figures(c),
             c["note"]]
            for c in criteria
        ])
    else:
        lines += _table(["Result", "Stage", "Criterion", "Measured", "Note"], [
            [outcome(c), c["stage"], f"{c['metric']} {_threshold(c)}", format_metric(c["metric"], c["measured"]),
             c["note"]]
            for c in criteria
        ])
    lines += ["", "## Stages", ""]
    rows = []
    for stage in report["stages"]:
        if not stage["ran"]:
            cells = [""] * len(STAGE_COLUMNS)
        else:
            cells = [format_metric(metric, stage["metrics"].get(metric)) for metric, _ in STAGE_COLUMNS]
        rows.append([stage["name"], stage["kind"], stage_end_text(stage), *cells, stage_measurement_text(stage)])
    lines += _table(["Stage", "Kind", "Ended", *(label for _, label in STAGE_COLUMNS), "Measurement"], rows)
    checklist = report.get("checklist")
    if checklist:
        lines += ["", "## Release checklist", ""]
        lines += _table(["", "Item", "Evidence"], [[item["status"].upper(), item["item"], item["evidence"]]
                                                   for item in checklist])
    return "\n".join(lines) + "\n"


def report_junit(report: dict) -> str:
    """junit.xml: one test case per criterion (class: the stage): a failure for each that failed, an error for each not judged.

    A stage that did not finish and has no criterion gets a case of its own
    ("stage finished") with an error, so an INCOMPLETE suite is never green.
    """
    criteria = report["criteria"]
    judged_stages = {c["stage"] for c in criteria}
    lone = [stage for stage in report["stages"]
            if stage["name"] not in judged_stages and stage_status(stage) != COMPLETED]
    failures = sum(c.get("judged", True) and not c["passed"] for c in criteria)
    failures += sum(stage_status(stage) not in UNFINISHED for stage in lone)
    errors = sum(not c.get("judged", True) for c in criteria) + sum(stage_status(stage) in UNFINISHED for stage in lone)
    totals = {"tests": str(len(criteria) + len(lone)), "failures": str(failures), "errors": str(errors),
              "time": f"{report['duration_s']:g}"}
    root = ET.Element("testsuites", {"name": SUITE_NAME, **totals})
    suite = ET.SubElement(root, "testsuite", {"name": SUITE_NAME, **totals, "skipped": "0",
                                              "timestamp": str(report["started_at"])})
    properties = ET.SubElement(suite, "properties")
    for name in ("preset", "verdict", "seed"):
        ET.SubElement(properties, "property", {"name": name, "value": str(report[name])})
    for stage in report["stages"]:
        said = "; ".join(text for text in (stage_end_text(stage), stage_measurement_text(stage)) if text)
        ET.SubElement(properties, "property", {"name": f"stage.{stage['name']}", "value": said})
    for c in criteria:
        case = ET.SubElement(suite, "testcase", {"classname": c["stage"],
                                                 "name": f"{c['metric']} {c['op']} {c['threshold']:g}"})
        if not c.get("judged", True):
            ET.SubElement(case, "error", {"message": c["note"], "type": "incomplete"}).text = c["note"]
        elif not c["passed"]:
            message = f"measured {format_metric(c['metric'], c['measured'])}, threshold {_threshold(c)}"
            failure = ET.SubElement(case, "failure", {"message": message, "type": "criterion"})
            failure.text = c["note"] or message
        elif c["note"]:
            ET.SubElement(case, "system-out").text = c["note"]
    for stage in lone:
        case = ET.SubElement(suite, "testcase", {"classname": stage["name"], "name": "stage finished"})
        text = stage_end_text(stage)
        kind = "error" if stage_status(stage) in UNFINISHED else "failure"
        ET.SubElement(case, kind, {"message": text, "type": "incomplete" if kind == "error" else "stage"}).text = text
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def end_summary(report: Mapping) -> str | None:
    """The stages that did not run to their end, in one line (`smoke interrupted after 2.5 s; edge did not run`); None when all did."""
    stages = report.get("stages", [])
    parts = [f"{stage['name']} {stage_end_text(stage)}" for stage in stages
             if stage_status(stage) not in (COMPLETED, NOT_RUN)]
    not_run = [stage["name"] for stage in stages if stage_status(stage) == NOT_RUN]
    if not_run:
        parts.append(f"{', '.join(not_run)} did not run")
    if report.get("interrupted") and not parts:
        parts.append("interrupted")
    return "; ".join(parts) or None


def validity_summary(report: Mapping) -> tuple[bool, str]:
    """Whether the harness vouches for every stage that measured, and the line that says so (the first suspect stage, or advice)."""
    measured = [stage for stage in report.get("stages", []) if stage.get("ran")]
    suspect = [stage for stage in measured
               if (stage.get("validity") or {}).get("vouched") is False or (not stage.get("validity") and stage.get("suspect"))]
    if suspect:
        more = f" (and {len(suspect) - 1} more)" if len(suspect) > 1 else ""
        return False, f"{suspect[0]['name']}: {stage_measurement_text(suspect[0])}{more}"
    if not measured:
        return True, "no stage measured anything"
    advised = [stage for stage in measured if (stage.get("validity") or {}).get("kind", "ok") != "ok"]
    line = "vouched for: every stage that ran"
    if advised:
        line += f"; {advised[0]['name']}: {stage_measurement_text(advised[0])}"
    return True, line


def cliff_view(ramp: Mapping | None, *, stage: str) -> dict | None:
    """What the acceptance panel draws of a ramp (ramp.json): each step's p95 and throughput, the knee, the SLA."""
    if not ramp or not ramp.get("steps"):
        return None
    open_loop = ramp.get("mode") == "open"
    return {"stage": stage, "mode": "open" if open_loop else "closed", "sla_p95_ms": ramp.get("sla_p95_ms"),
            "knee": ramp.get("knee_rate") if open_loop else ramp.get("knee_concurrency"),
            "steps": [{"level": step["level"], "p95_ms": step.get("p95_ms"),
                       "throughput_rps": step.get("throughput_rps"), "error_rate": step.get("error_rate")}
                      for step in ramp["steps"]]}


def levels_view(summary: Mapping, *, sla_p95_ms: float) -> dict | None:
    """The same for a plain run that visited several levels in one loop (summary.json's `levels`, a column per
    visit), None otherwise."""
    levels = [level for level in summary.get("levels") or [] if level.get("requests")]
    modes = {level.get("mode") for level in levels}
    if len(levels) < 2 or len(modes) != 1:
        return None
    by_level = sorted(levels, key=lambda level: level["level"])
    return {"stage": "levels", "mode": modes.pop(), "sla_p95_ms": sla_p95_ms, "knee": None,
            "steps": [{"level": level["level"], "p95_ms": (level.get("latency_ms") or {}).get("p95"),
                       "throughput_rps": level.get("throughput_rps"),
                       "error_rate": level["errors"] / level["requests"] if level.get("requests") else None}
                      for level in by_level]}


def heavy_view(outliers: Mapping | None, *, stage: str) -> dict | None:
    """What the acceptance panel draws of a heavy-user report (outliers.json): each stratum's p95, the budget, the breach."""
    if not outliers or not outliers.get("strata"):
        return None
    failing = outliers.get("failing")
    return {"stage": stage, "threshold_ms": outliers.get("threshold_ms"),
            "breach_event_count": outliers.get("breach_event_count"),
            "users_above": outliers.get("users_above"), "population_share_above": outliers.get("population_share_above"),
            "failing": failing.get("text") if isinstance(failing, Mapping) else None,
            "strata": [{"name": row["name"], "min_events": row.get("min_events"), "p95_ms": row.get("p95_ms"),
                        "requests": row.get("requests"), "errors": row.get("errors")}
                       for row in outliers["strata"]]}
