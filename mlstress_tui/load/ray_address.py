"""`--ray ADDRESS` read and its port knocked on before Ray is asked: a cluster that is not there is one line, at once.

Ray itself waits a long time for an address where nothing answers (over two
minutes of "Failed to connect to GCS" for `host:port`, 33 s and a warning for
`ray://host:port`). A TCP connect to the same port says the same within seconds.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

from mlstress_tui.errors import UsageError

PROBE_TIMEOUT_S = 3.0
# Ray Client's port when a ray:// address gives none.
RAY_CLIENT_PORT = 10001
FORMS = "auto, local, host:port (as 'ray start' prints it) or ray://host:port"


def ray_endpoint(address: str) -> tuple[str, int, str] | None:
    """(host, port, where `auto` found it) that `--ray ADDRESS` connects to; None for `local` and an `auto` that finds none."""
    if address == "local":
        return None
    where: str | None = address
    found = ""
    if address == "auto":
        where, found = _auto_address()
    if where is None:
        return None  # no address on record: Ray looks for a running instance itself and says so at once
    client = where.startswith("ray://")
    if "://" in where and not client:
        raise UsageError(f"--ray {address!r}{found} is not a Ray address: use {FORMS}")
    try:
        parts = urlsplit(where if client else f"//{where}")
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if port is None and client:
        port = RAY_CLIENT_PORT
    if not host or port is None or parts.path not in ("", "/") or parts.query:
        raise UsageError(f"--ray {address!r}{found} is not a Ray address: use {FORMS}")
    return host, port, found


def _auto_address() -> tuple[str | None, str]:
    """Where `auto` leads, as Ray reads it: RAY_ADDRESS, else the address the last 'ray start' here recorded."""
    if os.environ.get("RAY_ADDRESS"):
        return os.environ["RAY_ADDRESS"], " (--ray auto: from RAY_ADDRESS)"
    record = _temp_dir() / "ray" / "ray_current_cluster"
    try:
        text = record.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None, ""
    return (text, f" (--ray auto: the last cluster, as {record} records it)") if text else (None, "")


def _temp_dir() -> Path:
    """Ray's temporary directory, by Ray's own rule (RAY_TMPDIR, TMPDIR on Linux, else /tmp)."""
    if os.environ.get("RAY_TMPDIR"):
        return Path(os.environ["RAY_TMPDIR"])
    if sys.platform.startswith("linux") and os.environ.get("TMPDIR"):
        return Path(os.environ["TMPDIR"])
    return Path("/tmp")


def check_ray_address(address: str, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """One line (UsageError) when nothing answers at `--ray ADDRESS`'s port within `timeout_s`; silent when something does."""
    endpoint = ray_endpoint(address)
    if endpoint is None:
        return
    host, port, found = endpoint
    shown = f"{host}:{port}{found or (f' (--ray {address})' if address not in (f'{host}:{port}', f'ray://{host}:{port}') else '')}"
    hint = "start the cluster ('ray start --head'), check --ray, or use --ray local"
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return
    except socket.gaierror:
        raise UsageError(f"--ray: the host of {shown} is not known here: {hint}") from None
    except ConnectionRefusedError:
        raise UsageError(f"--ray: nothing listening at {shown} (connection refused): {hint}") from None
    except TimeoutError:
        raise UsageError(f"--ray: no answer from {shown} within {timeout_s:g} s: {hint}") from None
    except OSError as error:
        raise UsageError(f"--ray: cannot reach {shown} ({(error.strerror or str(error)).lower()}): {hint}") from None
