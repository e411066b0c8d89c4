"""The run snapshot: every figure of a run, computed once per pump by the session, read by every front end.

The dashboard, the headless printer, summary.json, ramp.json, the acceptance
panel and the metrics endpoint all read a `RunSnapshot`; none of them derives
a figure of its own, so no two can disagree. The rules that make a figure —
load time, throughput, the harness verdict over the run, the bottleneck line —
are the functions of this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from mlstress_tui.analysis.ramp import RampStep
from mlstress_tui.analysis.validity import Validity, validity
from mlstress_tui.load.levels import CommandedLevel
from mlstress_tui.presets import POOL_QUEUEING
from mlstress_tui.results.bottleneck import MIN_WAIT_MS, pool_bottleneck, pool_queued
from mlstress_tui.results.harness_verdict import harness_verdict
from mlstress_tui.results.histogram import LatencyHistogram
from mlstress_tui.results.interval_stats import IntervalStats
from mlstress_tui.results.kinds import OPEN, EventKind, RunEvent
from mlstress_tui.results.level_stats import LevelStats
from mlstress_tui.results.units import counted, format_ms
from mlstress_tui.session.level_analysis import LevelCurve
from mlstress_tui.session.run_totals import RunTotals


@dataclass(frozen=True)
class LevelEntry:
    """One commanded level as the reports list it: its id, its figures, its latency summary and its warm-up."""

    level_id: int | None
    figures: RampStep
    latency_ms: dict[str, float | None]
    warmup_s: float

    def to_json(self) -> dict[str, Any]:
        step = self.figures
        return {"id": self.level_id, "mode": step.mode, "level": step.level, "seconds": round(step.seconds, 3),
                "warmup_s": round(self.warmup_s, 3), "requests": step.requests, "errors": step.errors,
                "throughput_rps": round(step.throughput_rps, 3), "latency_ms": self.latency_ms}


@dataclass(frozen=True)
class RunFigures:
    """The whole run's headline figures: every request accounted for, throughput over the load time."""

    requests: int
    ok: int
    errors: int
    error_rate: float
    errors_by_kind: dict[str, int]
    unfinished: int
    unsent: int
    paused_arrivals: int
    lost: int
    throughput_rps: float
    offered_rps: float | None
    latency_ms: dict[str, float | None]
    service_ms: dict[str, float | None]
    pool_wait_ms: dict[str, float | None]
    latency_with_unsent_ms: dict[str, float | None] | None
    late_starts: int
    late_returns: int
    output_lines: int


@dataclass(frozen=True)
class RunSnapshot:
    """A run as it stands: what was commanded, what it measured, what the analyses made of it."""

    state: str
    finished: bool
    note: str | None  # the ramp's progress, or how it ended
    level: CommandedLevel
    users_running: int | None  # at a settled level; None while a change is applied
    elapsed_s: float
    paused_s: float
    stopped_s: float
    load_s: float
    transition_s: float
    duration_s: float | None
    requests_limit: int | None
    started_at: datetime
    target: dict[str, Any]
    database: dict[str, Any]
    seed: int
    sla_p95_ms: float
    figures: RunFigures
    total: IntervalStats
    window: IntervalStats | None
    current_level: LevelStats | None
    levels: tuple[LevelEntry, ...]
    curve: LevelCurve
    heavy_users: dict[str, Any] | None
    heavy_users_why: str
    bottleneck: str | None
    harness: dict[str, Any]
    validity: Validity  # whether the harness vouches for the figures, in the words every artefact uses
    faults: tuple[RunEvent, ...]
    engine_faults: dict[str, Any]
    stuck_users_max: int
    users_running_max: int
    recent_errors: tuple[tuple[float, str, str], ...]
    scatter: np.ndarray
    nodes: list[dict[str, Any]] | None
    load: dict[str, Any]
    workers: int
    ramp: dict[str, Any] | None = None  # ramp.json, once a ramp has ended
    extras: dict[str, Any] = field(default_factory=dict)
    # The open loop's queue growing rather than draining at the current level, in one line (None when it drains).
    backlog: str | None = None
    # A preset that exists to show something (`shows`) and did not: why, and what to change.
    point_missed: str | None = None
    # The newest notable events (faults, ramp steps, load changes), oldest first: the run log.
    events: tuple[RunEvent, ...] = ()

    @property
    def throughput_rps(self) -> float:
        return self.figures.throughput_rps


def load_time_s(elapsed_s: float, paused_s: float, stopped_s: float) -> float:
    """Wall time less what the operator paused and what every worker stood still: the time the load ran."""
    return max(elapsed_s - paused_s - stopped_s, 0.0)


def run_figures(totals: RunTotals, *, load_s: float, offered_rps: float | None, lost: int) -> RunFigures:
    total = totals.total
    requests = total.requests
    with_unsent = None
    if total.unsent:
        latency = total.latency.copy()
        latency.merge(total.unsent_wait)
        with_unsent = latency.summary_ms()
    return RunFigures(
        requests=requests, ok=total.ok, errors=total.errors,
        error_rate=round(total.errors / requests, 6) if requests else 0.0,
        errors_by_kind=dict(sorted(total.errors_by_kind.items())), unfinished=total.unfinished,
        unsent=total.unsent, paused_arrivals=total.paused_arrivals, lost=lost,
        throughput_rps=round(requests / load_s, 3) if load_s > 0 else 0.0, offered_rps=offered_rps,
        latency_ms=total.latency.summary_ms(), service_ms=total.service.summary_ms(),
        pool_wait_ms=total.pool_wait.summary_ms(), latency_with_unsent_ms=with_unsent,
        late_starts=total.late_starts, late_returns=total.late_returns, output_lines=total.output_lines,
    )


def run_harness(totals: RunTotals, *, target_kind: str | None, workers: int, replace_stuck: bool,
                engine_faults: dict[str, Any]) -> dict[str, Any]:
    """The harness's verdict on the whole run, with `load_not_held` when the load applied fell below the load asked."""
    harness = harness_verdict(totals.total, target_kind=target_kind, workers=workers, busy=list(totals.busy))
    harness["stopped_s"] = round(totals.stopped_s, 3)
    cannot_hold = [event for event in totals.faults if event.kind == EventKind.CANNOT_HOLD_LOAD]
    held = not engine_faults.get("worker_deaths") and not cannot_hold and not engine_faults.get("silent_workers")
    if not replace_stuck and totals.stuck_users_max:
        held = False
    if not held:
        harness["verdict"] = "load_not_held"
        notes = [harness["note"]] if harness.get("note") else []
        notes.append(load_not_held_note(engine_faults, cannot_hold, totals.stuck_users_max))
        harness["note"] = "; ".join(notes)
    return harness


def run_validity(harness: dict[str, Any], faults: tuple[RunEvent, ...], target: dict[str, Any]) -> Validity:
    """The one validity rule (analysis.validity) on the run as it stands."""
    return validity({"harness": harness, "target": target, "faults": {"events": [event.to_json() for event in faults]}})


def load_not_held_note(faults: dict[str, Any], cannot_hold: list[RunEvent], stuck_users_max: int) -> str:
    """Why the load applied was not the load asked for, in one clause."""
    deaths = faults.get("worker_deaths") or []
    if deaths:
        if deaths[0].get("node"):  # a Ray actor: no replacement, its share went to the rest (or the run stopped)
            return (f"{len(deaths)} Ray actor(s) lost ({deaths[0]['how']}), losing {faults['requests_lost']} "
                    "requests in flight: the load dropped until the other actors took their share")
        return (f"{len(deaths)} worker process(es) died ({deaths[0]['how']}), losing {faults['requests_lost']} "
                "requests in flight: the load dropped until a replacement started")
    silent = faults.get("silent_workers") or []
    if silent:
        return (f"{len(silent)} worker(s) sent nothing for {silent[0]['silent_s']:g} s or more (the target held "
                "them: the GIL, a wedged call): their users were stuck and the load applied fell")
    if cannot_hold:
        return str(cannot_hold[0].get("reason"))
    return (f"up to {counted(stuck_users_max, 'user')} {'was' if stuck_users_max == 1 else 'were'} stuck in the "
            "target past their deadline and not replaced "
            "(--no-replace-stuck): the load applied fell below the load asked for")


def level_bottleneck(stats: IntervalStats | None, level: CommandedLevel, target_kind: str | None) -> str | None:
    """The pool line of a level's figures with the pool that level ran with."""
    if stats is None:
        return None
    return pool_bottleneck(stats, mode=level.mode, pool_size=level.pool, concurrency=level.in_flight_limit,
                           offered_rps=level.rate if level.mode == OPEN else None, target_kind=target_kind)


# The open loop has had this long at a level to drain the queue a change left behind.
DRAIN_S = 4.0
# A second in which at least this share of the requests started late is a second the queue did not drain in.
LATE_SHARE = 0.1
# The queue is growing when the last second's median latency is clearly (10%) above the level's so far.
GROWING_P50 = 1.1


def open_loop_backlog(level: CommandedLevel, current: LevelStats | None, window: IntervalStats | None,
                      sla_p95_ms: float) -> str | None:
    """One line when the open loop's queue is not draining: DRAIN_S into the current rate, the last second still
    started a tenth of its requests late, and its median latency is either growing (clearly above the level's so
    far) or past the SLA. Late starts at a steady, low latency are the sender's lateness, not a queue."""
    if level.mode != OPEN or current is None or window is None or not window.requests:
        return None
    held = current.held_s
    late = window.late_starts / max(window.requests, window.late_starts)
    if held < DRAIN_S or late < LATE_SHARE:
        return None
    now_p50 = window.latency.percentile_ms(50)
    level_p50 = current.latency.percentile_ms(50)
    growing = level_p50 is not None and now_p50 is not None and now_p50 >= GROWING_P50 * level_p50
    if now_p50 is None or not (growing or now_p50 > sla_p95_ms):
        return None
    rate = level.rate or current.level
    return (f"the queue is not draining: after {held:.0f} s at {rate:,.0f} req/s, {late:.0%} of the last second's "
            f"requests started late and their p50 is {format_ms(now_p50)}; the target served "
            f"{window.throughput_rps:,.0f} req/s: lower the rate")


# A run this short has not had the time to show anything yet.
POINT_AFTER_S = 3.0


def point_missed(shows: str | None, total: IntervalStats, load_s: float, pool: int | None) -> str | None:
    """Why the run did not show what its preset exists to show, and what to change; None when it did (or too soon,
    or when nothing answered: then the errors say what happened)."""
    if shows != POOL_QUEUEING or load_s < POINT_AFTER_S or not total.ok or pool_queued(total):
        return None
    wait = total.pool_wait.percentile_ms(99) or 0.0
    query = total.service.percentile_ms(99)
    of = f" of {pool}" if pool else ""
    if wait < MIN_WAIT_MS:
        return (f"the pool{of} never queued (pool wait p99 {format_ms(wait)}): raise the rate or lower --pool-size "
                "to see the saturation this preset is for")
    return (f"requests waited for the pool{of} no longer than the query took (pool wait p99 {format_ms(wait)}, the "
            f"query p99 {format_ms(query)}): the database, not the pool, is what is slow here")


def empty_histogram_summary() -> dict[str, float | None]:
    return LatencyHistogram().summary_ms()
