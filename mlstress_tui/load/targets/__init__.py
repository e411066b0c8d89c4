"""What the load drives: one class per target kind (one module each), all behind one contract.

A `Target` is a picklable description built in the controller: it checks the
user's input (`check`, one line on bad input), says where the user ids and
their event counts come from, and describes itself without secrets. Each worker
process `open()`s it into a `LiveTarget`: connections, one request for a user
id (ok, or an exception naming its kind through `error_kind`), and the pool of
connections whose acquire the worker times as pool wait and whose call it times
as service.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from mlstress_tui.errors import UsageError
from mlstress_tui.load.pool import ConnectionPool, ConnectionSlots


class RequestTimeout(Exception):
    """The request outlived `--timeout`; counted as an error of kind `timeout`."""

    error_kind = "timeout"


class ConnectionLost(Exception):
    """The connection broke under the request (a terminated backend, a restarted server)."""

    error_kind = "connection_lost"


@dataclass(frozen=True)
class UserLocation:
    """Where a target's user ids and event counts live: a SQLite file or a PostgreSQL DSN (or neither)."""

    db_path: Path | None = None
    dsn: str | None = None


class LiveTarget(ABC):
    """A target opened inside a worker process.

    `owns_connections`: in the closed loop, when the pool has a slot for every
    virtual user, each user keeps a connection of its own (`connect`, `close`)
    and the pool is skipped: no wait to measure, no hand-off to pay for.
    """

    owns_connections: bool = False

    @abstractmethod
    def connect(self) -> Any:
        """A new connection for one pool slot (None when the target needs none)."""

    @abstractmethod
    def request(self, connection: Any, user_id: str, deadline_ns: int) -> str | None:
        """One request for `user_id`; raises on failure, RequestTimeout past `deadline_ns` (perf_counter_ns).

        A target with more than one path (`--cache`) returns the one this request took ("cache", "db",
        "cache_miss", "cache_down_fallback") for the harness to count it under, and an exception it raises carries
        that path as `request_path`; every other target returns None.
        """

    def close(self, connection: Any) -> None:
        """Release a connection."""

    def make_pool(self) -> ConnectionPool:
        """The pool of connections the worker's virtual users share (default: the harness's fair slot pool)."""
        return ConnectionSlots(self.connect, self.close)


class Target(ABC):
    """A picklable description of the system under test; each worker process opens its own from it."""

    kind: ClassVar[str]

    @property
    @abstractmethod
    def label(self) -> str:
        """A short name for headers and summaries, without secrets."""

    def describe(self) -> dict[str, Any]:
        """The `target` object of summary.json, without secrets."""
        return {"kind": self.kind, "label": self.label}

    def check(self) -> None:
        """Fail with a one-line UsageError before any process starts when the target cannot work."""

    def users(self) -> UserLocation:
        """Where the user ids the load asks for come from (empty: `--users-db` or synthetic ids)."""
        return UserLocation()

    @abstractmethod
    def open(self, timeout_s: float) -> LiveTarget:
        """The live target, inside the process that drives it; `timeout_s` bounds its own waits."""


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(us|ms|s)$")
_UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def parse_target(text: str) -> Target:
    """`sleep:2ms` or `python:pkg.module:function` (database targets come from --db and --dsn)."""
    kind, _, rest = text.partition(":")
    if kind == "sleep":
        from mlstress_tui.load.targets.sleep import SleepTarget

        match = _DURATION.match(rest.strip())
        if not match:
            raise UsageError(f"bad target {text!r}: write a sleep time such as sleep:2ms, sleep:500us or sleep:0ms")
        return SleepTarget(float(match.group(1)) * _UNIT_MS[match.group(2)])
    if kind == "python":
        from mlstress_tui.load.targets.python import PythonTarget

        module, _, function = rest.rpartition(":")
        if not module or not function:
            raise UsageError(f"bad target {text!r}: write python:package.module:function")
        return PythonTarget(rest)
    raise UsageError(f"unknown target {text!r}: use --db PATH, --dsn postgresql://…, --target sleep:2ms or "
                     "--target python:pkg.module:function")
