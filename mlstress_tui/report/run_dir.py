"""A finished run directory read back: each commanded level's figures and per-second figures, and what the run was.

`compare` reads runs other versions of the tool wrote, so every field is read
defensively: a missing one is absent (None), a wrong one is one line naming the
file and the field. A level's own figures come from summary.json's `levels`
(exact, from the level's histograms); its per-second figures from
intervals.jsonl, by `level_id` when the lines carry it, else by mode and
concurrency or rate.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mlstress_tui.errors import UsageError

# The per-second figure of each compared metric, from one intervals.jsonl line.
_SERIES_KEYS = {"p50_ms": ("latency_ms", "p50"), "p95_ms": ("latency_ms", "p95"), "p99_ms": ("latency_ms", "p99"),
                "pool_wait_p95_ms": ("pool_wait_ms", "p95"), "harness_lag_p50_ms": ("hiccup_ms", "p50"),
                "harness_lag_p95_ms": ("hiccup_ms", "p95"), "harness_lag_p99_ms": ("hiccup_ms", "p99")}
# A stratum of outliers.json is a heavy one by its name, as analysis.outliers.heavy_breach_rate reads it.
_HEAVY_STRATA = ("top ", "heaviest")


@dataclass(frozen=True)
class LevelRecord:
    """One commanded level: its figures (p50_ms, …, error_rate, pool_wait_p95_ms) and its per-second figures."""

    key: tuple[str, float]  # (mode, commanded concurrency or rate)
    label: str
    figures: dict[str, float | None]
    series: dict[str, list[float]]
    seconds: float = 0.0
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunRecord:
    """A run directory (`run`, `ramp`, `outliers`, or an accept stage's): its levels, single figures and identity."""

    path: Path
    kind: str  # "run" | "ramp" | "outliers"
    summary: dict
    levels: list[LevelRecord]
    extras: dict[str, float | None]
    identity: dict[str, object]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReportRecord:
    """An accept report directory: report.json and each stage's run (None for a stage that did not run)."""

    path: Path
    report: dict
    stages: dict[str, RunRecord | None]
    identity: dict[str, object] = field(default_factory=dict)


def read_compared(path: Path) -> RunRecord | ReportRecord:
    """What `compare` takes: an accept report directory, else a run directory; one line when it is neither."""
    if not path.is_dir():
        raise UsageError(f"{str(path)!r} is not a directory: pass a directory that run, ramp, outliers or accept wrote")
    if (path / "report.json").is_file():
        return read_report_dir(path)
    if (path / "summary.json").is_file():
        return read_run_dir(path)
    if (path / "intervals.jsonl").is_file():
        raise UsageError(f"{str(path)!r} holds no finished run (intervals.jsonl without summary.json: the run was "
                         "killed before its end): pass a directory whose run finished")
    raise UsageError(f"{str(path)!r} holds no run (no summary.json or report.json): pass a directory that run, "
                     "ramp, outliers or accept wrote")


def read_json(path: Path) -> dict:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise UsageError(f"cannot read {str(path)!r} ({error}): is it a file mlstress-tui wrote?") from None
    if not isinstance(document, dict):
        raise UsageError(f"{str(path)!r} is not a document of mlstress-tui (not a JSON object)")
    return document


def _table(document: Mapping, key: str) -> dict:
    value = document.get(key)
    return value if isinstance(value, dict) else {}


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _level_value(value: float) -> float:
    """A commanded level as a key: intervals.jsonl rounds rates to 3 decimals, so keys do too."""
    return round(float(value), 3)


def level_label(mode: str, level: float) -> str:
    """`c=4` in the closed loop, `200 req/s` in the open loop."""
    return f"c={level:g}" if mode == "closed" else f"{level:g} req/s"


def read_intervals(path: Path) -> list[dict]:
    """intervals.jsonl's lines; a cut last line (a killed run) is dropped, a bad line elsewhere is one line of error."""
    if not path.is_file():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read {str(path)!r} ({error})") from None
    lines = text.splitlines()
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            if number == len(lines):
                break
            raise UsageError(f"{str(path)!r} line {number} is not JSON: is it a file mlstress-tui wrote?") from None
        if isinstance(record, dict):
            records.append(record)
    return records


def _series_value(line: Mapping, metric: str) -> float | None:
    if metric == "throughput_rps":
        return _number(line.get("throughput_rps"))
    if metric == "error_rate":
        requests, errors = _number(line.get("requests")), _number(line.get("errors"))
        return errors / requests if requests and errors is not None else None
    table, key = _SERIES_KEYS[metric]
    return _number(_table(line, table).get(key))


SERIES_METRICS = ("p50_ms", "p95_ms", "p99_ms", "throughput_rps", "error_rate", "pool_wait_p95_ms",
                  "harness_lag_p50_ms", "harness_lag_p95_ms", "harness_lag_p99_ms")


def _clean_lines(lines: list[dict]) -> list[dict]:
    """Lines that measured the target alone: not paused, no harness stall in them, some requests.

    The run's first and last lines are left out: the first covers the start,
    where caches and connections warm up (p50 read 50% high on the default
    database), the last the stop, where the load winds down (throughput read
    about 5% low on `sleep:2ms`).
    """
    return [line for line in lines[1:-1] if not line.get("paused") and line.get("harness_stall_ms") is None
            and (_number(line.get("requests")) or 0) > 0]


def _line_key(line: Mapping) -> tuple[str, float] | None:
    mode = line.get("mode")
    value = _number(line.get("concurrency") if mode == "closed" else line.get("rate"))
    return (mode, _level_value(value)) if isinstance(mode, str) and value is not None else None


def _levels(summary: dict, where: Path) -> list[dict]:
    """summary.json's levels, each checked for what compare reads; one level from the totals when it has none."""
    levels = summary.get("levels")
    if levels is None:
        load = _table(summary, "load")
        final = {**load, **_table(load, "final")}
        mode = final.get("mode")
        value = _number(final.get("concurrency") if mode == "closed" else final.get("rate"))
        if not isinstance(mode, str) or value is None:
            raise UsageError(f"{str(where)!r} has neither levels nor a load mode and level: not a summary this "
                             "version reads")
        return [{"id": None, "mode": mode, "level": value, "seconds": summary.get("duration_s"),
                 "requests": summary.get("requests"), "errors": summary.get("errors"),
                 "throughput_rps": summary.get("throughput_rps"), "latency_ms": summary.get("latency_ms"),
                 "pool_wait_ms": summary.get("pool_wait_ms")}]
    if not isinstance(levels, list) or not all(isinstance(level, dict) for level in levels):
        raise UsageError(f"{str(where)!r}: levels is not a list of tables: not a summary this version reads")
    for number, level in enumerate(levels):
        if not isinstance(level.get("mode"), str) or _number(level.get("level")) is None:
            raise UsageError(f"{str(where)!r}: levels[{number}] has no mode and level: not a summary this "
                             "version reads")
    return levels


def _level_figures(entries: list[dict]) -> dict[str, float | None]:
    """A level's own figures from its summary entries (one, or several when the same level was commanded again)."""
    requests = sum(_number(entry.get("requests")) or 0 for entry in entries)
    errors = sum(_number(entry.get("errors")) or 0 for entry in entries)
    seconds = sum(_number(entry.get("seconds")) or 0 for entry in entries)
    figures: dict[str, float | None] = {}
    if len(entries) == 1:
        entry = entries[0]
        latency = _table(entry, "latency_ms")
        figures.update(p50_ms=_number(latency.get("p50")), p95_ms=_number(latency.get("p95")),
                       p99_ms=_number(latency.get("p99")), throughput_rps=_number(entry.get("throughput_rps")),
                       pool_wait_p95_ms=_number(_table(entry, "pool_wait_ms").get("p95")))
    else:
        figures.update(throughput_rps=requests / seconds if seconds > 0 else None)
    figures["error_rate"] = errors / requests if requests else None
    return figures


def read_run_dir(path: Path) -> RunRecord:
    """A run directory: summary.json, intervals.jsonl, and ramp.json or outliers.json when there."""
    summary_path = path / "summary.json"
    summary = read_json(summary_path)
    entries = _levels(summary, summary_path)
    lines = read_intervals(path / "intervals.jsonl")
    ramp = read_json(path / "ramp.json") if (path / "ramp.json").is_file() else None
    outliers = read_json(path / "outliers.json") if (path / "outliers.json").is_file() else None
    notes = []
    by_id = any("level_id" in line for line in lines)
    if lines and not by_id:
        notes.append("intervals.jsonl has no level_id: seconds matched to levels by mode and concurrency or rate")
    if not lines:
        notes.append("no intervals.jsonl: no per-second figures, so no noise to judge by")
    clean = _clean_lines(lines)

    grouped: dict[tuple[str, float], list[dict]] = {}
    for entry in entries:
        if not (_number(entry.get("requests")) or 0):
            continue
        grouped.setdefault((entry["mode"], _level_value(entry["level"])), []).append(entry)
    steps = {}
    if ramp is not None and isinstance(ramp.get("steps"), list):
        steps = {(step.get("mode"), _level_value(step["level"])): step for step in ramp["steps"]
                 if isinstance(step, dict) and _number(step.get("level")) is not None}
    levels = []
    for key, group in grouped.items():
        ids = {entry.get("id") for entry in group}
        if by_id and None not in ids:
            mine = [line for line in clean if line.get("level_id") is not None and line.get("level_id") in ids]
        else:
            mine = [line for line in clean if _line_key(line) == key]
        series = {metric: [value for value in (_series_value(line, metric) for line in mine) if value is not None]
                  for metric in SERIES_METRICS}
        figures = _level_figures(group)
        level_notes = []
        if figures.get("pool_wait_p95_ms") is None:
            figures["pool_wait_p95_ms"] = _pool_wait_elsewhere(summary, key, len(grouped), steps)
        for metric in ("p50_ms", "p95_ms", "p99_ms", "pool_wait_p95_ms"):
            if figures.get(metric) is None and series[metric]:
                figures[metric] = statistics.median(series[metric])
                level_notes.append(f"{metric}: the median of its seconds (the summary holds no figure for it)")
        # No level of summary.json holds the harness lag: the median of the level's seconds stands for it.
        lag = series["harness_lag_p99_ms"]
        figures["harness_lag_p99_ms"] = statistics.median(lag) if lag else None
        seconds = sum(_number(entry.get("seconds")) or 0 for entry in group)
        levels.append(LevelRecord(key=key, label=level_label(*key), figures=figures, series=series,
                                  seconds=seconds, notes=tuple(level_notes)))
    kind = "ramp" if ramp is not None else "outliers" if outliers is not None else "run"
    extras = {**_ramp_extras(ramp), **_outliers_extras(outliers)}
    return RunRecord(path=path, kind=kind, summary=summary, levels=levels, extras=extras,
                     identity=run_identity(summary, levels, kind), notes=tuple(notes))


def _pool_wait_elsewhere(summary: dict, key: tuple[str, float], level_count: int,
                         steps: Mapping[tuple[str, float], dict]) -> float | None:
    """A level's pool wait p95 when its summary entry has none: the ramp step's, or the run's when it had one level."""
    if key in steps:
        return _number(steps[key].get("pool_wait_p95_ms"))
    if level_count == 1:
        return _number(_table(summary, "pool_wait_ms").get("p95"))
    return None


def _ramp_extras(ramp: dict | None) -> dict[str, float | None]:
    if ramp is None:
        return {}
    opened = ramp.get("mode") == "open"
    usl = _table(ramp, "usl")
    knee, safe = ("knee_rate", "safe_rate") if opened else ("knee_concurrency", "safe_concurrency")
    return {knee: _number(ramp.get(knee)), safe: _number(ramp.get(safe)),
            "usl_peak_concurrency": _number(usl.get("peak_concurrency"))}


def _outliers_extras(outliers: dict | None) -> dict[str, float | None]:
    if outliers is None:
        return {}
    # No breach (null) is a fact when the strata were judged: nobody breaches, as acceptance counts it.
    if outliers.get("judged", True):
        breach = _number(outliers.get("breach_event_count"))
        extras: dict[str, float | None] = {"breach_event_count": math.inf if breach is None else breach}
    else:
        extras = {"breach_event_count": None}
    for stratum in outliers.get("strata") or []:
        if isinstance(stratum, dict) and str(stratum.get("name", "")).startswith(_HEAVY_STRATA):
            extras[f"stratum_p95_ms:{stratum['name']}"] = _number(stratum.get("p95_ms"))
    return extras


def tool_version(document: Mapping) -> str | None:
    """The version of mlstress-tui that wrote a summary or report, when it says (`"tool": {"version": …}`)."""
    version = _table(document, "tool").get("version")
    return str(version) if version is not None else None


def run_identity(summary: dict, levels: list[LevelRecord], kind: str) -> dict[str, object]:
    """What makes two runs comparable (and what is only worth noting), as field name -> value."""
    target, load, database = _table(summary, "target"), _table(summary, "load"), _table(summary, "database")
    mode = load.get("mode")
    return {
        "target kind": target.get("kind"),
        "database users": database.get("users", target.get("users")),
        "database events": database.get("events", target.get("events")),
        "database seed": database.get("seed", target.get("seed")),
        "load mode": mode,
        "levels": tuple(level.label for level in levels),
        "user mix": load.get("user_mix"),
        "arrivals": load.get("arrivals") if mode == "open" else None,
        "preset": summary.get("preset"),
        "tool version": tool_version(summary),
        "run kind": kind,
        "target": target.get("label"),
        "pool size": load.get("pool_size"),
        "timeout s": load.get("timeout_s"),
        "duration s": load.get("duration_s"),
        "requests": load.get("requests"),
        "request seed": summary.get("seed"),
        "workers": _table(summary, "harness").get("workers"),
    }


def read_report_dir(path: Path) -> ReportRecord:
    """An accept report directory: report.json, and each stage's run directory under it."""
    report_path = path / "report.json"
    report = read_json(report_path)
    stages_list = report.get("stages")
    if not isinstance(stages_list, list) or not all(isinstance(stage, dict) and isinstance(stage.get("name"), str)
                                                    for stage in stages_list):
        raise UsageError(f"{str(report_path)!r}: stages is not a list of named stages: not a report this version reads")
    stages: dict[str, RunRecord | None] = {}
    for stage in stages_list:
        run_dir = _table(stage, "summary").get("run_dir")
        if not stage.get("ran", True) or not isinstance(run_dir, str):
            stages[stage["name"]] = None
            continue
        stage_path = path / run_dir
        if not (stage_path / "summary.json").is_file():
            raise UsageError(f"stage {stage['name']!r} of {str(report_path)!r}: {str(stage_path)!r} holds no "
                             "summary.json: was the report directory moved without its stage directories?")
        stages[stage["name"]] = read_run_dir(stage_path)
    target, database = _table(report, "target"), _table(report, "database")
    identity: dict[str, object] = {
        "target kind": target.get("kind"),
        "database users": database.get("users"),
        "database events": database.get("events"),
        "database seed": database.get("seed"),
        "preset": report.get("preset"),
        "stages": tuple(f"{stage['name']} ({stage.get('kind')})" for stage in stages_list),
        "tool version": tool_version(report) or next(
            (tool_version(record.summary) for record in stages.values() if record is not None), None),
        "target": target.get("label"),
        "request seed": report.get("seed"),
    }
    return ReportRecord(path=path, report=report, stages=stages, identity=identity)
