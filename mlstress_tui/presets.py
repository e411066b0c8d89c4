"""Load profiles, SLA thresholds and acceptance suites (stages and criteria), read from TOML preset files."""

from __future__ import annotations

import math
import re
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path

from mlstress_tui.errors import UsageError
from mlstress_tui.bounds import BOUNDS
from mlstress_tui.paths import data_dir
from mlstress_tui.stages import METRICS_BY_KIND, OPS, STAGE_KINDS, Criterion, Stage, StageError
from mlstress_tui.toml_files import read_toml

DEFAULT_PRESET = "default"
DEFAULT_SLA_P95_MS = 200.0
# The [load] keys a preset may set, and the TOML types each takes.
LOAD_KEYS = {
    "mode": (str,), "user_mix": (str,),
    "concurrency": (int,), "pool_size": (int,), "requests": (int,),
    "rate": (int, float), "duration_s": (int, float), "timeout_s": (int, float),
}
# A misspelt table ([[criterion]] for [[criteria]]) would otherwise drop the gate without a word.
TOP_LEVEL_KEYS = ("name", "description", "shows", "load", "sla", "stages", "criteria")
# What a preset can exist to show (`shows`): a run that did not show it says so (session.snapshot.point_missed).
POOL_QUEUEING = "pool_queueing"
SHOWS = (POOL_QUEUEING,)
SLA_KEYS = ("p95_ms", "target_concurrency", "target_rps")
CRITERION_KEYS = {"stage": (str,), "metric": (str,), "op": (str,), "value": (int, float, str)}
# A criterion's value relative to a baseline run: `"baseline"` or `"baseline * 1.10"` (a positive ratio).
BASELINE_VALUE = re.compile(r"\s*baseline\s*(?:\*\s*(?P<ratio>[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*)?")


@dataclass(frozen=True)
class Preset:
    """A named load profile: defaults for the load options, the SLA the dashboard lights, and an acceptance suite."""

    name: str
    description: str = ""
    load: dict = field(default_factory=dict)
    sla_p95_ms: float = DEFAULT_SLA_P95_MS
    # What production must carry: the release checklist confirms throughput at this concurrency or rate.
    target_concurrency: int | None = None
    target_rps: float | None = None
    stages: tuple[Stage, ...] = ()
    criteria: tuple[Criterion, ...] = ()
    shows: str | None = None  # what the preset exists to show (SHOWS), said when a run misses it


def available_presets() -> list[str]:
    return sorted(path.stem for path in data_dir("presets").glob("*.toml"))


def load_preset(name_or_file: str | None) -> Preset:
    """A shipped preset by name, or a preset file by path; UsageError when neither reads."""
    name_or_file = name_or_file or DEFAULT_PRESET
    path = Path(name_or_file)
    if not (path.suffix == ".toml" or path.exists()):
        path = data_dir("presets") / f"{name_or_file}.toml"
        if not path.is_file():
            known = ", ".join(available_presets())
            raise UsageError(f"unknown preset {name_or_file!r}: use one of {known} or a .toml file")
    where = f"preset {str(path)!r}"
    data = read_toml(path, where)
    unknown = set(data) - set(TOP_LEVEL_KEYS)
    if unknown:
        raise UsageError(f"{where} has unknown keys {sorted(unknown)}: known are {list(TOP_LEVEL_KEYS)}")
    for key in ("name", "description"):
        if not isinstance(data.get(key, ""), str):
            raise UsageError(f"{where}: {key} must be text, got {data[key]!r}")
    if "shows" in data and data["shows"] not in SHOWS:
        raise UsageError(f"{where}: shows must be one of {', '.join(SHOWS)}, got {data['shows']!r}")
    load = _table(data, "load", where)
    unknown = set(load) - set(LOAD_KEYS)
    if unknown:
        raise UsageError(f"{where} has unknown [load] keys {sorted(unknown)}: known are {sorted(LOAD_KEYS)}")
    for key, value in load.items():
        if not _is(value, LOAD_KEYS[key]):
            raise UsageError(f"{where}: [load] {key} must be {_kind(LOAD_KEYS[key])}, got {value!r}")
        if key in BOUNDS and not BOUNDS[key].holds(value):
            raise UsageError(f"{where}: [load] {key} must be {BOUNDS[key]}, got {value!r}")
    sla_table = _table(data, "sla", where)
    unknown = set(sla_table) - set(SLA_KEYS)
    if unknown:
        raise UsageError(f"{where} has unknown [sla] keys {sorted(unknown)}: known are {list(SLA_KEYS)}")
    sla = sla_table.get("p95_ms", DEFAULT_SLA_P95_MS)
    if not _is(sla, (int, float)) or not BOUNDS["latency_ms"].holds(sla):
        raise UsageError(f"{where}: [sla] p95_ms must be {BOUNDS['latency_ms']}, got {sla!r}")
    for key, bound in (("target_concurrency", BOUNDS["concurrency"]), ("target_rps", BOUNDS["rate"])):
        if key in sla_table and not bound.holds(sla_table[key]):
            raise UsageError(f"{where}: [sla] {key} must be {bound}, got {sla_table[key]!r}")
    stages = _stages(data, where, float(sla))
    criteria = _criteria(data, where, stages)
    return Preset(name=data.get("name", path.stem), description=data.get("description", ""),
                  load=dict(load), sla_p95_ms=float(sla), stages=stages, criteria=criteria, shows=data.get("shows"),
                  target_concurrency=sla_table.get("target_concurrency"), target_rps=sla_table.get("target_rps"))


def _is(value: object, types: tuple[type, ...]) -> bool:
    """Whether a TOML value has one of the types; a bool is not a number, and a number is finite."""
    if isinstance(value, bool) or not isinstance(value, types):
        return False
    return not isinstance(value, float) or math.isfinite(value)


def _kind(types: tuple[type, ...]) -> str:
    """What a user must write for these types, in words."""
    if types == (int,):
        return "a whole number"
    if set(types) == {int, float}:
        return "a number"
    if types == (str,):
        return "text"
    return " or ".join("a whole number" if t is int else "a number" if t is float else "text" for t in types)


def _table(data: dict, key: str, where: str) -> dict:
    table = data.get(key, {})
    if not isinstance(table, dict):
        raise UsageError(f"{where}: {key} must be a table ([{key}]), got {table!r}")
    return table


def _array_of_tables(data: dict, key: str, where: str) -> list[dict]:
    tables = data.get(key, [])
    if not isinstance(tables, list) or not all(isinstance(table, dict) for table in tables):
        raise UsageError(f"{where}: {key} must be an array of tables, each under [[{key}]]")
    return tables


def _stages(data: dict, where: str, sla_p95_ms: float) -> tuple[Stage, ...]:
    """The [[stages]] in order, each checked for its kind's keys, their types and whether it can run."""
    stages: list[Stage] = []
    for number, table in enumerate(_array_of_tables(data, "stages", where), start=1):
        name = table.get("name")
        if not isinstance(name, str):
            raise UsageError(f"{where}: stage #{number}: name must be text, got {name!r}")
        at = f"{where}: stage {name!r}"
        if any(stage.name == name for stage in stages):
            raise UsageError(f"{at}: name is used by an earlier stage: give each stage its own name")
        kind = table.get("kind")
        if kind not in STAGE_KINDS:
            raise UsageError(f"{at}: kind must be one of {', '.join(STAGE_KINDS)}, got {kind!r}")
        cls = STAGE_KINDS[kind]
        unknown = set(table) - set(cls.KEYS) - {"name", "kind"}
        if unknown:
            raise UsageError(f"{at}: unknown keys {sorted(unknown)} for a {kind} stage: known are "
                             f"{['name', 'kind', *cls.KEYS]}")
        values = {key: value for key, value in table.items() if key not in ("name", "kind")}
        for key, value in values.items():
            if not _is(value, cls.KEYS[key]):
                raise UsageError(f"{at}: {key} must be {_kind(cls.KEYS[key])}, got {value!r}")
        if kind == "ramp":
            values.setdefault("sla_p95_ms", sla_p95_ms)
        missing = [f.name for f in fields(cls) if f.default is MISSING and f.name not in values and f.name != "name"]
        if missing:
            raise UsageError(f"{at}: a {kind} stage needs {', '.join(missing)}")
        try:
            stages.append(cls(name=name, **values))
        except StageError as error:
            raise UsageError(f"{at}: {error.key} {error.problem}") from None
    return tuple(stages)


def _criteria(data: dict, where: str, stages: tuple[Stage, ...]) -> tuple[Criterion, ...]:
    """The [[criteria]], each on a stage of this preset and a metric that stage's kind yields."""
    by_name = {stage.name: stage for stage in stages}
    criteria: list[Criterion] = []
    for number, table in enumerate(_array_of_tables(data, "criteria", where), start=1):
        at = f"{where}: criterion #{number}"
        unknown = set(table) - set(CRITERION_KEYS)
        if unknown:
            raise UsageError(f"{at}: unknown keys {sorted(unknown)}: known are {list(CRITERION_KEYS)}")
        for key, types in CRITERION_KEYS.items():
            if key not in table:
                raise UsageError(f"{at}: {key} is missing: a criterion needs {', '.join(CRITERION_KEYS)}")
            if not _is(table[key], types):
                kind = 'a number or "baseline * F"' if key == "value" else _kind(types)
                raise UsageError(f"{at}: {key} must be {kind}, got {table[key]!r}")
        stage = by_name.get(table["stage"])
        if stage is None:
            known = ", ".join(by_name) or "none: add [[stages]]"
            raise UsageError(f"{at}: stage {table['stage']!r} is not a stage of this preset: its stages are {known}")
        if table["metric"] not in METRICS_BY_KIND[stage.kind]:
            raise UsageError(f"{at}: metric {table['metric']!r} is not one a {stage.kind} stage ({stage.name!r}) "
                             f"measures: use one of {', '.join(METRICS_BY_KIND[stage.kind])}")
        if table["op"] not in OPS:
            raise UsageError(f"{at}: op {table['op']!r} is not a comparison: use one of {' '.join(OPS)}")
        value, ratio = _criterion_value(table["value"], at)
        criteria.append(Criterion(stage=stage.name, metric=table["metric"], op=table["op"], value=value,
                                  baseline_ratio=ratio))
    return tuple(criteria)


def _criterion_value(value: int | float | str, at: str) -> tuple[float, float | None]:
    """A number, or `"baseline * F"`: no number yet (NaN) and the ratio F to a baseline run's measurement."""
    if not isinstance(value, str):
        return float(value), None
    match = BASELINE_VALUE.fullmatch(value)
    ratio = float(match["ratio"]) if match and match["ratio"] else 1.0
    if match is None or not (math.isfinite(ratio) and ratio > 0):
        raise UsageError(f'{at}: value must be a number or "baseline * F" with F a positive number '
                         f'(e.g. "baseline * 1.10": at most 10% above the baseline run), got {value!r}')
    return math.nan, ratio
