"""`RunSession`: drives one engine, hands each tick to its consumers, writes what the run leaves behind."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from mlstress_tui.errors import EXIT_FAULT, EXIT_INTERRUPTED, EXIT_OK
from mlstress_tui.report.intervals import IntervalWriter
from mlstress_tui.report.summary import build_summary, write_json
from mlstress_tui.results.interval_stats import CLOSED, OPEN, IntervalStats
from mlstress_tui.results.run_stats import RunStats
from mlstress_tui.session.ramp_controller import RampController, RampPlan

log = logging.getLogger(__name__)

RAMPING = "ramping"
# The open loop, switched to from the closed one, starts at this share of the throughput just measured.
OPEN_START_SHARE = 0.8


class Engine(Protocol):
    """What a session needs of a load engine (the real one, or a test's stand-in)."""

    state: str
    mode: str
    concurrency: int
    rate: float | None
    pool_size: int | None
    level_id: int
    elapsed_s: float
    finished: bool
    started_at: datetime
    worker_count: int
    duration_s: float | None
    requests_limit: int | None
    target_info: dict[str, Any]

    def start(self, on_waiting: Callable[[float, int, int], None] | None = None) -> None: ...
    def set_concurrency(self, concurrency: int) -> None: ...
    def set_rate(self, rate: float) -> None: ...
    def set_mode(self, mode: str, rate: float | None = None) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def stop(self) -> None: ...
    def note(self, action: str, **details: object) -> None: ...
    def poll(self) -> list[IntervalStats]: ...
    def finish(self) -> None: ...
    def load_description(self) -> dict: ...
    def faults(self) -> dict: ...


class Consumer(Protocol):
    """Anything subscribed to a session's ticks."""

    def on_tick(self, tick: IntervalStats) -> None: ...


class RunSession:
    """One run: the engine's ticks go, once each, to the cumulative stats and every subscribed consumer.

    Front ends (the dashboard, `run`, `ramp`) turn the knobs through the session, call
    `pump()` on their own clock, and `finish()` at the end; the session writes
    `intervals.jsonl` as it goes and `summary.json` (and `ramp.json`) at the end.
    """

    def __init__(self, engine: Engine, *, run_dir: Path, sla_p95_ms: float = 200.0, seed: int = 42,
                 database: dict | None = None, report_interval_s: float = 1.0) -> None:
        self.engine = engine
        self.run_dir = Path(run_dir)
        self.sla_p95_ms = sla_p95_ms
        self.seed = seed
        self.database = database or {}
        self.stats = RunStats()
        self.ramp: RampController | None = None
        self.ramp_report: dict | None = None
        self.summary: dict | None = None
        # Analyses written beside the summary at the end (outliers.json, …): file name -> builder, and what they built.
        self._report_builders: dict[str, Callable[[RunSession], dict]] = {}
        self.reports: dict[str, dict] = {}
        self.interrupted = False
        # Files the run could not write (a removed directory, a full disk): said, the figures kept.
        self.write_errors: list[str] = []
        self._report_interval_s = report_interval_s
        self._writer: IntervalWriter | None = None
        self._consumers: list[Consumer] = [self.stats]
        self._pump_lock = threading.Lock()
        self._finish_lock = threading.Lock()

    # -- views ------------------------------------------------------------

    @property
    def state(self) -> str:
        if self.ramp is not None and self.ramp.active and self.engine.state == "running":
            return RAMPING
        return self.engine.state

    @property
    def finished(self) -> bool:
        return self.engine.finished

    @property
    def exit_code(self) -> int:
        """0 done, 130 interrupted, 3 when the measurement lost a worker or its files (the summary says which)."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.write_errors or (self.summary is not None and self.summary["faults"]["worker_deaths"]):
            return EXIT_FAULT
        return EXIT_OK

    @property
    def level(self) -> float:
        """The commanded level: concurrency in the closed loop, rate in the open loop."""
        return float(self.engine.rate or 0.0) if self.engine.mode == OPEN else float(self.engine.concurrency)

    @property
    def level_id(self) -> int:
        return self.engine.level_id

    def subscribe(self, consumer: Consumer) -> None:
        self._consumers.append(consumer)

    def add_report(self, name: str, build: Callable[[RunSession], dict]) -> None:
        """An analysis of the whole run, built from this session and written as `name` when the run finishes."""
        self._report_builders[name] = build

    # -- lifecycle --------------------------------------------------------

    def start(self, on_waiting: Callable[[float, int, int], None] | None = None) -> None:
        """Open the run directory and start the engine; `on_waiting` hears about slow-starting workers."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._writer = IntervalWriter(self.run_dir / "intervals.jsonl", self._report_interval_s)
        self._consumers.insert(1, self._writer)
        self.engine.start(on_waiting)

    def pump(self) -> list[IntervalStats]:
        """Hand the ticks that arrived since the last call to every consumer; return them, oldest first."""
        with self._pump_lock:
            ticks = self.engine.poll()
            for tick in ticks:
                for consumer in self._consumers:
                    consumer.on_tick(tick)
            return ticks

    def run_bounded(self, poll_s: float = 0.1) -> dict:
        """Start, run to the run's own bound (--duration/--requests), finish: a run with no front end."""
        self.start()
        return self.run_until_finished(threading.Event(), poll_s)

    def run_until_finished(self, stop: threading.Event, poll_s: float = 0.1) -> dict:
        """Pump until the run's own bound, the ramp's end or `stop`; then finish. The headless front end."""
        while not self.finished and not stop.is_set():
            stop.wait(poll_s)
            self.pump()
        if stop.is_set():
            self.interrupted = True
        return self.finish()

    def finish(self) -> dict:
        """Stop the engine, drain the last ticks, write summary.json (and ramp.json); idempotent."""
        with self._finish_lock:
            if self.summary is not None:
                return self.summary
            self.engine.finish()
            self.pump()
            if self.ramp is not None:
                self.ramp.close("run ended" if self.ramp.active else None)
            if self._writer is not None:
                self._writer.close()
                if self._writer.error:
                    self.write_errors.append(self._writer.error)
            engine = self.engine
            self.summary = self.snapshot_summary()
            if self.ramp is not None:
                self.ramp_report = self.ramp.report()
                self.summary["ramp"] = {key: self.ramp_report.get(key) for key in
                                        ("knee_concurrency", "safe_concurrency", "knee_rate", "safe_rate", "reason")}
                self._write("ramp.json", self.ramp_report)
            for name, build in self._report_builders.items():
                self.reports[name] = build(self)
                self._write(name, self.reports[name])
            self._write("summary.json", self.summary)
            return self.summary

    def snapshot_summary(self) -> dict:
        """summary.json's document for the run so far (the whole run once it has finished); nothing written."""
        engine = self.engine
        summary = build_summary(
            target=engine.target_info, load=engine.load_description(), stats=self.stats,
            started_at=engine.started_at, duration_s=engine.elapsed_s, seed=self.seed,
            database=self.database, interrupted=self.interrupted, workers=engine.worker_count,
            faults=engine.faults(), nodes=engine.node_report() if hasattr(engine, "node_report") else None,
        )
        summary["sla_p95_ms"] = self.sla_p95_ms
        return summary

    def _write(self, name: str, document: dict) -> None:
        """A report file into the run directory; a failure is one line in `write_errors`, not a lost summary."""
        try:
            write_json(self.run_dir / name, document)
        except OSError as error:
            self.write_errors.append(f"cannot write {self.run_dir / name}: {error.strerror or error}")

    # -- knobs: a key press and the ramp controller turn the same ones ------

    def set_concurrency(self, concurrency: int) -> None:
        self.engine.set_concurrency(concurrency)

    def set_rate(self, rate: float) -> None:
        self.engine.set_rate(rate)

    def set_mode(self, mode: str) -> None:
        """Switch loops; the open loop starts at OPEN_START_SHARE of the throughput just measured.

        At 100% the queue can only grow (any hiccup is never caught up), and the SLA
        light would read BREACH within seconds of a switch that changed nothing.
        """
        current = self.stats.current_level()
        measured = current.throughput_rps if current is not None and current.requests else None
        if measured is None and self.stats.last is not None and self.stats.last.requests:
            measured = self.stats.last.throughput_rps
        self.engine.set_mode(mode, rate=measured * OPEN_START_SHARE if mode == OPEN and measured else None)

    def pause(self) -> None:
        self.engine.pause()

    def resume(self) -> None:
        self.engine.resume()

    def stop(self) -> None:
        self.engine.stop()

    def note(self, action: str, **details: object) -> None:
        """An event for the record (intervals.jsonl): a ramp step, a decision."""
        self.engine.note(action, **details)

    def start_ramp(self, plan: RampPlan | None = None, *,
                   on_end: Callable[[RampController], None] | None = None) -> RampController:
        """Step the load up from the current level until past the cliff; `plan` defaults to doubling."""
        if plan is None:
            plan = RampPlan.from_current(self.engine.mode, self.level, sla_p95_ms=self.sla_p95_ms)
        self.ramp = RampController(self, plan, target_kind=self.engine.target_info.get("kind"),
                                   workers=self.engine.worker_count, on_end=on_end)
        self.subscribe(self.ramp)
        if plan.mode != self.engine.mode:
            self.engine.set_mode(plan.mode, rate=plan.start if plan.mode == OPEN else None)
        self.ramp.begin()
        return self.ramp

    def stop_ramp(self) -> None:
        if self.ramp is not None and self.ramp.active:
            self.ramp.close("stopped by the operator")


__all__ = ["CLOSED", "OPEN", "RAMPING", "RunSession"]
