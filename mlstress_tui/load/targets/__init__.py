"""What the load drives: one target per module, all behind the same small interface."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from mlstress_tui.errors import UsageError


class RequestTimeout(Exception):
    """The request outlived `--timeout`; counted as an error of kind `timeout`."""

    error_kind = "timeout"


class Target(Protocol):
    """A system under test, driven through connections held in a bounded pool."""

    def connect(self) -> Any:
        """A new connection for one pool slot (None when the target needs none)."""

    def request(self, connection: Any, user_id: str, deadline_ns: int) -> None:
        """One request for `user_id`; raises on failure, RequestTimeout past `deadline_ns` (perf_counter_ns)."""

    def close(self, connection: Any) -> None:
        """Release a connection."""


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(us|ms|s)$")
_UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True)
class TargetSpec:
    """A picklable description of the target; each worker process builds its own from it."""

    kind: str  # "sqlite" | "sleep" | "python"
    db_path: Path | None = None
    query_sql: str | None = None
    query_file: str | None = None
    sleep_ms: float = 0.0
    function: str | None = None

    @property
    def label(self) -> str:
        if self.kind == "sleep":
            return f"sleep:{self.sleep_ms:g}ms"
        if self.kind == "python":
            return f"python:{self.function}"
        return self.db_path.name if self.db_path else "sqlite"

    def describe(self) -> dict:
        """The `target` object of summary.json."""
        info: dict = {"kind": self.kind, "label": self.label}
        if self.db_path is not None:
            info["db"] = str(self.db_path)
        if self.kind == "sqlite":
            info["query"] = self.query_file or "builtin:feature_query"
        if self.kind == "sleep":
            info["sleep_ms"] = self.sleep_ms
        if self.kind == "python":
            info["function"] = self.function
        return info

    def build(self, timeout_s: float = 5.0) -> Target:
        """The live target, built inside the process that drives it; `timeout_s` bounds its own waits."""
        if self.kind == "sleep":
            from mlstress_tui.load.targets.sleep import SleepTarget

            return SleepTarget(self.sleep_ms)
        if self.kind == "python":
            from mlstress_tui.load.targets.python import PythonTarget

            return PythonTarget(self.function or "")
        from mlstress_tui.load.targets.sqlite import SQLiteFeatureTarget

        return SQLiteFeatureTarget(self.db_path, self.query_sql, timeout_s=timeout_s)


def parse_target(text: str) -> TargetSpec:
    """`sleep:2ms` or `python:pkg.module:function` (SQLite targets come from --db)."""
    kind, _, rest = text.partition(":")
    if kind == "sleep":
        match = _DURATION.match(rest.strip())
        if not match:
            raise UsageError(f"bad target {text!r}: write a sleep time such as sleep:2ms, sleep:500us or sleep:0ms")
        return TargetSpec(kind="sleep", sleep_ms=float(match.group(1)) * _UNIT_MS[match.group(2)])
    if kind == "python":
        module, _, function = rest.rpartition(":")
        if not module or not function:
            raise UsageError(f"bad target {text!r}: write python:package.module:function")
        return TargetSpec(kind="python", function=rest)
    raise UsageError(f"unknown target {text!r}: use --db PATH, --target sleep:2ms or --target python:pkg.module:function")
