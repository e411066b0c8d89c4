"""`summary.json` (schema `mlstress.summary/1`): the document, its fields typed, written atomically at the end of every run.

The session fills it from the run's final snapshot; this module only lays it
out. Readers of old files (`show`, `compare`) read the JSON, whose keys are
the contract design.md describes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = "mlstress.summary/1"
# Beside summary.json: the whole run's latency histogram (results.histogram's buckets), to draw a finished run again.
HISTOGRAM_FILE = "latency_histogram.json"

LatencySummary = dict[str, float | None]


@dataclass(frozen=True)
class RunSummary:
    """Everything summary.json says about a run."""

    tool_version: str
    target: dict[str, Any]
    load: dict[str, Any]
    started_at: str
    duration_s: float  # wall time of the run, start to the last call settled
    load_s: float  # the time the load ran: wall time less pauses and stops of every worker
    paused_s: float
    stopped_s: float
    transition_s: float
    interrupted: bool
    requests: int
    ok: int
    errors: int
    unfinished: int
    unsent: int
    paused_arrivals: int
    error_rate: float
    errors_by_kind: dict[str, int]
    throughput_rps: float
    offered_rps: float | None
    latency_ms: LatencySummary
    service_ms: LatencySummary
    pool_wait_ms: LatencySummary
    latency_with_unsent_ms: LatencySummary | None
    levels: list[dict[str, Any]]
    bottleneck: str | None
    users_running_max: int
    harness: dict[str, Any]
    validity: dict[str, Any]
    faults: dict[str, Any]
    target_output: dict[str, Any]
    seed: int
    database: dict[str, Any]
    sla_p95_ms: float
    offered_arrivals: float | None = None  # open loop: what the commanded rates owed over the run
    lost: int = 0
    connections: str = "pool"  # "owned": every user held its own connection, pool_wait_ms 0 by construction
    label: str | None = None  # --label: the system under test's build or commit
    preset: str | None = None
    paths: dict[str, dict[str, Any]] | None = None
    nodes: list[dict[str, Any]] | None = None
    ramp: dict[str, Any] | None = None
    point_missed: str | None = None  # the preset's point, when the run did not show it (and what to change)

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "schema": SCHEMA,
            "tool": {"name": "mlstress-tui", "version": self.tool_version},
            "label": self.label,
            "preset": self.preset,
            "target": self.target,
            "load": self.load,
            "started_at": self.started_at,
            "duration_s": round(self.duration_s, 3),
            # Throughput is over the load time; both are here so anyone can recompute it from the file.
            "load_s": round(self.load_s, 3),
            "paused_s": round(self.paused_s, 3),
            "stopped_s": round(self.stopped_s, 3),
            "transition_s": round(self.transition_s, 3),
            "interrupted": self.interrupted,
            # Every request sent is ok, an error, or unfinished (still in a call when the run ended); what the
            # open loop owed but never sent is `unsent`, what fell in a pause `paused_arrivals`, and
            # `faults.requests_lost` died with a worker.
            "requests": self.requests,
            "ok": self.ok,
            "errors": self.errors,
            "unfinished": self.unfinished,
            "unsent": self.unsent,
            "paused_arrivals": self.paused_arrivals,
            # The open loop's books: requests + unfinished + unsent + paused_arrivals + lost = offered_arrivals,
            # to within a request per worker (arrivals are whole; the rate curve is not).
            "offered_arrivals": None if self.offered_arrivals is None else round(self.offered_arrivals, 1),
            "error_rate": self.error_rate,
            "errors_by_kind": self.errors_by_kind,
            "throughput_rps": self.throughput_rps,
            # Open loop: what was asked for beside what the system took.
            "offered_rps": self.offered_rps,
            "latency_ms": self.latency_ms,
            "service_ms": self.service_ms,
            "pool_wait_ms": self.pool_wait_ms,
            # "pool": requests took a slot from the pool (the wait above is measured); "owned": each virtual user
            # held its own connection, so the wait above is 0 by construction.
            "connections": self.connections,
            # The open loop's latency counting the unsent backlog at its lower bound (due time to the end).
            "latency_with_unsent_ms": self.latency_with_unsent_ms,
            # One entry per commanded level, in the order commanded; time spent applying a change is in none.
            "levels": self.levels,
            # The pool, not the system behind it, limited the last level (pool wait p99 against query p99).
            "bottleneck": self.bottleneck,
            # What the preset exists to show (`shows`), when this run did not show it, and what to change.
            "point_missed": self.point_missed,
            # The most users that actually ran at once (threads may fail to start under a memory or pids limit).
            "users_running_max": self.users_running_max,
            "harness": self.harness,
            # Vouched for, or measurement suspect and why: the one rule, as every artefact says it.
            "validity": self.validity,
            "faults": self.faults,
            # What the target printed or logged went to the run directory, never over the screen.
            "target_output": self.target_output,
            "seed": self.seed,
            "database": self.database,
            "sla_p95_ms": self.sla_p95_ms,
        }
        if self.paths:
            document["paths"] = self.paths
        if self.nodes:
            # Ray runs: what each node carried (actors, offered and achieved load, p99, verdict, liveness).
            document["nodes"] = self.nodes
        if self.ramp is not None:
            document["ramp"] = self.ramp
        return document


def write_json(path: Path, document: dict[str, Any], *, indent: int | None = 2) -> None:
    """Any report document, written beside its place and renamed into it (`indent` None: one line, for data)."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(document, indent=indent) + "\n", encoding="utf-8")
    os.replace(temporary, path)
