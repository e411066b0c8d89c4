"""Load profiles and SLA thresholds, read from TOML preset files."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from mlstress_tui.errors import UsageError
from mlstress_tui.paths import data_dir

DEFAULT_PRESET = "default"
DEFAULT_SLA_P95_MS = 200.0
# The [load] keys a preset may set, and the TOML types each takes.
LOAD_KEYS = {
    "mode": (str,), "user_mix": (str,),
    "concurrency": (int,), "pool_size": (int,), "requests": (int,),
    "rate": (int, float), "duration_s": (int, float), "timeout_s": (int, float),
}


@dataclass(frozen=True)
class Preset:
    """A named load profile: defaults for the load options and the SLA the dashboard lights."""

    name: str
    description: str = ""
    load: dict = field(default_factory=dict)
    sla_p95_ms: float = DEFAULT_SLA_P95_MS


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
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise UsageError(f"cannot read preset {str(path)!r}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"preset {str(path)!r} is not valid TOML: {error}") from None
    load = data.get("load", {})
    unknown = set(load) - set(LOAD_KEYS)
    if unknown:
        raise UsageError(f"preset {str(path)!r} has unknown [load] keys {sorted(unknown)}: known are {sorted(LOAD_KEYS)}")
    for key, value in load.items():
        if isinstance(value, bool) or not isinstance(value, LOAD_KEYS[key]):
            kind = "a whole number" if LOAD_KEYS[key] == (int,) else "a number" if int in LOAD_KEYS[key] else "text"
            raise UsageError(f"preset {str(path)!r}: [load] {key} must be {kind}, got {value!r}")
    sla = data.get("sla", {}).get("p95_ms", DEFAULT_SLA_P95_MS)
    if not isinstance(sla, int | float) or sla <= 0:
        raise UsageError(f"preset {str(path)!r}: [sla] p95_ms must be a positive number of milliseconds")
    return Preset(name=str(data.get("name", path.stem)), description=str(data.get("description", "")),
                  load=dict(load), sla_p95_ms=float(sla))
