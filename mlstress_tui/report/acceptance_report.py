"""An acceptance run's verdict as `report.json` (schema `mlstress.report/1`), `report.md` and `junit.xml`.

The report document is built once from plain data (stages, criterion results,
measured metrics); the Markdown and JUnit files are renderings of that
document, so the three never disagree. report/ may not import analysis/, so a
criterion result is taken by shape (`CriterionOutcome`), not by class.
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol

from mlstress_tui.report.summary import write_json
from mlstress_tui.stages import METRIC_UNITS, Criterion, Stage, format_metric, verdict_of

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
                 started_at: datetime | str, duration_s: float) -> dict:
    """The report.json document: the verdict, each criterion against its measurement, and each stage.

    `measured` is {stage: {metric: value}} as the criteria were judged on;
    `summaries` an optional excerpt per stage to keep beside it (what the
    runner found worth keeping, e.g. its run directory); `suspect` a reason per
    stage whose measurement is in doubt.
    """
    suspect = suspect or {}
    summaries = summaries or {}
    criteria = [
        {"stage": r.criterion.stage, "metric": r.criterion.metric, "op": r.criterion.op,
         "threshold": r.criterion.value, "unit": METRIC_UNITS.get(r.criterion.metric, ""),
         "measured": _number(r.measured), "passed": r.passed is True, "note": r.note}
        for r in results
    ]
    return {
        "schema": SCHEMA,
        "verdict": verdict_of(r.passed for r in results),
        "preset": preset_name,
        "passed": sum(c["passed"] for c in criteria),
        "failed": sum(not c["passed"] for c in criteria),
        "criteria": criteria,
        "stages": [
            {"name": stage.name, "kind": stage.kind, "ran": stage.name in measured,
             "suspect": suspect.get(stage.name) or None,
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


def write_reports(report: dict, report_dir: Path) -> list[Path]:
    """report.json, report.md and junit.xml in report_dir, each written beside its place and renamed into it."""
    report_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path, junit_path = report_dir / "report.json", report_dir / "report.md", report_dir / "junit.xml"
    write_json(json_path, report)
    _write_text(md_path, report_markdown(report))
    _write_text(junit_path, report_junit(report))
    return [json_path, md_path, junit_path]


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


def report_markdown(report: dict) -> str:
    """report.md: the verdict, the criteria (measured against threshold, with units), the stages, suspect notes."""
    criteria = report["criteria"]
    lines = [f"# Acceptance {report['verdict']}: preset `{report['preset']}`", "",
             f"{report['passed']} of {len(criteria)} criteria passed.", "",
             f"- Started {report['started_at']}, {report['duration_s']:g} s, seed {report['seed']}"]
    database = ", ".join(f"{key} {value}" for key, value in report["database"].items()
                         if isinstance(value, str | int | float) and not isinstance(value, bool))
    if database:
        lines.append(f"- Database: {database}")
    for metric, label in (("knee_concurrency", "Knee"), ("safe_concurrency", "Safe concurrency"),
                          ("breach_event_count", "Breach event count")):
        if report[metric] is not None:
            lines.append(f"- {label}: {format_metric(metric, report[metric])}")
    lines += ["", "## Criteria", ""]
    lines += _table(["Result", "Stage", "Criterion", "Measured", "Note"], [
        ["PASS" if c["passed"] else "FAIL", c["stage"], f"{c['metric']} {_threshold(c)}",
         format_metric(c["metric"], c["measured"]), c["note"]]
        for c in criteria
    ])
    lines += ["", "## Stages", ""]
    rows = []
    for stage in report["stages"]:
        if not stage["ran"]:
            cells = ["did not run"] + [""] * (len(STAGE_COLUMNS) - 1)
        else:
            cells = [format_metric(metric, stage["metrics"].get(metric)) for metric, _ in STAGE_COLUMNS]
        rows.append([stage["name"], stage["kind"], *cells, stage["suspect"] or ""])
    lines += _table(["Stage", "Kind", *(label for _, label in STAGE_COLUMNS), "Measurement suspect"], rows)
    return "\n".join(lines) + "\n"


def report_junit(report: dict) -> str:
    """junit.xml: one test suite, one test case per criterion (class: the stage), a failure for each that failed."""
    criteria = report["criteria"]
    failures = str(report["failed"])
    totals = {"tests": str(len(criteria)), "failures": failures, "errors": "0", "time": f"{report['duration_s']:g}"}
    root = ET.Element("testsuites", {"name": SUITE_NAME, **totals})
    suite = ET.SubElement(root, "testsuite", {"name": SUITE_NAME, **totals, "skipped": "0",
                                              "timestamp": str(report["started_at"])})
    properties = ET.SubElement(suite, "properties")
    for name in ("preset", "verdict", "seed"):
        ET.SubElement(properties, "property", {"name": name, "value": str(report[name])})
    for c in criteria:
        case = ET.SubElement(suite, "testcase", {"classname": c["stage"],
                                                 "name": f"{c['metric']} {c['op']} {c['threshold']:g}"})
        if not c["passed"]:
            message = f"measured {format_metric(c['metric'], c['measured'])}, threshold {_threshold(c)}"
            failure = ET.SubElement(case, "failure", {"message": message, "type": "criterion"})
            failure.text = c["note"] or message
        elif c["note"]:
            ET.SubElement(case, "system-out").text = c["note"]
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
