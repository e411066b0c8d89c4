"""`summary.json` (schema `mlstress.summary/1`), written atomically at the end of every run."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from mlstress_tui.load.stats import RunStats

SCHEMA = "mlstress.summary/1"
# A worker process busier than this was CPU-bound: latency includes waiting for a core.
SATURATED_CPU = 0.95
# A worker timer late by this much (p99), and by a tenth of the measured p99, means the
# harness or the machine delayed requests enough to matter.
STALL_MS = 0.5
STALL_SHARE = 0.1


def build_summary(*, target: dict, load: dict, stats: RunStats, started_at: datetime, duration_s: float,
                  seed: int, database: dict, interrupted: bool, workers: int) -> dict:
    total = stats.total
    requests = total.requests
    worker_cpu_max = total.worker_cpu
    hiccup = total.hiccup.summary_ms()
    harness = {
        "workers": workers,
        "worker_cpu_max": round(worker_cpu_max, 3),
        "late_starts": total.late_starts,
        "hiccup_ms": hiccup,
        "verdict": "ok",
    }
    notes = []
    if worker_cpu_max >= SATURATED_CPU:
        harness["verdict"] = "cpu_bound"
        if target.get("kind") == "sqlite":
            notes.append("worker processes used whole cores: SQLite runs inside them, so the cores, not the "
                         "harness, bounded throughput; latency includes waiting for CPU")
        else:
            notes.append("worker processes used whole cores: the load generator was the bottleneck, "
                         "latency includes waiting for CPU; lower the load or add cores")
    latency_p99 = total.latency.percentile_ms(99) or 0.0
    if hiccup["p99"] is not None and hiccup["p99"] >= max(STALL_MS, STALL_SHARE * latency_p99):
        harness["verdict"] = "cpu_bound" if harness["verdict"] == "cpu_bound" else "stalled"
        notes.append(f"the workers' own timer woke up to {hiccup['p99']:.1f} ms late (p99): latencies of that "
                     "order include the harness's or the machine's delay, not only the target's")
    if notes:
        harness["note"] = "; ".join(notes)
    return {
        "schema": SCHEMA,
        "target": target,
        "load": load,
        "started_at": started_at.isoformat(timespec="milliseconds"),
        "duration_s": round(duration_s, 3),
        "interrupted": interrupted,
        "requests": requests,
        "ok": total.ok,
        "errors": total.errors,
        "error_rate": round(total.errors / requests, 6) if requests else 0.0,
        "errors_by_kind": dict(sorted(total.errors_by_kind.items())),
        "throughput_rps": round(requests / duration_s, 3) if duration_s > 0 else 0.0,
        # Open loop: what was asked for beside what the system took.
        "offered_rps": load.get("final", {}).get("rate"),
        "latency_ms": total.latency.summary_ms(),
        "service_ms": total.service.summary_ms(),
        "pool_wait_ms": total.pool_wait.summary_ms(),
        "levels": [
            {"mode": level.mode, "level": level.level, "seconds": round(level.seconds, 3),
             "requests": level.requests, "errors": level.errors,
             "throughput_rps": round(level.throughput_rps, 3), "latency_ms": level.latency.summary_ms()}
            for level in stats.levels.values()
        ],
        "harness": harness,
        "seed": seed,
        "database": database,
    }


def write_summary(path: Path, summary: dict) -> None:
    """Write beside the target and rename, so a reader never sees half a file."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)
