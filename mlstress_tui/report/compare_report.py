"""Two runs compared, as `compare.json` (schema `mlstress.compare/1`), `compare.md`, `junit.xml` and a printed table.

The document is built once from the comparison; the Markdown, the JUnit file
and the printed table are renderings of it, so they cannot disagree. report/
may not import analysis/, so the comparison is taken by shape (the Protocols
below; analysis.compare's dataclasses have it).
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from mlstress_tui.report.summary import write_json
from mlstress_tui.stages import format_metric

SCHEMA = "mlstress.compare/1"
SUITE_NAME = "mlstress-tui compare"


class MetricChangeLike(Protocol):
    metric: str
    label: str
    base: float | None
    new: float | None
    change: float | None
    verdict: str
    noise: float | None
    p_value: float | None
    seconds: tuple[int, int]
    bound: float | None
    regressed: bool
    note: str
    scale: str
    gated: bool
    machine: float | None


class LevelLike(Protocol):
    label: str
    key: tuple[str, float]
    metrics: Sequence[MetricChangeLike]
    only_in: str | None


class SingleLike(Protocol):
    name: str
    label: str
    base: float | None
    new: float | None
    change: float | None
    verdict: str


class SectionLike(Protocol):
    name: str
    levels: Sequence[LevelLike]
    singles: Sequence[SingleLike]
    only_in: str | None
    note: str


class DifferenceLike(Protocol):
    field: str
    base: object
    new: object
    refuses: bool


class ComparisonLike(Protocol):
    sections: Sequence[SectionLike]
    differences: Sequence[DifferenceLike]
    bounds: Mapping[str, float]

    @property
    def verdict(self) -> str: ...


def _number(value: float | int | None) -> float | int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    return round(float(value), 6) if math.isfinite(value) else None


def _jsonable(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def build_compare(comparison: ComparisonLike, *, base: Mapping, new: Mapping, method: Mapping,
                  forced: bool, compared_at: datetime | None = None) -> dict:
    """The compare.json document; `base`/`new` describe each side (path, kind, harness, notes), `method` the test."""
    sections = []
    for section in comparison.sections:
        sections.append({
            "name": section.name, "only_in": section.only_in, "note": section.note or None,
            "levels": [
                {"level": level.label, "mode": level.key[0], "value": level.key[1], "only_in": level.only_in,
                 "metrics": [
                     {"metric": m.metric, "label": m.label, "base": _number(m.base), "new": _number(m.new),
                      "change": _number(m.change), "change_of": m.scale, "verdict": m.verdict,
                      "noise": _number(m.noise), "p_value": _number(m.p_value),
                      "seconds": {"base": m.seconds[0], "new": m.seconds[1]}, "bound": _number(m.bound),
                      "gated": m.gated, "machine": _number(m.machine), "regressed": m.regressed,
                      "note": m.note or None}
                     for m in level.metrics]}
                for level in section.levels],
            "singles": [
                {"name": s.name, "label": s.label, "base": _encode_single(s.base), "new": _encode_single(s.new),
                 "change": _number(s.change), "verdict": s.verdict, "gated": False}
                for s in section.singles],
        })
    regressions = [
        {"section": section["name"], "level": level["level"], "metric": metric["metric"],
         "change": metric["change"], "bound": metric["bound"]}
        for section in sections for level in section["levels"] for metric in level["metrics"] if metric["regressed"]
    ]
    return {
        "schema": SCHEMA,
        "verdict": comparison.verdict,
        "compared_at": (compared_at or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
        "base": dict(base),
        "new": dict(new),
        "forced": forced,
        "bounds": {key: _number(value) for key, value in comparison.bounds.items()},
        "method": dict(method),
        "differences": [{"field": d.field, "base": _jsonable(d.base), "new": _jsonable(d.new), "refuses": d.refuses}
                        for d in comparison.differences],
        "sections": sections,
        "regressions": regressions,
    }


def _encode_single(value: float | None) -> float | str | None:
    """A single figure for JSON: +infinity (no user breaches) as the string "inf", JSON having no infinity."""
    if value is not None and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return _number(value)


def _decode_single(value: float | str | None) -> float | None:
    if isinstance(value, str):
        return math.inf if value == "inf" else -math.inf
    return value


def format_value(metric: str, value: float | None) -> str:
    """A figure with its unit; times under 0.1 ms in µs, where a pool wait or a fast query lives."""
    if metric.endswith("_ms") and value is not None and math.isfinite(value) and abs(value) < 0.1:
        return f"{value * 1000:,.1f} µs"
    return format_metric("p50_ms" if metric.endswith("_ms") else metric, value)


def format_change(metric: Mapping) -> str:
    """`+28.2%`, `+0.40 pts`, `+0.004 ms (+0.2% of p95)`: a change in the unit it is judged in."""
    change = metric["change"]
    if change is None:
        return "n/a"
    if metric["change_of"] == "points":
        return f"{change * 100:+.2f} pts"
    if metric["change_of"] == "latency":
        delta = (metric["new"] or 0) - (metric["base"] or 0)
        shown = f"{delta * 1000:+,.1f} µs" if abs(delta) < 0.1 else f"{delta:+,.2f} ms"
        return f"{shown} ({change:+.2%} of p95)" if abs(change) < 0.01 else f"{shown} ({change:+.1%} of p95)"
    return f"{change:+.1%}"


def _noise(metric: Mapping) -> str:
    if metric["noise"] is None:
        return ""
    if metric["change_of"] == "points":
        return f"±{metric['noise'] * 100:.2f} pts"
    return f"±{metric['noise']:.1%}"


def _gate(metric: Mapping) -> str:
    bound = metric["bound"]
    if not metric["gated"]:
        return "not gated: the machine's"
    if metric["regressed"]:
        return f"REGRESSION (> {_bound(metric)})"
    if metric["verdict"] in ("slower", "more errors") and bound is not None:
        return f"within {_bound(metric)}"
    return ""


def _bound(metric: Mapping) -> str:
    bound = metric["bound"]
    return f"{bound * 100:g} pts" if metric["change_of"] == "points" else f"{bound:.0%}" if bound >= 0.01 else f"{bound:.1%}"


def _single_value(name: str, value: float | str | None) -> str:
    value = _decode_single(value)
    if value is None:
        return "none"
    if math.isinf(value):
        return "none breach" if name == "breach_event_count" else "∞"
    return format_value("p95_ms" if name.startswith("stratum_p95_ms") else name, value)


def section_notes(section: Mapping) -> list[str]:
    """`c=4 p99: …`: what a metric's row cannot say in its cells (too short, not measured, the machine's share)."""
    return [f"{level['level']} {m['label']}: {m['note']}" for level in section["levels"] for m in level["metrics"]
            if m["note"] and m["verdict"] != "too short to judge"] + [
        f"{level['level']}: too short to judge: {m['note']}" for level in section["levels"]
        for m in level["metrics"][:1] if m["verdict"] == "too short to judge"]


def level_rows(document: Mapping) -> list[tuple[str, list[list[str]]]]:
    """Per section, the table rows a person reads: level, metric, base, new, change, verdict, noise, p, seconds, gate."""
    tables = []
    for section in document["sections"]:
        rows: list[list[str]] = []
        for level in section["levels"]:
            if level["only_in"]:
                rows.append([level["level"], f"only in {level['only_in']}", "", "", "", "", "", "", "", ""])
                continue
            for m in level["metrics"]:
                p_value = "" if m["p_value"] is None else f"{m['p_value']:.2g}"
                seconds = f"{m['seconds']['base']}/{m['seconds']['new']}"
                rows.append([level["level"], m["label"], format_value(m["metric"], m["base"]),
                             format_value(m["metric"], m["new"]), format_change(m), m["verdict"], _noise(m),
                             p_value, seconds, _gate(m)])
        for single in section["singles"]:
            change = "" if single["change"] is None else f"{single['change']:+.1%}"
            rows.append(["", single["label"], _single_value(single["name"], single["base"]),
                         _single_value(single["name"], single["new"]), change, single["verdict"], "", "", "",
                         "not gated: one figure a run"])
        tables.append((section["name"], rows))
    return tables


HEADER = ["Level", "Metric", "Base", "New", "Change", "Verdict", "Noise", "p", "Seconds", "Gate"]


def _section_title(section: Mapping) -> str:
    title = f"stage {section['name']}" if section["name"] else "levels"
    if section["only_in"]:
        return f"{title}: only in {section['only_in']}"
    return f"{title}: {section['note']}" if section["note"] else title


def differences_rows(document: Mapping) -> list[list[str]]:
    return [[d["field"], _plain(d["base"]), _plain(d["new"]), "refuses" if d["refuses"] else "noted"]
            for d in document["differences"]]


def _plain(value: object) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    return str(value)


def _verdict_line(document: Mapping) -> str:
    regressions = document["regressions"]
    if document["verdict"] == "UNJUDGED":
        return "compare UNJUDGED: no metric could be judged (each is too short or not measured)"
    if not regressions:
        return "compare PASS: nothing regressed beyond its bound outside the noise"
    named = []
    for r in regressions:
        where = f"{r['section']} {r['level']}" if r["section"] else r["level"]
        metric = _find_metric(document, r)
        named.append(f"{metric['label']} {format_change(metric)} at {where}")
    return f"compare REGRESSION: {'; '.join(named)}"


def _find_metric(document: Mapping, regression: Mapping) -> Mapping:
    for section in document["sections"]:
        for level in section["levels"]:
            for metric in level["metrics"]:
                if (section["name"], level["level"], metric["metric"]) == (
                        regression["section"], regression["level"], regression["metric"]):
                    return metric
    raise KeyError(regression["metric"])


def differences_text(document: Mapping) -> str:
    """The fields in which the two runs differ, one table (empty when they differ in none)."""
    rows = differences_rows(document)
    if not rows:
        return ""
    return "\n".join(_aligned(["Differs in", "Base", "New", ""], rows))


def _opening(title: str, document: Mapping) -> list[str]:
    """The lines every text form of a comparison opens with: its title, each side's notes, what differs."""
    lines = [title]
    for side in ("base", "new"):
        lines += [f"  {side}: {note}" for note in document[side].get("notes") or []]
    differences = differences_text(document)
    return [*lines, "", differences] if differences else lines


def compare_text(document: Mapping) -> str:
    """The comparison as a terminal reads it: each section's table, the differences, the verdict."""
    lines = _opening(f"compare {document['base']['path']} -> {document['new']['path']}", document)
    for (name, rows), section in zip(level_rows(document), document["sections"], strict=True):
        lines += ["", _section_title(section)]
        if rows:
            lines += _aligned(HEADER, rows)
        lines += [f"  note: {note}" for note in section_notes(section)]
    lines += ["", _verdict_line(document)]
    return "\n".join(lines)


def _aligned(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    return ["  " + "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in [header, *rows]]


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return lines


def _unit_of_bound(key: str) -> str:
    """The error rate's bound is in points of requests; every other bound a share."""
    return "points" if key == "error_rate" else "own"


def compare_markdown(document: Mapping) -> str:
    """compare.md: the verdict, how noise was judged, the differences, each section's table."""
    method = document["method"]
    lines = [f"# Compare {document['verdict']}", "",
             f"- Base: `{document['base']['path']}`", f"- New: `{document['new']['path']}`",
             "- Bounds: " + ", ".join(f"{key} {_bound({'bound': value, 'change_of': _unit_of_bound(key)})}"
                                     for key, value in document["bounds"].items()),
             f"- Noise: {method['description']}"]
    for side in ("base", "new"):
        for note in document[side].get("notes") or []:
            lines.append(f"- {side}: {note}")
    if document["forced"]:
        lines.append("- Compared with --force although the runs differ in what makes them comparable")
    if document["differences"]:
        lines += ["", "## Differences", ""]
        lines += _md_table(["Field", "Base", "New", "Effect"], differences_rows(document))
    for (name, rows), section in zip(level_rows(document), document["sections"], strict=True):
        lines += ["", f"## {_section_title(section)[0].upper()}{_section_title(section)[1:]}", ""]
        if rows:
            lines += _md_table(HEADER, rows)
        notes = section_notes(section)
        if notes:
            lines += [""] + [f"- {note}" for note in notes]
    lines += ["", _verdict_line(document)]
    return "\n".join(lines) + "\n"


def compare_junit(document: Mapping) -> str:
    """junit.xml: a test case per metric and level (class: the section and level); a regression is a failure."""
    root = ET.Element("testsuites", {"name": SUITE_NAME})
    suite = ET.SubElement(root, "testsuite", {"name": SUITE_NAME, "timestamp": document["compared_at"]})
    tests = failures = skipped = 0
    for section in document["sections"]:
        for level in section["levels"]:
            for m in (m for m in level["metrics"] if m["gated"]):
                classname = f"{section['name']}.{level['level']}" if section["name"] else level["level"]
                case = ET.SubElement(suite, "testcase", {"classname": classname, "name": m["label"]})
                tests += 1
                summary = (f"base {format_value(m['metric'], m['base'])}, new {format_value(m['metric'], m['new'])}, "
                           f"{format_change(m)}: {m['verdict']}")
                if m["regressed"]:
                    failures += 1
                    failure = ET.SubElement(case, "failure", {"message": f"{summary} beyond {_bound(m)}",
                                                              "type": "regression"})
                    failure.text = f"{summary}; noise {_noise(m)}, p {m['p_value']:.2g}"
                elif m["verdict"] in ("too short to judge", "not measured"):
                    skipped += 1
                    ET.SubElement(case, "skipped", {"message": m["note"] or m["verdict"]})
                else:
                    ET.SubElement(case, "system-out").text = summary
    totals = {"tests": str(tests), "failures": str(failures), "errors": "0", "skipped": str(skipped)}
    root.attrib.update({key: value for key, value in totals.items() if key != "skipped"})
    suite.attrib.update(totals)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_compare(document: dict, out_dir: Path) -> list[Path]:
    """compare.json, compare.md and junit.xml in out_dir, each written beside its place and renamed into it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path, junit_path = out_dir / "compare.json", out_dir / "compare.md", out_dir / "junit.xml"
    write_json(json_path, document)
    _write_text(md_path, compare_markdown(document))
    _write_text(junit_path, compare_junit(document))
    return [json_path, md_path, junit_path]


def _write_text(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


# The verdicts compare reaches (analysis.compare.Comparison.verdict).
COMPARE_VERDICTS = ("PASS", "REGRESSION", "UNJUDGED")


def gate_report(document: Mapping) -> dict:
    """compare.json as a gate's report (report.json's shape) for the Pushgateway: the verdict, and each gated metric
    of each level as a criterion (its change against its bound, measured as a fraction of the base)."""
    new = document.get("new") or {}
    criteria = [
        {"stage": f"{section['name']}/{level['level']}" if section["name"] else str(level["level"]),
         "metric": metric["metric"], "op": "<=", "threshold": metric["bound"], "measured": metric["change"],
         "passed": not metric["regressed"], "judged": metric["change"] is not None}
        for section in document.get("sections") or () for level in section["levels"] for metric in level["metrics"]
        if metric["gated"]]
    return {"verdict": document.get("verdict"), "verdicts": COMPARE_VERDICTS, "preset": new.get("preset") or "", "label": new.get("label") or "",
            "target": {"kind": new.get("target_kind") or ""}, "criteria": criteria}



# What `show NEW --baseline BASE` puts side by side per level: the two curves it draws.
CURVE_METRICS = ("p95_ms", "throughput_rps")
SIDE_BY_SIDE_HEADER = ["Level", "Metric", "Base", "New", "Change", "Verdict"]


def side_by_side_rows(document: Mapping, metrics: Sequence[str] = CURVE_METRICS) -> list[list[str]]:
    """Per level, each curve metric's base, new, change and verdict, read off a compare document (one section)."""
    rows = []
    for section in document["sections"]:
        for level in section["levels"]:
            if level["only_in"]:
                rows.append([level["level"], f"only in {level['only_in']}", "", "", "", ""])
                continue
            for m in level["metrics"]:
                if m["metric"] in metrics:
                    rows.append([level["level"], m["label"], format_value(m["metric"], m["base"]),
                                 format_value(m["metric"], m["new"]), format_change(m), m["verdict"]])
    return rows


def side_by_side_lines(document: Mapping) -> list[str]:
    """The per-level table, aligned, as the terminal and the side-by-side view show it."""
    return _aligned(SIDE_BY_SIDE_HEADER, side_by_side_rows(document))


def side_by_side_text(document: Mapping) -> str:
    """`show NEW --baseline BASE` without a terminal: the two runs, what differs, and the table per level."""
    lines = _opening(f"show {document['new']['path']} against baseline {document['base']['path']}", document)
    lines += ["", *side_by_side_lines(document)]
    notes = [note for section in document["sections"] for note in section_notes(section)]
    lines += [f"  note: {note}" for note in notes]
    return "\n".join(lines)
