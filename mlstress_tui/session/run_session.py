"""`RunSession`: one run — the engine, the consumers of its ticks, the snapshot every front end reads, the files.

Front ends (the dashboard, `run`, `ramp`, `outliers`, `accept`) turn the knobs
through the session, call `pump()` on their own clock, read `snapshot`, and
`finish()` at the end; they never reach the engine. The session writes
`intervals.jsonl` as it goes and `summary.json` (and `ramp.json`, and each
analysis's file) at the end.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mlstress_tui.errors import EXIT_FAULT, EXIT_INTERRUPTED, EXIT_OK
from mlstress_tui.load.levels import CommandedLevel
from mlstress_tui.load.limits import clamp_level
from mlstress_tui.load.user_strata import Stratum
from mlstress_tui.report.intervals import IntervalWriter
from mlstress_tui.report.summary import HISTOGRAM_FILE, RunSummary, write_json
from mlstress_tui.session.summary_document import run_summary
from mlstress_tui.results.interval_stats import IntervalStats
from mlstress_tui.results.kinds import CLOSED, OPEN, EventKind, LoadMode
from mlstress_tui.session.event_log import EventLog
from mlstress_tui.session.heavy_users import HeavyUsers
from mlstress_tui.session.level_analysis import LevelAnalysis
from mlstress_tui.session.level_ledger import LevelLedger
from mlstress_tui.session.live_window import LiveWindow
from mlstress_tui.session.ramp_controller import RUN_ENDED, RampController, RampPlan
from mlstress_tui.session.engine_protocol import Engine
from mlstress_tui.session.run_totals import RunTotals
from mlstress_tui.session.snapshot import (LevelEntry, RunSnapshot, level_bottleneck, load_time_s, open_loop_backlog,
                                           point_missed, run_figures, run_harness, run_validity)

log = logging.getLogger(__name__)

RAMPING = "ramping"
# The open loop, switched to from the closed one, starts at this share of the steady throughput just measured.
OPEN_START_SHARE = 0.8


@dataclass(frozen=True)
class OpenLoopStart:
    """Where a switch to the open loop starts and what it rests on: the median of the level's settled ticks."""

    rate: float
    measured_rps: float  # the median per-tick throughput of the level just measured
    seconds: float  # the settled seconds that median is taken over
    mode: LoadMode  # the loop that was measured, and its level
    level: float


class Consumer(Protocol):
    """Anything subscribed to a session's ticks."""

    def on_tick(self, tick: IntervalStats) -> None: ...


class RunSession:
    """One run: the engine's ticks go, once each, to every consumer; the snapshot is built from them once a pump."""

    def __init__(self, engine: Engine, *, run_dir: Path, sla_p95_ms: float = 200.0, seed: int = 42,
                 database: dict[str, Any] | None = None, report_interval_s: float = 1.0, label: str | None = None,
                 preset: str | None = None, shows: str | None = None) -> None:
        """`shows`: what the run's preset exists to show (presets.SHOWS), said when the run did not show it."""
        self._engine = engine
        self.run_dir = Path(run_dir)
        self.sla_p95_ms = sla_p95_ms
        self.seed = seed
        self.database = database or {}
        self.label = label  # what the system under test is (--label): a build, a commit
        self.preset = preset
        self.shows = shows
        self.totals = RunTotals()
        self.ledger = LevelLedger()
        self.live = LiveWindow()
        self.event_log = EventLog()
        target_kind = engine.target_info.get("kind")
        self.analysis = LevelAnalysis(self.ledger, sla_p95_ms=sla_p95_ms, target_kind=target_kind,
                                      workers=engine.worker_count)
        self.heavy_users = HeavyUsers(self.totals, engine.strata, engine.population_event_counts,
                                      threshold_ms=sla_p95_ms, concurrency=lambda: engine.level.concurrency,
                                      target=engine.target_info)
        self.ramp: RampController | None = None
        self.ramp_report: dict[str, Any] | None = None
        self.summary: dict[str, Any] | None = None
        self.final: RunSnapshot | None = None
        # Analyses written beside the summary at the end (outliers.json, …): file name -> builder, and what they built.
        self._report_builders: dict[str, Callable[[RunSession], dict[str, Any]]] = {}
        self.reports: dict[str, dict[str, Any]] = {}
        self.interrupted = False
        # Files the run could not write (a removed directory, a full disk): said, the figures kept.
        self.write_errors: list[str] = []
        self._report_interval_s = report_interval_s
        self._writer: IntervalWriter | None = None
        self._consumers: list[Consumer] = [self.totals, self.ledger, self.live, self.event_log]
        self._pump_lock = threading.Lock()
        self._finish_lock = threading.Lock()
        self._snapshot: RunSnapshot | None = None

    # -- what front ends read ----------------------------------------------------

    @property
    def state(self) -> str:
        if self.ramp is not None and self.ramp.active and self._engine.state == "running":
            return RAMPING
        return self._engine.state

    @property
    def finished(self) -> bool:
        return self._engine.finished

    @property
    def level(self) -> CommandedLevel:
        """The level commanded now."""
        return self._engine.level

    @property
    def level_id(self) -> int:
        return self._engine.level_id

    @property
    def elapsed_s(self) -> float:
        return self._engine.elapsed_s

    @property
    def worker_count(self) -> int:
        return self._engine.worker_count

    @property
    def target_info(self) -> dict[str, Any]:
        return self._engine.target_info

    @property
    def duration_s(self) -> float | None:
        return self._engine.duration_s

    @property
    def requests_limit(self) -> int | None:
        return self._engine.requests_limit

    @property
    def strata(self) -> tuple[Stratum, ...]:
        return self._engine.strata

    @property
    def edge_class_sizes(self) -> dict[str, int]:
        return self._engine.edge_class_sizes

    @property
    def replace_stuck(self) -> bool:
        """Whether users stuck past their deadline are replaced (the load holds) or left (the back-pressure shows)."""
        return bool(self._engine.load_description().get("replace_stuck", True))

    @property
    def exit_code(self) -> int:
        """0 done, 130 interrupted, 3 when the measurement lost a worker, users the system would not start, or its
        files (the summary says which)."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        faults = self.summary["faults"] if self.summary is not None else {}
        could_not_start = any(event.get("action") == EventKind.CANNOT_HOLD_LOAD for event in faults.get("events", ()))
        if self.write_errors or faults.get("worker_deaths") or faults.get("silent_workers") or could_not_start:
            return EXIT_FAULT
        return EXIT_OK

    @staticmethod
    def clamp_level(mode: LoadMode, level: float) -> float:
        """The one rule for what a control may ask (keys, the ramp, a script)."""
        return clamp_level(mode, level)

    def subscribe(self, consumer: Consumer) -> None:
        self._consumers.append(consumer)

    def add_report(self, name: str, build: Callable[[RunSession], dict[str, Any]]) -> None:
        """An analysis of the whole run, built from this session and written as `name` when the run finishes."""
        self._report_builders[name] = build

    def node_report(self) -> list[dict[str, Any]] | None:
        return self._engine.node_report()

    def event_count_shape(self) -> dict[str, float] | None:
        """Events per user in the users database (p50, p99, max, mean): is the data heavy-tailed, as production's is."""
        counts = self._engine.population_event_counts
        if counts is None or not len(counts) or not counts.any():
            return None
        p50, p99 = np.percentile(counts, [50, 99])
        return {"p50": float(p50), "p99": float(p99), "max": float(counts.max()), "mean": float(counts.mean())}

    def load_description(self) -> dict[str, Any]:
        """What was asked of the run and where its knobs stand (summary.json's `load`)."""
        return self._engine.load_description()

    def summary_so_far(self) -> dict[str, Any]:
        """summary.json's document for the run so far (the whole run once it has finished); nothing written."""
        if self.summary is not None:
            return self.summary
        return self._summary(self.snapshot).to_json()

    # -- lifecycle ---------------------------------------------------------------------

    def start(self, on_waiting: Callable[[float, int, int], None] | None = None) -> None:
        """Open the run directory and start the engine; `on_waiting` hears about slow-starting workers."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._writer = IntervalWriter(self.run_dir / "intervals.jsonl", self._report_interval_s)
        self._consumers.insert(1, self._writer)
        try:
            self._engine.start(on_waiting)
        except BaseException:
            self._writer.close()  # a run that never started leaves no open file behind (accept goes on)
            raise

    def pump(self) -> list[IntervalStats]:
        """Hand the ticks that arrived since the last call to every consumer; return them, oldest first."""
        with self._pump_lock:
            ticks = self._engine.poll()
            for tick in ticks:
                for consumer in self._consumers:
                    consumer.on_tick(tick)
            self._snapshot = None  # rebuilt on the next read: once a pump at most
            return ticks

    @property
    def snapshot(self) -> RunSnapshot:
        """Every figure of the run as it stands, built once after each pump that brought something new."""
        if self.final is not None:
            return self.final
        snapshot = self._snapshot
        if snapshot is None:
            snapshot = self._snapshot = self._build_snapshot()
        return snapshot

    def run_bounded(self, poll_s: float = 0.1) -> dict[str, Any]:
        """Start, run to the run's own bound (--duration/--requests), finish: a run with no front end."""
        self.start()
        return self.run_until_finished(threading.Event(), poll_s)

    def run_until_finished(self, stop: threading.Event, poll_s: float = 0.1) -> dict[str, Any]:
        """Pump until the run's own bound, the ramp's end or `stop`; then finish. The headless front end."""
        while not self.finished and not stop.is_set():
            stop.wait(poll_s)
            self.pump()
        if stop.is_set():
            self.interrupted = True
        return self.finish()

    def finish(self) -> dict[str, Any]:
        """Stop the engine, drain the last ticks, write summary.json (and ramp.json, the analyses); idempotent."""
        with self._finish_lock:
            if self.summary is not None:
                return self.summary
            self._engine.finish()
            self.pump()
            self.ledger.finish()
            if self.ramp is not None:
                self.ramp.close(RUN_ENDED if self.ramp.active else None)
                self.ramp_report = self.ramp.report()
            if self._writer is not None:
                self._writer.close()
                if self._writer.error:
                    self.write_errors.append(self._writer.error)
            self.final = self._build_snapshot(final=True)
            self.summary = self._summary(self.final).to_json()
            if self.ramp_report is not None:
                self._write("ramp.json", self.ramp_report)
            for name, build in self._report_builders.items():
                self.reports[name] = build(self)
                self._write(name, self.reports[name])
            # The run's latency histogram itself: what `show --baseline` draws of a finished run beside another.
            self._write(HISTOGRAM_FILE, self.final.total.latency.to_json(), indent=None)
            self._write("summary.json", self.summary)
            return self.summary

    def rewrite_report(self, name: str, document: dict[str, Any]) -> None:
        """An analysis the front end completed after the run (e.g. with what the cache cost): written again."""
        self.reports[name] = document
        self._write(name, document)

    def _write(self, name: str, document: dict[str, Any], *, indent: int | None = 2) -> None:
        """A report file into the run directory; a failure is one line in `write_errors`, not a lost summary."""
        try:
            write_json(self.run_dir / name, document, indent=indent)
        except OSError as error:
            self.write_errors.append(f"cannot write {self.run_dir / name}: {error.strerror or error}")

    # -- the snapshot ---------------------------------------------------------------

    def _build_snapshot(self, *, final: bool = False) -> RunSnapshot:
        engine = self._engine
        totals = self.totals
        level = engine.level
        target = engine.target_info
        elapsed = engine.elapsed_s
        paused = engine.paused_s
        load_s = load_time_s(elapsed, paused, totals.stopped_s)
        faults = engine.faults()
        lost = int(faults.get("requests_lost", 0))
        offered = level.rate if level.mode == OPEN else None
        current = self.ledger.current()
        settled_current = current.settled() if current is not None else None
        last = totals.last
        steady = last is not None and last.level_id is not None and self.state in ("running", RAMPING)
        ramp_note = self.ramp.progress() if self.ramp is not None and (self.ramp.active or final) else None
        levels = tuple(
            LevelEntry(stats.level_id, self.analysis.figures(stats), stats.totals.latency.summary_ms(), stats.warmup_s)
            for stats in self.ledger.settled())
        bottleneck_stats = settled_current.totals if settled_current is not None and settled_current.requests \
            else (self.live.interval() if not final else None)
        bottleneck_level = level
        if settled_current is not None and settled_current.level_id is not None:
            bottleneck_level = engine.commanded(settled_current.level_id) or level
        heavy = self.heavy_users.report(fresh=final)
        harness = run_harness(totals, target_kind=target.get("kind"), workers=engine.worker_count,
                              replace_stuck=self.replace_stuck, engine_faults=faults)
        window = self.live.interval()
        return RunSnapshot(
            state="finished" if final else self.state, finished=final or engine.finished, note=ramp_note,
            level=level, users_running=last.users_running if steady and last is not None else None,
            elapsed_s=elapsed, paused_s=paused, stopped_s=totals.stopped_s, load_s=load_s,
            transition_s=self.ledger.transition_s, duration_s=engine.duration_s,
            requests_limit=engine.requests_limit, started_at=engine.started_at, target=target,
            database=self.database, seed=self.seed, sla_p95_ms=self.sla_p95_ms,
            figures=run_figures(totals, load_s=load_s, offered_rps=offered, lost=lost),
            total=totals.total, window=window, current_level=settled_current, levels=levels,
            curve=self.analysis.curve(level.mode), heavy_users=heavy, heavy_users_why=self.heavy_users.why_none,
            bottleneck=level_bottleneck(bottleneck_stats, bottleneck_level, target.get("kind")),
            harness=harness, validity=run_validity(harness, tuple(totals.faults), target),
            faults=tuple(totals.faults), engine_faults=faults, stuck_users_max=totals.stuck_users_max,
            users_running_max=totals.users_running_max, recent_errors=tuple(totals.recent_errors),
            scatter=np.array(totals.scatter, dtype=np.float64).reshape(-1, 2), nodes=engine.node_report(),
            load=engine.load_description(), workers=engine.worker_count,
            ramp=self.ramp_report if final else None,
            backlog=None if final else open_loop_backlog(level, settled_current, window, self.sla_p95_ms),
            point_missed=point_missed(self.shows, totals.total, load_s, level.pool),
            events=self.event_log.events,
        )

    def _summary(self, snapshot: RunSnapshot) -> RunSummary:
        return run_summary(snapshot, interrupted=self.interrupted, seed=self.seed, database=self.database,
                           sla_p95_ms=self.sla_p95_ms, label=self.label, preset=self.preset,
                           offered_arrivals=self._engine.offered_arrivals())

    # -- knobs: a key press and the ramp controller turn the same ones ------------------

    def set_concurrency(self, concurrency: float) -> None:
        self._engine.set_concurrency(concurrency)

    def set_rate(self, rate: float) -> None:
        self._engine.set_rate(rate)

    def set_level(self, level: float, at_s: float | None = None) -> None:
        """The level in the current loop: users (closed) or req/s (open), from `at_s` into the run or at once."""
        if self._engine.mode == OPEN:
            self._engine.set_rate(level, at_s)
        else:
            self._engine.set_concurrency(level, at_s)

    def open_loop_start(self) -> OpenLoopStart | None:
        """Where a switch to the open loop starts: OPEN_START_SHARE of the steady throughput just measured.

        Steady: the median of the current level's settled ticks (not one fast second);
        at 100% the queue can only grow (any hiccup is never caught up).
        """
        current = self.ledger.current()
        if current is None:
            return None
        current = current.settled()
        series = sorted(current.tick_throughputs) if current.tick_throughputs else []
        measured = series[len(series) // 2] if series else (current.throughput_rps or None)
        if not measured:
            return None
        return OpenLoopStart(rate=measured * OPEN_START_SHARE, measured_rps=measured, seconds=current.seconds,
                             mode=current.mode, level=current.level)

    def open_loop_rate(self) -> float | None:
        """The rate a switch to the open loop starts at (`open_loop_start`), None before a level has settled."""
        start = self.open_loop_start()
        return start.rate if start is not None else None

    def set_mode(self, mode: LoadMode) -> None:
        """Switch loops; the open loop starts at `open_loop_rate()`."""
        self._engine.set_mode(mode, rate=self.open_loop_rate() if mode == OPEN else None)

    def pause(self) -> None:
        self._engine.pause()

    def resume(self) -> None:
        self._engine.resume()

    def stop(self) -> None:
        self._engine.stop()

    def note(self, kind: EventKind, **details: object) -> None:
        """An event for the record (intervals.jsonl): a ramp step, a decision."""
        self._engine.note(kind, **details)

    def start_ramp(self, plan: RampPlan | None = None, *,
                   on_end: Callable[[RampController], None] | None = None) -> RampController:
        """Step the load up from the current level until past the cliff; `plan` defaults to doubling."""
        if plan is None:
            plan = RampPlan.from_current(self._engine.mode, self._engine.level.value, sla_p95_ms=self.sla_p95_ms)
        self.ramp = RampController(self, plan, on_end=on_end)
        self.subscribe(self.ramp)
        if plan.mode != self._engine.mode:
            self._engine.set_mode(plan.mode, rate=plan.start if plan.mode == OPEN else None)
        self.ramp.begin()
        return self.ramp

    def stop_ramp(self) -> None:
        if self.ramp is not None and self.ramp.active:
            self.ramp.close("stopped by the operator")


__all__ = ["CLOSED", "OPEN", "RAMPING", "RunSession"]
