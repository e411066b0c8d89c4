"""What summary.json says of a run's load and, on Ray, of each node: described from the engine's rooms, not kept apart."""

from __future__ import annotations

from typing import Any

from mlstress_tui.load.backends import WorkerBackend
from mlstress_tui.load.collector import TickCollector
from mlstress_tui.load.levels import CommandedLevels
from mlstress_tui.load.spec import LoadSpec
from mlstress_tui.load.supervisor import Supervisor
from mlstress_tui.results.kinds import CLOSED, OPEN


def describe_load(spec: LoadSpec, levels: CommandedLevels, requests_limit: int | None,
                  backend: WorkerBackend) -> dict[str, Any]:
    """The `load` object of summary.json: what was asked for, and where the knobs ended."""
    asked = levels.by_id.get(0) or levels.current
    final = levels.current
    return {
        "mode": asked.mode.value,
        "concurrency": asked.concurrency if asked.mode == CLOSED else None,
        "rate": asked.rate if asked.mode == OPEN else None,
        "pool_size": asked.pool,
        "user_mix": spec.user_mix,
        "arrivals": spec.arrivals,
        "timeout_s": spec.timeout_s,
        "duration_s": spec.duration_s,
        "requests": requests_limit,
        "replace_stuck": spec.replace_stuck,
        "on_worker_death": spec.on_worker_death,
        **({} if backend.can_replace else {"on_node_loss": spec.on_node_loss, "backend": backend.describe()}),
        # The open loop's in-flight limit is its pool (executors); the closed loop's, its users.
        "in_flight_limit": asked.in_flight_limit,
        "final": {"mode": final.mode.value, "concurrency": final.concurrency if final.mode == CLOSED else None,
                  "rate": final.rate, "pool_size": final.pool, "in_flight_limit": final.in_flight_limit},
    }


def describe_nodes(backend: WorkerBackend, levels: CommandedLevels, supervisor: Supervisor,
                   collector: TickCollector, worker_count: int, elapsed_s: float) -> list[dict[str, Any]]:
    """Per node (Ray runs): its actors, the load offered and achieved there, p99, verdict and liveness."""
    plans = levels.plans(supervisor.active)
    offsets = backend.clock_offsets_ms()
    lost = {death["worker"]: death for death in supervisor.faults.worker_deaths}
    by_node: dict[str, list[int]] = {}
    for slot in range(worker_count):
        by_node.setdefault(backend.node_of(slot), []).append(slot)
    report = []
    for node, slots in sorted(by_node.items()):
        active = [slot for slot in slots if slot in supervisor.active]
        figures = collector.node_figures.get(node)
        p99 = figures.latency.percentile_ms(99) if figures is not None else None
        offered: dict[str, Any]
        if levels.current.mode == OPEN:
            offered = {"rate": round(sum(plans[slot].rate for slot in active if slot in plans), 3)}
        else:
            offered = {"concurrency": sum(plans[slot].concurrency for slot in active if slot in plans)}
        report.append({
            "node": node, "actors": len(slots), "actors_alive": len(active), **offered,
            "requests": figures.requests if figures else 0, "errors": figures.errors if figures else 0,
            "late_starts": figures.late_starts if figures else 0,
            "throughput_rps": round((figures.requests if figures else 0) / max(elapsed_s, 1e-9), 2),
            "p99_ms": p99,
            "harness_verdict": "lost" if not active else (figures.verdict() if figures else "ok"),
            "clock_offset_ms": None if node not in offsets else round(offsets[node], 3),
            # Above 0 the load generator yielded the CPU to the rest of the box (Ray's default is 15).
            "niceness": max((backend.niceness_of(slot) or 0 for slot in slots), default=0),
            "lost": [{"worker": slot, "carried": lost[slot]["carried"], "how": lost[slot]["how"]}
                     for slot in slots if slot in lost],
        })
    return report
