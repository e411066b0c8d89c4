"""Where the tool keeps its cache, its shipped data files and its run directories."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

DEFAULT_DATABASE_NAME = "default.sqlite"


def cache_dir() -> Path:
    """`$MLSTRESS_CACHE_DIR`, else `$XDG_CACHE_HOME/mlstress-tui`, else `~/.cache/mlstress-tui`."""
    explicit = os.environ.get("MLSTRESS_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "mlstress-tui"


def default_database_path() -> Path:
    """The default database's path in the cache directory, generated on first use."""
    return cache_dir() / DEFAULT_DATABASE_NAME


def data_dir(name: str) -> Path:
    """A shipped data folder (`themes` or `presets`), installed or in a source checkout."""
    package_dir = Path(__file__).resolve().parent
    installed = package_dir / "_data" / name
    if installed.is_dir():
        return installed
    return package_dir.parent / name


def default_run_dir(now: datetime | None = None) -> Path:
    """`./mlstress-runs/<UTC timestamp>/`, the default `--out` of every measuring command."""
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    return Path("mlstress-runs") / stamp
