"""The words every layer shares: load modes and the kinds of event a run records, as enums with one spelling each.

They live on the ground floor so that the workers that make events, the
session that counts them and the reports that print them check one
definition; a `StrEnum` is also its string, so the files keep the words they
always had ("closed", "worker_died").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class LoadMode(StrEnum):
    """Closed loop: N users, each sends when the last returned. Open loop: arrivals at R per second."""

    CLOSED = "closed"
    OPEN = "open"


CLOSED = LoadMode.CLOSED
OPEN = LoadMode.OPEN


class EventKind(StrEnum):
    """What happened during a run, as intervals.jsonl and summary.json name it (`action`)."""

    # Control: what the operator, the ramp or the run's bound did.
    CONCURRENCY = "concurrency"
    RATE = "rate"
    MODE = "mode"
    PAUSE = "pause"
    RESUME = "resume"
    DURATION_REACHED = "duration_reached"
    RAMP_STEP = "ramp_step"
    RAMP_END = "ramp_end"
    CLOCK_OFFSET = "clock_offset"
    # Faults: the measurement itself went wrong somewhere (said on screen, kept in the summary).
    WORKER_DIED = "worker_died"
    WORKER_REPLACEMENT_FAILED = "worker_replacement_failed"
    WORKER_SILENT = "worker_silent"
    CANNOT_HOLD_LOAD = "cannot_hold_load"
    USER_DIED = "user_died"
    HARNESS_STALL = "harness_stall"
    CLOCK_SKEW = "clock_skew"
    TARGET_FORKED = "target_forked"
    OUTPUT_DROPPED = "output_dropped"

    @property
    def is_fault(self) -> bool:
        return self in FAULT_KINDS


FAULT_KINDS = frozenset({
    EventKind.WORKER_DIED, EventKind.WORKER_REPLACEMENT_FAILED, EventKind.WORKER_SILENT, EventKind.CANNOT_HOLD_LOAD,
    EventKind.USER_DIED, EventKind.HARNESS_STALL, EventKind.CLOCK_SKEW, EventKind.TARGET_FORKED,
    EventKind.OUTPUT_DROPPED,
})


@dataclass(frozen=True)
class RunEvent:
    """One event: its kind, when (seconds since the run's start) and its details (plain JSON values)."""

    kind: EventKind
    t: float = 0.0
    details: Mapping[str, Any] = field(default_factory=dict)
    worker: int | None = None

    @property
    def is_fault(self) -> bool:
        return self.kind.is_fault

    def get(self, key: str, default: Any = None) -> Any:
        return self.details.get(key, default)

    def at(self, t: float, worker: int | None = None) -> RunEvent:
        """This event stamped with when it happened (and where)."""
        return RunEvent(self.kind, round(t, 3), self.details, self.worker if worker is None else worker)

    def to_json(self) -> dict[str, Any]:
        line: dict[str, Any] = {"t": self.t, "action": self.kind.value}
        if self.worker is not None:
            line["worker"] = self.worker
        line.update(self.details)
        return line

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunEvent:
        """An event read back from a run's files (`show`, `compare`); unknown kinds are kept out by the caller."""
        details = {key: value for key, value in data.items() if key not in ("t", "action", "worker")}
        return cls(EventKind(data["action"]), float(data.get("t", 0.0)), details, data.get("worker"))


def event(kind: EventKind, **details: Any) -> RunEvent:
    """An event not yet stamped with its time (the worker or the engine stamps it)."""
    return RunEvent(kind, 0.0, details)
