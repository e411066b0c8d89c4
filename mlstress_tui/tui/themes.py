"""Dashboard themes read from TOML files in `themes/`, one Textual `Theme` per file."""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from textual.color import Color, ColorParseError
from textual.css.stylesheet import Stylesheet
from textual.theme import Theme

from mlstress_tui.paths import data_dir

DEFAULT_THEME = "mlstress-night"

_COLOUR_FIELDS = ("primary", "secondary", "warning", "error", "success", "accent",
                  "foreground", "background", "surface", "panel", "boost")
_ALLOWED_FIELDS = {field.name for field in fields(Theme)}
_FLAGS = ("dark", "ansi")
# Textual's own: how far shades spread from a base colour, and the opacity of text.
_NUMBERS = {"luminosity_spread": (0.0, 1.0), "text_alpha": (0.0, 1.0)}
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
# The name a variable's value is checked under: no theme variable of Textual's is called this.
_PROBE = "mlstress-theme-probe"


@dataclass(frozen=True)
class ThemeLoad:
    """The themes that loaded, in file order, and one line per file that did not."""

    themes: list[Theme]
    problems: list[str]


def load_theme_file(path: Path) -> Theme:
    """One theme file as a `Theme`; ValueError with one line naming the file and key when it is not usable.

    Everything is checked here, at load, so that a bad value never reaches
    Textual's CSS: a theme is applied when the app starts and again at every
    `t`, and a stylesheet that fails to parse then would stop the run.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ValueError(f"cannot read theme {path.name}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"theme {path.name} is not UTF-8 text (byte {error.start})") from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"theme {path.name} is not valid TOML: {error}") from None
    unknown = set(data) - _ALLOWED_FIELDS
    if unknown:
        raise ValueError(f"theme {path.name} has unknown keys {sorted(unknown)}")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"theme {path.name}: name = {_shown(name)} must be letters, digits, '-', '_' or '.'")
    if "primary" not in data:
        raise ValueError(f"theme {path.name} needs a primary colour")
    for key in _FLAGS:
        if key in data and not isinstance(data[key], bool):
            raise ValueError(f"theme {path.name}: {key} = {_shown(data[key])} must be true or false")
    for key, (low, high) in _NUMBERS.items():
        value = data.get(key)
        if key in data and (isinstance(value, bool) or not isinstance(value, (int, float))
                            or not math.isfinite(value) or not low <= value <= high):
            raise ValueError(f"theme {path.name}: {key} = {_shown(value)} must be a number from {low:g} to {high:g}")
    for key in _COLOUR_FIELDS:
        if key in data and not _is_colour(data[key]):
            raise ValueError(f"theme {path.name}: {key} = {_shown(data[key])} is not a colour")
    variables = data.get("variables", {})
    if not isinstance(variables, dict):
        raise ValueError(f"theme {path.name}: variables = {_shown(variables)} must be a table ([variables])")
    try:
        theme = Theme(**data)
        defaults = theme.to_color_system().generate()
    except Exception as error:  # A theme file is user input: any failure is reported, never raised.
        raise ValueError(f"theme {path.name} is not usable: {error}") from None
    for key, value in variables.items():
        problem = _variable_problem(key, value, defaults)
        if problem:
            raise ValueError(f"theme {path.name}: variables.{key} = {_shown(value)} {problem}")
    return theme


def _shown(value: object) -> str:
    """A value from a theme file as a line shows it: repr, short, without control characters."""
    text = repr(value)
    text = "".join(character if character.isprintable() else "?" for character in text)
    return text if len(text) <= 40 else text[:39] + "…"


def _is_colour(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        Color.parse(value)
    except (ColorParseError, ValueError):
        return False
    return True


def _variable_problem(key: object, value: object, defaults: dict[str, str]) -> str | None:
    """Why a theme variable would break the stylesheet it is substituted into, or None when it parses there."""
    if not isinstance(key, str) or not _NAME.fullmatch(key):
        return "has a name that is not letters, digits, '-' or '_'"
    if not isinstance(value, str):
        return "must be text (a colour, or a text style for a name ending in -style)"
    if any(character in value for character in ";{}\n"):
        return "holds ; { } or a line break"
    # Parsed by Textual itself, in the role Textual gives such a variable, with the theme's other variables in reach.
    role, what = (("link-style", "a link style") if key.startswith("link-style") else
                  ("text-style", "a text style") if key.endswith("-style") else
                  ("background", "a background colour") if "background" in key else ("color", "a colour"))
    sheet = Stylesheet(variables={**defaults, _PROBE: value})
    sheet.add_source(f"Screen {{ {role}: ${_PROBE}; }}", read_from=("theme", ""))
    try:
        sheet.parse()
    except Exception:  # StylesheetParseError, or the tokenizer's own errors on stray characters
        return f"is not {what}"
    return None


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
