"""`summary.json` (schema `mlstress.summary/1`), written atomically at the end of every run."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from mlstress_tui.results.harness_verdict import harness_verdict
from mlstress_tui.results.run_stats import RunStats

SCHEMA = "mlstress.summary/1"


def build_summary(*, target: dict, load: dict, stats: RunStats, started_at: datetime, duration_s: float,
                  seed: int, database: dict, interrupted: bool, workers: int) -> dict:
    total = stats.total
    requests = total.requests
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
        # One entry per commanded level, in the order commanded; time spent applying a change is in none.
        "levels": [
            {"id": level.level_id, "mode": level.mode, "level": level.level, "seconds": round(level.seconds, 3),
             "requests": level.requests, "errors": level.errors,
             "throughput_rps": round(level.throughput_rps, 3), "latency_ms": level.latency.summary_ms()}
            for level in stats.levels.values()
        ],
        "transition_s": round(stats.transition_s, 3),
        "harness": harness_verdict(total, target_kind=target.get("kind"), workers=workers),
        "seed": seed,
        "database": database,
    }


def write_summary(path: Path, summary: dict) -> None:
    """Write beside the target and rename, so a reader never sees half a file."""
    write_json(path, summary)


def write_json(path: Path, document: dict) -> None:
    """Any report document, written beside its place and renamed into it."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)
