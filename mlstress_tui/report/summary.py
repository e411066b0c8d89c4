"""`summary.json` (schema `mlstress.summary/1`), written atomically at the end of every run."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from mlstress_tui.results.bottleneck import pool_bottleneck
from mlstress_tui.results.harness_verdict import harness_verdict
from mlstress_tui.results.run_stats import RunStats

SCHEMA = "mlstress.summary/1"


def build_summary(*, target: dict, load: dict, stats: RunStats, started_at: datetime, duration_s: float,
                  seed: int, database: dict, interrupted: bool, workers: int, faults: dict | None = None,
                  nodes: list[dict] | None = None) -> dict:
    total = stats.total
    requests = total.requests
    harness = harness_verdict(total, target_kind=target.get("kind"), workers=workers)
    faults = {"worker_deaths": [], "requests_lost": 0, **(faults or {})}
    faults.update(late_returns=total.late_returns, stuck_users_max=stats.stuck_users_max,
                  events=list(stats.faults))
    held = not faults["worker_deaths"] and not any(event["action"] == "cannot_hold_load" for event in stats.faults)
    if not load.get("replace_stuck", True) and stats.stuck_users_max:
        held = False
    if not held:
        harness["verdict"] = "load_not_held"
        notes = [harness["note"]] if harness.get("note") else []
        notes.append(load_not_held_note(faults, stats.stuck_users_max, load))
        harness["note"] = "; ".join(notes)
    # Time the harness stood still is not load time: the rate is over the time the load ran.
    harness["stalled_s"] = round(stats.stalled_s, 3)
    load_s = max(duration_s - stats.stalled_s - stats.paused_s, 0.0)
    final = load.get("final", {})
    bottleneck = pool_bottleneck(total, mode=final.get("mode", load.get("mode")), pool_size=load.get("pool_size"),
                                 concurrency=final.get("concurrency") or 0, offered_rps=final.get("rate"),
                                 target_kind=target.get("kind"))
    latency_with_unsent = total.latency.copy()
    latency_with_unsent.merge(total.unsent_wait)
    return {
        "schema": SCHEMA,
        "target": target,
        "load": load,
        "started_at": started_at.isoformat(timespec="milliseconds"),
        "duration_s": round(duration_s, 3),
        "interrupted": interrupted,
        # Every request sent is ok, an error, or unfinished (still in a call when the run ended); requests
        # the open loop owed but never sent are `unsent`, and `requests_lost` died with a worker.
        "requests": requests,
        "ok": total.ok,
        "errors": total.errors,
        "unfinished": total.unfinished,
        "unsent": total.unsent,
        "error_rate": round(total.errors / requests, 6) if requests else 0.0,
        "errors_by_kind": dict(sorted(total.errors_by_kind.items())),
        "throughput_rps": round(requests / load_s, 3) if load_s > 0 else 0.0,
        # Open loop: what was asked for beside what the system took.
        "offered_rps": load.get("final", {}).get("rate"),
        "latency_ms": total.latency.summary_ms(),
        "service_ms": total.service.summary_ms(),
        "pool_wait_ms": total.pool_wait.summary_ms(),
        # The open loop's latency counting the unsent backlog at its lower bound (due time to the end).
        "latency_with_unsent_ms": latency_with_unsent.summary_ms() if total.unsent else None,
        # One entry per commanded level, in the order commanded; time spent applying a change is in none.
        "levels": [
            {"id": level.level_id, "mode": level.mode, "level": level.level, "seconds": round(level.seconds, 3),
             "requests": level.requests, "errors": level.errors,
             "throughput_rps": round(level.throughput_rps, 3), "latency_ms": level.latency.summary_ms()}
            for level in stats.levels.values()
        ],
        "transition_s": round(stats.transition_s, 3),
        # Seconds paused by the operator: not load time, so throughput leaves them out.
        "paused_s": round(stats.paused_s, 3),
        # The pool, not the database, limited the system (pool wait p99 against query p99), when it did.
        "bottleneck": bottleneck,
        # The most users that actually ran at once (threads may fail to start under a memory or pids limit).
        "users_running_max": stats.users_running_max,
        "harness": harness,
        "faults": faults,
        # What the target printed or logged went to the run directory, never over the screen.
        "target_output": {"lines": total.output_lines, "file": "target.log"},
        "seed": seed,
        "database": database,
        # Ray runs: what each node carried (actors, offered and achieved load, p99, verdict, liveness).
        **({"nodes": nodes} if nodes else {}),
    }


def load_not_held_note(faults: dict, stuck_users_max: int, load: dict) -> str:
    """Why the load applied was not the load asked for, in one clause."""
    if faults["worker_deaths"]:
        deaths = faults["worker_deaths"]
        if deaths[0].get("node"):  # a Ray actor: no replacement, its share went to the rest (or the run stopped)
            return (f"{len(deaths)} Ray actor(s) lost ({deaths[0]['how']}), losing {faults['requests_lost']} "
                    "requests in flight: the load dropped until the other actors took their share")
        return (f"{len(deaths)} worker process(es) died ({deaths[0]['how']}), losing {faults['requests_lost']} "
                "requests in flight: the load dropped until a replacement started")
    for event in faults["events"]:
        if event["action"] == "cannot_hold_load":
            return event["reason"]
    return (f"up to {stuck_users_max} users were stuck in the target past their deadline and not replaced "
            "(--no-replace-stuck): the load applied fell below the load asked for")


def write_json(path: Path, document: dict) -> None:
    """Any report document, written beside its place and renamed into it."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)
