"""What a profile file may hold: a JSON Schema checked before a twin is built, so a hand edit is one line.

A profile is a file people edit. Every key is checked against the schema below
(jsonschema: types, ranges, known keys), then the few rules that tie keys
together (quantiles rise with their level, a maximum above them, dates in
order); the first problem becomes one line naming the key and what it must be.
Every number must be finite: TOML can say nan and inf.
"""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError, best_match

from mlstress_tui.errors import UsageError

QUANTILE_KEY = r"^p(100|[0-9]{1,2}(\.[0-9]+)?)$"
DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


def _number(minimum: float = 0.0, maximum: float | None = None, whole: bool = False) -> dict:
    must = "a whole number" if whole else "a number"
    must += f" from {minimum:g} to {maximum:g}" if maximum is not None else f" of at least {minimum:g}"
    node: dict[str, Any] = {"type": "integer" if whole else "number", "finite": True, "minimum": minimum, "must": must}
    if maximum is not None:
        node["maximum"] = maximum
    return node


SHARE = _number(0.0, 1.0)
TEXT = {"type": "string", "minLength": 1, "must": "text in quotes"}
PROFILE = {
    "type": "object",
    "required": ["schema", "rows", "events_per_user"],
    "additionalProperties": False,
    "properties": {
        "schema": {"type": "string"},
        "source": TEXT,
        "taken_at": TEXT,
        "extremes": {"enum": ["exact", "coarsened"], "must": "\"exact\" or \"coarsened\""},
        "coarsened": {"type": "array", "items": TEXT, "must": "a list of keys in quotes"},
        "rows": {
            "type": "object", "required": ["users", "events"], "additionalProperties": False,
            "must": "a table with users and events",
            "properties": {"users": _number(1, whole=True), "events": _number(0, whole=True)},
        },
        "events_per_user": {
            "type": "object", "required": ["mean", "max", "quantiles"], "additionalProperties": False,
            "must": "a table with mean, max and quantiles",
            "properties": {
                "mean": _number(0), "share_without_events": SHARE,
                "min_with_events": _number(0, whole=True), "max": _number(0, whole=True),
                "quantiles": {
                    "type": "object", "minProperties": 1, "must": "a table of quantiles such as p50 = 4.0",
                    "propertyNames": {"pattern": QUANTILE_KEY, "must": "a quantile key such as p50 or p99.9"},
                    "additionalProperties": _number(0),
                },
            },
        },
        "mixes": {
            "type": "object", "must": "a table of mixes",
            "propertyNames": {"enum": ["segment", "country", "device_type", "event_type"],
                              "must": "one of segment, country, device_type, event_type"},
            "additionalProperties": {
                "type": "object", "minProperties": 1, "additionalProperties": SHARE,
                "must": "a table of shares such as free = 0.55",
            },
        },
        "dates": {
            "type": "object", "additionalProperties": False, "must": "a table of dates",
            "properties": {key: {"type": "string", "pattern": DATE, "must": "a date in quotes, YYYY-MM-DD"}
                           for key in ("signup_first", "signup_last", "events_first", "events_last")},
        },
        "missing": {
            "type": "object", "must": "a table of shares such as \"users.city\" = 0.03",
            "propertyNames": {"pattern": r"^(users|events)\.[A-Za-z_][A-Za-z_0-9]*$",
                              "must": "a column such as \"users.city\" or \"events.amount\""},
            "additionalProperties": SHARE,
        },
        "purchases": {
            "type": "object", "additionalProperties": False, "must": "a table with event_type and share_of_events",
            "properties": {
                "event_type": TEXT, "share_of_events": SHARE,
                "spend": {
                    "type": "object", "must": "a table of amounts such as p50 = 20.5",
                    "propertyNames": {"pattern": QUANTILE_KEY[:-1] + "|^(min|mean|max)$",
                                      "must": "min, mean, max or a quantile key such as p50"},
                    "additionalProperties": _number(0),
                },
            },
        },
        "not_profiled": {"type": ["array", "object"], "must": "a list or table of columns"},
    },
}


def _finite(validator, wanted, instance, schema):
    if wanted and isinstance(instance, float) and not math.isfinite(instance):
        yield ValidationError(f"{instance} is not finite")


_Validator = validators.extend(Draft202012Validator, {"finite": _finite})


def check_profile(profile: dict, path: Path) -> None:
    """Raise UsageError naming the first key that is not what a profile holds, and what it must be."""
    errors = list(_Validator(PROFILE).iter_errors(profile))
    if errors:
        raise UsageError(_say(best_match(errors), path))
    _check_relations(profile, path)


def _say(error: ValidationError, path: Path) -> str:
    key = ".".join(str(part) for part in error.absolute_path)
    where = f"--profile {path}: "
    fix = "; fix it or write the profile again with 'mlstress-tui profile'"
    if error.validator == "required":
        missing = next(name for name in error.validator_value if name not in error.instance)
        return where + f"{_join(key, missing)} is missing{fix}"
    if error.validator == "additionalProperties" and error.validator_value is False:
        allowed = ", ".join(error.schema.get("properties", {}))
        unknown = next(name for name in error.instance if name not in error.schema.get("properties", {}))
        return where + f"unknown key {_join(key, unknown)!r} (known here: {allowed}){fix}"
    if "propertyNames" in error.schema_path:
        return where + f"{_join(key, str(error.instance))!r} is not {error.schema.get('must', 'a known key')}{fix}"
    must = error.schema.get("must") or error.message
    return where + f"{key or 'the file'} must be {must} (got {_shown(error.instance)}){fix}"


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_relations(profile: dict, path: Path) -> None:
    """The rules between keys that a schema of single values cannot say."""
    where = f"--profile {path}: "
    per_user = profile["events_per_user"]
    quantiles = _by_level(per_user["quantiles"], "events_per_user.quantiles", where)
    _rising(quantiles, "events_per_user.quantiles", where)
    if quantiles and per_user["max"] < quantiles[-1][2]:
        raise UsageError(where + f"events_per_user.max must be at least the highest quantile "
                         f"({quantiles[-1][1]} = {quantiles[-1][2]:g}); got {per_user['max']}")
    for name, shares in profile.get("mixes", {}).items():
        if sum(shares.values()) <= 0:
            raise UsageError(where + f"mixes.{name} must give at least one value a share above 0")
    spend = profile.get("purchases", {}).get("spend", {})
    spend_levels = _by_level({key: value for key, value in spend.items() if key.startswith("p")},
                             "purchases.spend", where)
    _rising(spend_levels, "purchases.spend", where)
    if "min" in spend and "max" in spend and spend["min"] > spend["max"]:
        raise UsageError(where + f"purchases.spend.min ({spend['min']:g}) must not be above purchases.spend.max "
                         f"({spend['max']:g})")
    dates = profile.get("dates", {})
    for key, text in dates.items():
        try:
            date.fromisoformat(text)
        except ValueError:
            raise UsageError(where + f"dates.{key} must be a real date, YYYY-MM-DD (got {text!r})") from None
    for first, last in (("signup_first", "signup_last"), ("events_first", "events_last")):
        if first in dates and last in dates and dates[first] > dates[last]:
            raise UsageError(where + f"dates.{first} ({dates[first]}) must not be after dates.{last} ({dates[last]})")


def _by_level(quantiles: dict, key: str, where: str) -> list[tuple[float, str, float]]:
    levels = []
    for name, value in quantiles.items():
        level = float(name[1:])
        if not 0 < level <= 100:
            raise UsageError(where + f"{key}.{name} is not a quantile key: the level must be above 0 and at most 100")
        levels.append((level, name, float(value)))
    return sorted(levels)


def _rising(levels: list[tuple[float, str, float]], key: str, where: str) -> None:
    for (_, low, low_value), (_, high, high_value) in zip(levels, levels[1:]):
        if high_value < low_value:
            raise UsageError(where + f"{key}.{high} ({high_value:g}) must not be below {key}.{low} ({low_value:g}): "
                             "quantiles rise with their level")
