"""TOML files a user hands the tool (presets, profiles, mappings): read, or one line saying why not."""

from __future__ import annotations

import tomllib
from pathlib import Path

from mlstress_tui.errors import UsageError


def read_toml(path: Path, what: str, hint: str = "") -> dict:
    """The file's table; `what` names it in the error ("preset 'x.toml'", "--profile p.toml"), `hint` says what to do."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise UsageError(f"cannot read {what}: {error.strerror}{hint}") from None
    except UnicodeDecodeError as error:
        raise UsageError(f"{what} is not UTF-8 text (byte {error.start} is 0x{error.object[error.start]:02x}): "
                         f"save it as UTF-8{hint}") from None
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"{what} is not valid TOML ({error}){hint}") from None
