"""The load engine: worker slots driven from one control API, their ticks merged and published.

The engine publishes ticks and decides nothing: a run session
(`mlstress_tui.session`) `start()`s it, turns its knobs (from a key press or
the ramp controller alike), `poll()`s merged ticks on its own clock and hands
them to its consumers, then `finish()`es it. The engine never blocks a caller
except in `start()` and `finish()`. Its rooms: the spec (load/spec.py), the
commanded levels (levels.py), the tick collector (collector.py), the
supervisor of the slots (supervisor.py), and the backend the slots run on.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from mlstress_tui.errors import UsageError
from mlstress_tui.load.backends import WorkerBackend, backend_for
from mlstress_tui.load.collector import TickCollector
from mlstress_tui.load.descriptions import describe_load, describe_nodes
from mlstress_tui.load.levels import CommandedLevel, CommandedLevels
from mlstress_tui.load.population import Population
from mlstress_tui.load.protocol import (Crashed, Exited, Failed, Ready, Said, TickReport, WorkerConfig,
                                        WorkerPlan)
from mlstress_tui.load.spec import LoadSpec as LoadSpec  # re-exported: scripts build an engine from here
from mlstress_tui.load.supervisor import KILL_GRACE_S, SILENT_S, Supervisor
from mlstress_tui.load.targets import Target
from mlstress_tui.load.user_strata import Stratum
from mlstress_tui.results.interval_stats import IntervalStats
from mlstress_tui.results.kinds import EventKind, LoadMode, RunEvent

log = logging.getLogger(__name__)

# A node's clock further than this from the front end's is a warning.
CLOCK_WARN_MS = 1.0
# A plan applies at the first tick boundary at least this far ahead, on every worker at once.
PLAN_LEAD_NS = 20_000_000

STARTING, RUNNING, PAUSED, STOPPING, FINISHED = "starting", "running", "paused", "stopping", "finished"


class LoadEngine:
    """Drives a target with worker slots and collects their ticks."""

    def __init__(self, target: Target, load: LoadSpec, *, run_dir: Path, database: dict[str, Any] | None = None,
                 users_db: Path | None = None, backend: WorkerBackend | None = None) -> None:
        load.validate()
        self.target = target
        self.load = load
        self.run_dir = Path(run_dir)
        self.database = database or {}
        self.population = Population.read(target, load, users_db)
        self.requests_limit = self.population.requests_limit(load)
        self.duration_s = load.duration_s
        self.levels = CommandedLevels(load)
        self.state = STARTING
        self.backend = backend or backend_for(load.ray)
        self.backend.connect()
        workers = load.workers or self.backend.default_workers()
        if load.pool_size is not None:
            workers = min(workers, load.pool_size)
        self.worker_count = max(workers, 1)
        self.collector = TickCollector(self.levels, self.backend.node_of)
        self.supervisor = Supervisor(self.backend, load, self.levels, self.collector, slots=self.worker_count,
                                     note=self.collector.note, spawn=self._spawn, stop_run=self.stop,
                                     elapsed=lambda: self.elapsed_s, reopen_level=self._reopen_level)
        self.started_at = datetime.now(timezone.utc)
        self._start_ns = 0
        self._start_wall_ns = 0
        self._end_ns: int | None = None
        self._last_t_end = 0.0
        self._stop_sent = False
        self._duration_reached = False
        # When sending ended: the open loop's owed arrivals run until then.
        self._sending_ended_s: float | None = None
        self._paused_at: float | None = None
        self._paused_s = 0.0
        self._collector_thread: threading.Thread | None = None
        self._finish_lock = threading.Lock()
        self._finished = False
        # Control changes come from the UI or the ramp and, on a node loss, from the collector: one at a time.
        self._control_lock = threading.RLock()

    # -- views -----------------------------------------------------------------

    @property
    def level(self) -> CommandedLevel:
        """The level commanded now."""
        return self.levels.current

    @property
    def mode(self) -> LoadMode:
        return self.levels.current.mode

    @property
    def concurrency(self) -> int:
        return self.levels.current.concurrency

    @property
    def rate(self) -> float | None:
        return self.levels.current.rate

    @property
    def pool_size(self) -> int:
        """The connection slots the current level runs with."""
        return self.levels.current.pool

    @property
    def level_id(self) -> int:
        return self.levels.current.level_id

    @property
    def strata(self) -> tuple[Stratum, ...]:
        return self.population.strata

    @property
    def population_event_counts(self) -> np.ndarray:
        return self.population.event_counts

    @property
    def edge_class_sizes(self) -> dict[str, int]:
        return self.population.edge_class_sizes

    @property
    def finished(self) -> bool:
        """True once the run has ended (bound reached, stopped, or the workers are gone)."""
        thread = self._collector_thread
        return self.state == FINISHED or (thread is not None and not thread.is_alive())

    @property
    def elapsed_s(self) -> float:
        """Wall time since the start; at the end, until the last call settled (the last tick's end)."""
        if not self._start_ns:
            return 0.0
        if self._end_ns is not None:
            return max(self._end_ns - self._start_ns, 0) / 1e9
        return max(time.perf_counter_ns() - self._start_ns, 0) / 1e9

    @property
    def paused_s(self) -> float:
        """Seconds the operator held the load paused (not load time)."""
        ongoing = self.elapsed_s - self._paused_at if self._paused_at is not None else 0.0
        return self._paused_s + max(ongoing, 0.0)

    @property
    def target_info(self) -> dict[str, Any]:
        info = self.target.describe()
        for key in ("users", "events", "seed"):
            if key in self.database:
                info[key] = self.database[key]
        return info

    # -- lifecycle ----------------------------------------------------------------

    def start(self, on_waiting: Callable[[float, int, int], None] | None = None) -> None:
        """Spawn the workers, wait until each is ready, then start them together at one instant a little ahead.

        `on_waiting(seconds, ready, workers)` is called about once a second while the
        workers open the target (a model's import can take a while), so a front end can say so.
        """
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.supervisor.tickets = self.backend.tickets(self.worker_count) if self.requests_limit else None
        for worker_id, plan in self.levels.plans(self.supervisor.active).items():
            self._spawn(worker_id, plan)
        self._await_ready(on_waiting)
        try:
            self.backend.before_start()
        except UsageError:
            self._kill_workers()
            raise
        lead_ns = self.backend.start_lead_ns
        self._start_ns, self._start_wall_ns = time.perf_counter_ns() + lead_ns, time.time_ns() + lead_ns
        self.started_at = datetime.now(timezone.utc)
        self.supervisor.start(self._start_ns, self._start_wall_ns)
        for worker_id in self.supervisor.active:
            self.backend.start(worker_id, self._start_ns, self._start_wall_ns)
        for node, offset_ms in self.backend.clock_offsets_ms().items():
            # Beyond a millisecond it is said as a warning: start and plan instants are shifted by it, but
            # per-node timestamps are the node's own.
            self.note(EventKind.CLOCK_SKEW if abs(offset_ms) > CLOCK_WARN_MS else EventKind.CLOCK_OFFSET,
                      node=node, offset_ms=round(offset_ms, 3))
        self.state = RUNNING
        self._collector_thread = threading.Thread(target=self._collect, daemon=True, name="collector")
        self._collector_thread.start()

    def _spawn(self, worker_id: int, plan: WorkerPlan) -> None:
        config = WorkerConfig(worker_id=worker_id, target=self.target, users=self.population.source,
                              timeout_s=self.load.timeout_s, tick_s=self.load.tick_s,
                              requests_quota=self.requests_limit, arrivals=self.load.arrivals,
                              duration_s=self.duration_s, workers=self.worker_count,
                              replace_stuck=self.load.replace_stuck, output_path=str(self.run_dir / "target.log"),
                              output_cap_bytes=8 * 1024 * 1024 // self.worker_count,
                              strata_edges=tuple(stratum.min_events for stratum in self.population.strata))
        self.backend.spawn(worker_id, config, plan)

    def _await_ready(self, on_waiting: Callable[[float, int, int], None] | None) -> None:
        ready: set[int] = set()
        began = time.monotonic()
        limit = self.load.startup_timeout_s
        while len(ready) < self.worker_count:
            waited = time.monotonic() - began
            if waited >= limit:
                self._kill_workers()
                raise UsageError(f"{self.worker_count - len(ready)} of {self.worker_count} worker processes had not "
                                 f"opened {self.target.label} after {limit:g} s: raise --startup-timeout for a "
                                 "target that loads slowly") from None
            said = self.backend.receive(min(limit - waited, 1.0))
            match said:
                case None:
                    # Nothing said for a while: a worker that ended by now ended without a word (its Failed would
                    # have arrived first). The target's import killed it, or the system did: waiting is pointless.
                    silent = self._ended_silently(ready)
                    if silent is not None:
                        self._kill_workers()
                        raise UsageError(silent)
                    if on_waiting is not None:
                        on_waiting(time.monotonic() - began, len(ready), self.worker_count)
                case Failed(reason=reason):
                    self._kill_workers()
                    raise UsageError(reason)
                case Ready(worker=worker):
                    ready.add(worker)
                case _:
                    pass

    def _ended_silently(self, ready: set[int]) -> str | None:
        """Why the first worker that ended before saying ready did, in one line; None while all live."""
        for worker_id in range(self.worker_count):
            ended = None if worker_id in ready else self.backend.exit_of(worker_id)
            if ended is not None:
                return (f"worker process {worker_id} ended ({ended.how}) while opening {self.target.label}, without "
                        "saying why: something in the target's import or set-up ended its process (os._exit, a "
                        "crash in native code, the OOM killer); open the target by hand to see it fail")
        return None

    def _kill_workers(self) -> None:
        self.backend.kill_all()
        self.backend.close()
        self.state = FINISHED

    # -- control ------------------------------------------------------------------

    def note(self, kind: EventKind, **details: Any) -> None:
        """Record a control event; it travels with the next tick (intervals.jsonl, the ramp's steps)."""
        self.collector.note(RunEvent(kind, round(self.elapsed_s, 3), details))
        log.info("%s %s", kind.value, details)

    def offered_arrivals(self) -> float | None:
        """Open loop: the arrivals the commanded rates owed from the start until sending ended (see levels.py)."""
        end = self._sending_ended_s if self._sending_ended_s is not None else self.elapsed_s
        return self.levels.offered_arrivals(end)

    def _send_plans(self, at_s: float | None = None) -> None:
        """Each slot's share of the current level, applied on every worker at one tick boundary: the first one
        ahead, or the one at `at_s` seconds into the run when that is later (a ramp's next step)."""
        plans = self.levels.plans(self.supervisor.active)
        at_ns = None
        if self._start_ns:
            tick_ns = int(self.load.tick_s * 1e9)
            ahead = time.perf_counter_ns() + PLAN_LEAD_NS - self._start_ns
            boundary = max(math.ceil(ahead / tick_ns), 1)
            if at_s is not None:
                # Not before `at_s`: a step asked to last its duration lasts at least that long.
                boundary = max(boundary, math.ceil(at_s * 1e9 / tick_ns - 1e-6))
            at_ns = self._start_ns + boundary * tick_ns
            self.levels.took_effect(self.levels.current.level_id, boundary * tick_ns / 1e9)
        self.backend.send_plans(plans, at_ns)

    def _reopen_level(self) -> None:
        with self._control_lock:
            self.levels.reopen(self.elapsed_s)
            self._send_plans()

    def commanded(self, level_id: int) -> CommandedLevel | None:
        """What level `level_id` commanded (None once forgotten)."""
        return self.levels.by_id.get(level_id)

    def set_concurrency(self, concurrency: float, at_s: float | None = None) -> None:
        with self._control_lock:
            if self._stop_sent:
                return
            before = self.levels.current.concurrency
            level = self.levels.set_concurrency(concurrency, self.elapsed_s)
            if level is not None:
                self.note(EventKind.CONCURRENCY, **{"from": before, "to": level.concurrency})
                self._send_plans(at_s)

    def set_rate(self, rate: float, at_s: float | None = None) -> None:
        with self._control_lock:
            if self._stop_sent:
                return
            before = self.levels.current.rate
            level = self.levels.set_rate(rate, self.elapsed_s)
            if level is not None:
                self.note(EventKind.RATE, **{"from": before, "to": level.rate})
                self._send_plans(at_s)

    def set_mode(self, mode: LoadMode, rate: float | None = None) -> None:
        """Switch between closed and open loop; the open loop runs at `rate` (default: its last rate)."""
        with self._control_lock:
            if self._stop_sent:
                return
            before = self.levels.current.mode
            level = self.levels.set_mode(LoadMode(mode), rate, self.elapsed_s)
            if level is not None:
                self.note(EventKind.MODE, **{"from": before.value, "to": level.mode.value,
                                             "concurrency": level.concurrency, "rate": level.rate})
                self._send_plans()

    def pause(self) -> None:
        with self._control_lock:
            if self.state == RUNNING:
                self.state = PAUSED
                self._paused_at = self.elapsed_s
                self.note(EventKind.PAUSE)
                self.backend.broadcast_pause()

    def resume(self) -> None:
        with self._control_lock:
            if self.state == PAUSED:
                self.state = RUNNING
                if self._paused_at is not None:
                    self._paused_s += max(self.elapsed_s - self._paused_at, 0.0)
                    self._paused_at = None
                self.note(EventKind.RESUME)
                self.backend.broadcast_resume()

    def stop(self) -> None:
        """Ask the workers to stop (non-blocking); `finish()` waits for them."""
        if self._stop_sent:
            return
        self._stop_sent = True
        self.supervisor.stopping = True
        if self._sending_ended_s is None:
            self._sending_ended_s = self.elapsed_s
        if self._paused_at is not None:
            self._paused_s += max(self.elapsed_s - self._paused_at, 0.0)
            self._paused_at = None
        if self.state != FINISHED:
            self.state = STOPPING
        self.backend.broadcast_stop()

    # -- collection ---------------------------------------------------------------

    def poll(self) -> list[IntervalStats]:
        """Ticks (merged across workers) since the last call, oldest first."""
        return self.collector.take()

    def _collect(self) -> None:
        supervisor = self.supervisor
        while supervisor.live:
            said: Said | None = self.backend.receive(0.1)
            match said:
                case TickReport(worker=worker, tick=tick) if worker in supervisor.live:
                    supervisor.on_tick(worker, tick)
                    self.collector.add(worker, tick)
                    self._last_t_end = max(self._last_t_end, tick.t_end)
                case Exited(worker=worker, sigterm=sigterm):
                    supervisor.on_exit(worker, sigterm=sigterm)
                case Crashed(worker=worker, reason=reason):
                    supervisor.on_crashed(worker, reason)
                case Ready(worker=worker):
                    supervisor.on_ready(worker)
                case Failed(worker=worker, reason=reason):
                    supervisor.on_failed(worker, reason)
                case _:
                    pass
            supervisor.check()
            self._end_stuck_workers()
            self._emit(final=not supervisor.live)
            self._check_duration()
        self._emit(final=True)
        if self._end_ns is None:
            self._end_ns = self._start_ns + int(self._last_t_end * 1e9) if self._last_t_end else time.perf_counter_ns()
        if self.state != FINISHED:
            self.state = STOPPING

    def _emit(self, *, final: bool) -> None:
        supervisor = self.supervisor
        waiting_on = supervisor.missing | supervisor.silent
        self.collector.emit(supervisor.live - waiting_on, complete_without=waiting_on, active=len(supervisor.active),
                            final=final, silent_users=supervisor.silent_users())

    def _check_duration(self) -> None:
        if self._duration_reached or self._stop_sent or not self._start_ns or self.duration_s is None:
            return
        if time.perf_counter_ns() - self._start_ns >= self.duration_s * 1e9:
            # The workers end at that instant by their own clocks; no stop message needs to reach them.
            self._duration_reached = True
            self._sending_ended_s = self.duration_s
            self.note(EventKind.DURATION_REACHED)

    def _end_stuck_workers(self) -> None:
        ending = self._stop_sent or self._duration_reached or not (self.supervisor.live - self.supervisor.silent)
        if ending:
            self.supervisor.end_stuck(timeout_s=self.load.timeout_s, at_t=self._last_t_end, mode=self.mode)

    # -- the end ------------------------------------------------------------------

    def finish(self, timeout_s: float | None = None) -> None:
        """Stop if running and wait for the workers; idempotent. Ticks still unread stay for `poll()`."""
        with self._finish_lock:
            if self._finished:
                return
            if not self._duration_reached:
                self.stop()
            wait = timeout_s if timeout_s is not None else self.load.timeout_s + SILENT_S + KILL_GRACE_S + 2.0
            if self._collector_thread is not None:
                self._collector_thread.join(wait)
            for worker_id in range(self.worker_count):
                if not self.backend.join(worker_id, 0.5):
                    self.supervisor.faults.requests_lost += self.collector.last_inflight.get(worker_id, 0)
                    log.warning("worker %d did not stop in time: ended", worker_id)
            self._kill_workers()
            if self._collector_thread is not None and self._collector_thread.is_alive():
                self.supervisor.live.clear()
                self._collector_thread.join(1.0)
            if self._end_ns is None:
                self._end_ns = self._start_ns + int(self._last_t_end * 1e9) if self._last_t_end else \
                    time.perf_counter_ns()
            self._finished = True
            self.state = FINISHED

    # -- descriptions for the summary ---------------------------------------------------

    def load_description(self) -> dict[str, Any]:
        """The `load` object of summary.json: what was asked for, and where the knobs ended."""
        return describe_load(self.load, self.levels, self.requests_limit, self.backend)

    def faults(self) -> dict[str, Any]:
        """The tool's own faults, for summary.json: workers that died or went silent, requests lost with them."""
        return self.supervisor.faults.to_json()

    def node_report(self) -> list[dict[str, Any]] | None:
        """Per node (Ray runs): its actors, the load offered and achieved there, p99, verdict and liveness."""
        if self.backend.can_replace:
            return None  # one machine: the run's own figures are the node's
        return describe_nodes(self.backend, self.levels, self.supervisor, self.collector, self.worker_count,
                              self.elapsed_s)
