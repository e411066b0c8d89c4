"""summary.json's document from a run's final snapshot: the snapshot's figures, laid out as report/summary.py says."""

from __future__ import annotations

from typing import Any

from mlstress_tui import __version__
from mlstress_tui.report.summary import RunSummary
from mlstress_tui.session.snapshot import RunSnapshot


def run_summary(snapshot: RunSnapshot, *, interrupted: bool, seed: int, database: dict[str, Any], sla_p95_ms: float,
                label: str | None, preset: str | None, offered_arrivals: float | None) -> RunSummary:
    """summary.json's document from the run's final snapshot: laid out by report/summary.py, every figure the snapshot's."""
    figures = snapshot.figures
    faults = {**snapshot.engine_faults, "late_returns": figures.late_returns,
              "stuck_users_max": snapshot.stuck_users_max,
              "events": [event.to_json() for event in snapshot.faults]}
    ramp = None
    if snapshot.ramp is not None:
        ramp = {key: snapshot.ramp.get(key) for key in
                ("knee_concurrency", "safe_concurrency", "knee_rate", "safe_rate", "reason")}
    paths = {name: {"requests": group.requests, "errors": group.errors,
                    "errors_by_kind": dict(sorted(group.errors_by_kind.items())),
                    "latency_ms": group.latency.summary_ms(),
                    "service_ms": group.service.summary_ms() if group.service is not None else None,
                    "pool_wait_ms": group.pool_wait.summary_ms() if group.pool_wait is not None else None}
             for name, group in sorted(snapshot.total.paths.items())} or None
    return RunSummary(
        tool_version=__version__, target=snapshot.target, load=snapshot.load,
        started_at=snapshot.started_at.isoformat(timespec="milliseconds"), duration_s=snapshot.elapsed_s,
        load_s=snapshot.load_s, paused_s=snapshot.paused_s, stopped_s=snapshot.stopped_s,
        transition_s=snapshot.transition_s, interrupted=interrupted, requests=figures.requests,
        ok=figures.ok, errors=figures.errors, unfinished=figures.unfinished, unsent=figures.unsent,
        paused_arrivals=figures.paused_arrivals, error_rate=figures.error_rate,
        errors_by_kind=figures.errors_by_kind, throughput_rps=figures.throughput_rps,
        offered_rps=figures.offered_rps, latency_ms=figures.latency_ms, service_ms=figures.service_ms,
        pool_wait_ms=figures.pool_wait_ms, connections="owned" if snapshot.total.connections_owned else "pool",
        latency_with_unsent_ms=figures.latency_with_unsent_ms,
        levels=[entry.to_json() for entry in snapshot.levels], bottleneck=snapshot.bottleneck,
        offered_arrivals=offered_arrivals, lost=snapshot.figures.lost,
        users_running_max=snapshot.users_running_max, harness=snapshot.harness,
        validity=snapshot.validity.to_json(), faults=faults,
        target_output={"lines": figures.output_lines, "dropped": snapshot.total.output_dropped,
                       "file": "target.log"}, seed=seed,
        database=database, sla_p95_ms=sla_p95_ms, paths=paths, nodes=snapshot.nodes, ramp=ramp,
        label=label, preset=preset, point_missed=snapshot.point_missed)
