"""Dashboard themes read from TOML files in `themes/`, one Textual `Theme` per file."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from textual.color import Color, ColorParseError
from textual.theme import Theme

from mlstress_tui.paths import data_dir

DEFAULT_THEME = "mlstress-night"

_COLOUR_FIELDS = ("primary", "secondary", "warning", "error", "success", "accent",
                  "foreground", "background", "surface", "panel", "boost")
_ALLOWED_FIELDS = {field.name for field in fields(Theme)}


@dataclass(frozen=True)
class ThemeLoad:
    """The themes that loaded, in file order, and one line per file that did not."""

    themes: list[Theme]
    problems: list[str]


def load_theme_file(path: Path) -> Theme:
    """One theme file as a `Theme`; ValueError with a one-line reason when it is not usable."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ValueError(f"cannot read theme {path.name}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"theme {path.name} is not valid TOML: {error}") from None
    unknown = set(data) - _ALLOWED_FIELDS
    if unknown:
        raise ValueError(f"theme {path.name} has unknown keys {sorted(unknown)}")
    if not isinstance(data.get("name"), str) or not data["name"]:
        raise ValueError(f"theme {path.name} needs a name")
    if "primary" not in data:
        raise ValueError(f"theme {path.name} needs a primary colour")
    colours = [(key, data[key]) for key in _COLOUR_FIELDS if key in data]
    colours += list(data.get("variables", {}).items())
    for key, value in colours:
        try:
            Color.parse(value)
        except (ColorParseError, TypeError, ValueError):
            # Variables may hold non-colour values (e.g. "bold"); only the fixed fields must parse.
            if key in _COLOUR_FIELDS:
                raise ValueError(f"theme {path.name}: {key} = {value!r} is not a colour") from None
    try:
        theme = Theme(**data)
        theme.to_color_system()
    except Exception as error:  # A theme file is user input: any failure is reported, never raised.
        raise ValueError(f"theme {path.name} is not usable: {error}") from None
    return theme


def load_themes(directory: Path | None = None) -> ThemeLoad:
    """Every `*.toml` theme in `directory` (default: the shipped `themes/`), skipping broken ones."""
    directory = directory or data_dir("themes")
    themes: list[Theme] = []
    problems: list[str] = []
    for path in sorted(directory.glob("*.toml")):
        try:
            themes.append(load_theme_file(path))
        except ValueError as error:
            problems.append(str(error))
    # The default theme leads the `t` cycle whatever the file names sort to.
    themes.sort(key=lambda theme: theme.name != DEFAULT_THEME)
    return ThemeLoad(themes=themes, problems=problems)
