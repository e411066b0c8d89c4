"""The load engine: worker processes driven from one control API, their stats merged into ticks.

The engine publishes ticks and decides nothing: a run session (`mlstress_tui.session`)
`start()`s it, turns its knobs (from a key press or the ramp controller alike),
`poll()`s merged ticks on its own clock and hands them to its consumers, then
`finish()`es it. The engine never blocks a caller except in `start()` and `finish()`.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from mlstress_tui.errors import UsageError
from mlstress_tui.load.schedule import ARRIVALS
from mlstress_tui.load.targets import TargetSpec
from mlstress_tui.load.users import USER_MIXES, UserSource
from mlstress_tui.load.worker import WorkerConfig, WorkerPlan, worker_main
from mlstress_tui.results.interval_stats import CLOSED, OPEN, IntervalStats

log = logging.getLogger(__name__)

DEFAULT_OPEN_POOL = 64
_START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class LoadSpec:
    """How hard, how long and with which users to drive the target."""

    mode: str = CLOSED
    concurrency: int = 4
    rate: float | None = None
    pool_size: int | None = None  # None: one slot per virtual user (closed), DEFAULT_OPEN_POOL (open)
    timeout_s: float = 5.0
    user_mix: str = "uniform"
    seed: int = 42
    duration_s: float | None = None
    requests: int | None = None
    workers: int | None = None  # None: one process per core
    arrivals: str = "uniform"  # open loop: "uniform" (wrk2-style) or "poisson" (bursty, seeded)
    tick_s: float = 0.25

    def validate(self) -> None:
        if self.mode not in (CLOSED, OPEN):
            raise UsageError(f"unknown load mode {self.mode!r}: use closed (--concurrency) or open (--rate)")
        if self.concurrency < 1:
            raise UsageError(f"--concurrency must be at least 1, got {self.concurrency}")
        if self.mode == OPEN and (self.rate is None or self.rate <= 0):
            raise UsageError(f"--rate must be a positive number of requests/s, got {self.rate}")
        if self.pool_size is not None and self.pool_size < 1:
            raise UsageError(f"--pool-size must be at least 1, got {self.pool_size}")
        if self.timeout_s <= 0:
            raise UsageError(f"--timeout must be positive seconds, got {self.timeout_s}")
        if self.duration_s is not None and self.duration_s <= 0:
            raise UsageError(f"--duration must be positive seconds, got {self.duration_s}")
        if self.requests is not None and self.requests < 1:
            raise UsageError(f"--requests must be at least 1, got {self.requests}")
        if self.user_mix not in USER_MIXES:
            raise UsageError(f"unknown --user-mix {self.user_mix!r}: use one of {', '.join(USER_MIXES)}")
        if self.workers is not None and self.workers < 1:
            raise UsageError(f"--workers must be at least 1, got {self.workers}")
        if self.arrivals not in ARRIVALS:
            raise UsageError(f"unknown --arrivals {self.arrivals!r}: use one of {', '.join(ARRIVALS)}")


def split_evenly(total: int, parts: int) -> list[int]:
    """`total` as `parts` integers differing by at most one, larger first."""
    return [total // parts + (1 if index < total % parts else 0) for index in range(parts)]


class LoadEngine:
    """Drives a target with worker processes and collects their stats."""

    def __init__(self, target: TargetSpec, load: LoadSpec, *, run_dir: Path,
                 database: dict | None = None, users_db: Path | None = None) -> None:
        load.validate()
        self.target = target
        self.load = load
        self.run_dir = Path(run_dir)
        self.database = database or {}
        self.users = UserSource(db_path=target.db_path or users_db, mix=load.user_mix, seed=load.seed)
        self.mode = load.mode
        self.concurrency = load.concurrency
        self.rate: float | None = load.rate if load.mode == OPEN else None
        self._last_rate = load.rate or float(load.concurrency * 10)
        self.pool_size = load.pool_size
        self.duration_s = load.duration_s
        self.requests_limit = load.requests
        self.state = "starting"
        # Each control change opens a level; workers stamp their ticks with the level they run at.
        self.level_id = 0
        self.levels: dict[int, tuple[str, int, float | None]] = {0: (self.mode, self.concurrency, self.rate)}
        cores = os.cpu_count() or 1
        workers = load.workers or cores
        if load.pool_size is not None:
            workers = min(workers, load.pool_size)
        self.worker_count = max(workers, 1)
        self._context = multiprocessing.get_context("spawn")
        self._stats_queue = self._context.Queue()
        self._controls: list = []
        self._processes: list = []
        self._ticks: deque[IntervalStats] = deque(maxlen=4096)
        self._events: list[dict] = []
        self._lock = threading.Lock()
        self._collector: threading.Thread | None = None
        self._start_ns = 0
        self.started_at = datetime.now(timezone.utc)
        self._end_ns: int | None = None
        self._stop_sent = False
        self._finish_lock = threading.Lock()
        self._finished = False
        self._live: set[int] = set()

    # -- read-only views -------------------------------------------------

    @property
    def finished(self) -> bool:
        """True once the run has ended (bound reached, stopped, or the workers are gone)."""
        return self.state == "finished" or (self._collector is not None and not self._collector.is_alive())

    @property
    def elapsed_s(self) -> float:
        if not self._start_ns:
            return 0.0
        end = self._end_ns or time.perf_counter_ns()
        return max(end - self._start_ns, 0) / 1e9

    @property
    def target_info(self) -> dict:
        info = self.target.describe()
        for key in ("users", "events", "seed"):
            if key in self.database:
                info[key] = self.database[key]
        return info

    # -- lifecycle --------------------------------------------------------

    def _plans(self) -> list[WorkerPlan]:
        parts = self.worker_count
        if self.mode == CLOSED:
            concurrency = split_evenly(self.concurrency, parts)
            pools = split_evenly(self.pool_size, parts) if self.pool_size is not None else [None] * parts
            return [WorkerPlan(CLOSED, concurrency[i], 0.0, pools[i], self.level_id) for i in range(parts)]
        pools = split_evenly(self.pool_size or DEFAULT_OPEN_POOL, parts)
        rate = float(self.rate or 0.0)
        return [WorkerPlan(OPEN, pools[i], rate / parts, pools[i], self.level_id) for i in range(parts)]

    def start(self) -> None:
        """Spawn the workers, wait until each is ready, then start them together."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        tickets = self._context.Value("q", 0) if self.load.requests else None
        for worker_id, plan in enumerate(self._plans()):
            config = WorkerConfig(worker_id=worker_id, target=self.target, users=self.users,
                                  timeout_s=self.load.timeout_s, tick_s=self.load.tick_s,
                                  requests_quota=self.load.requests, arrivals=self.load.arrivals)
            ours, theirs = self._context.Pipe()
            process = self._context.Process(target=worker_main, args=(config, plan, theirs, self._stats_queue, tickets),
                                            name=f"mlstress-worker-{worker_id}", daemon=True)
            process.start()
            self._controls.append(ours)
            self._processes.append(process)
        self._await_ready()
        self._start_ns = time.perf_counter_ns() + 20_000_000
        self.started_at = datetime.now(timezone.utc)
        self._live = set(range(self.worker_count))
        for control in self._controls:
            control.send(("start", self._start_ns))
        self.state = "running"
        self._collector = threading.Thread(target=self._collect, daemon=True, name="collector")
        self._collector.start()

    def _await_ready(self) -> None:
        ready: set[int] = set()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while len(ready) < self.worker_count:
            try:
                kind, worker_id, detail = self._stats_queue.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                self._kill_workers()
                raise UsageError(f"worker processes did not start within {_START_TIMEOUT_S:.0f} s") from None
            if kind == "failed":
                self._kill_workers()
                raise UsageError(detail)
            ready.add(worker_id)

    def _kill_workers(self) -> None:
        for process in self._processes:
            if process.is_alive():
                process.terminate()
        for process in self._processes:
            process.join(2.0)
            if process.is_alive():
                process.kill()
                process.join(1.0)
        self.state = "finished"

    # -- control ----------------------------------------------------------

    def _broadcast(self, *message: object) -> None:
        for control in self._controls:
            try:
                control.send(message)
            except (OSError, ValueError):
                pass  # that worker has already exited

    def note(self, action: str, **details: object) -> None:
        """Record a control event; it travels with the next tick (intervals.jsonl, the ramp's steps)."""
        with self._lock:
            self._events.append({"t": round(self.elapsed_s, 3), "action": action, **details})
        log.info("%s %s", action, details)

    def _open_level(self) -> None:
        """A control change: a new level, which ticks count only once every worker runs it."""
        self.level_id += 1
        self.levels[self.level_id] = (self.mode, self.concurrency, self.rate)
        self._send_plans()

    def _send_plans(self) -> None:
        with self._lock:
            plans = self._plans()
        for control, plan in zip(self._controls, plans):
            try:
                control.send(("plan", plan))
            except (OSError, ValueError):
                pass

    def set_concurrency(self, concurrency: int) -> None:
        concurrency = max(1, int(concurrency))
        if self.mode != CLOSED or concurrency == self.concurrency or self._stop_sent:
            return
        self.note("concurrency", **{"from": self.concurrency, "to": concurrency})
        self.concurrency = concurrency
        self._open_level()

    def set_rate(self, rate: float) -> None:
        rate = max(0.1, float(rate))
        if self.mode != OPEN or rate == self.rate or self._stop_sent:
            return
        self.note("rate", **{"from": self.rate, "to": rate})
        self.rate = self._last_rate = rate
        self._open_level()

    def set_mode(self, mode: str, rate: float | None = None) -> None:
        """Switch between closed and open loop; the open loop runs at `rate` (default: its last rate)."""
        if mode == self.mode or mode not in (CLOSED, OPEN) or self._stop_sent:
            return
        if mode == OPEN:
            self.rate = self._last_rate = max(round(rate, 1), 0.1) if rate else self._last_rate
        else:
            self.rate = None
        self.note("mode", **{"from": self.mode, "to": mode, "concurrency": self.concurrency, "rate": self.rate})
        self.mode = mode
        self._open_level()

    def pause(self) -> None:
        if self.state == "running":
            self.state = "paused"
            self.note("pause")
            self._broadcast("pause")

    def resume(self) -> None:
        if self.state == "paused":
            self.state = "running"
            self.note("resume")
            self._broadcast("resume")

    def stop(self) -> None:
        """Ask the workers to stop (non-blocking); `finish()` waits for them."""
        if self._stop_sent:
            return
        self._stop_sent = True
        if self.state not in ("finished",):
            self.state = "stopping"
        self._end_ns = time.perf_counter_ns()
        self._broadcast("stop")

    # -- collection -------------------------------------------------------

    def poll(self) -> list[IntervalStats]:
        """Ticks (merged across workers) since the last call, oldest first."""
        ticks = []
        while True:
            try:
                ticks.append(self._ticks.popleft())
            except IndexError:
                return ticks

    def _collect(self) -> None:
        pending: dict[int, tuple[IntervalStats, set[int]]] = {}
        while self._live:
            try:
                kind, worker_id, payload = self._stats_queue.get(timeout=0.1)
            except queue.Empty:
                kind = None
            if kind == "tick":
                merged, reported = pending.setdefault(payload.index, (IntervalStats(
                    index=payload.index, t_start=payload.t_start, t_end=payload.t_end, mode=payload.mode,
                    rate=None, paused=payload.paused, level_id=payload.level_id), set()))
                merged.merge_worker(payload)
                merged.t_end = max(merged.t_end, payload.t_end)
                reported.add(worker_id)
            elif kind == "exit":
                self._live.discard(worker_id)
            self._emit_complete(pending, final=not self._live)
            self._check_limits()
            if self._processes and not any(p.is_alive() for p in self._processes) and self._live:
                log.warning("worker processes exited without saying so")
                self._live.clear()
        self._emit_complete(pending, final=True)
        if self._end_ns is None:
            self._end_ns = time.perf_counter_ns()
        if self.state != "finished":
            self.state = "stopping"

    def _emit_complete(self, pending: dict, *, final: bool) -> None:
        for index in sorted(pending):
            merged, reported = pending[index]
            if not final and not self._live <= reported:
                break
            del pending[index]
            # A tick reports the level commanded, never a sum of workers caught half-way through a change.
            commanded = self.levels.get(merged.level_id if merged.level_id is not None else self.level_id)
            if commanded is not None:
                merged.mode, merged.concurrency, merged.rate = commanded
            with self._lock:
                merged.events, self._events = self._events, []
            self._ticks.append(merged)

    def _check_limits(self) -> None:
        if self._stop_sent or not self._start_ns:
            return
        if self.duration_s is not None and time.perf_counter_ns() - self._start_ns >= self.duration_s * 1e9:
            self.note("duration_reached")
            self.stop()

    # -- the end ----------------------------------------------------------

    def finish(self, timeout_s: float | None = None) -> None:
        """Stop if running and wait for the workers; idempotent. Ticks still unread stay for `poll()`."""
        with self._finish_lock:
            if self._finished:
                return
            self.stop()
            wait = timeout_s if timeout_s is not None else self.load.timeout_s + 5.0
            if self._collector is not None:
                self._collector.join(wait)
            for process in self._processes:
                process.join(max(wait / 4, 0.5))
            self._kill_workers()
            if self._collector is not None and self._collector.is_alive():
                self._live.clear()
                self._collector.join(1.0)
            self._finished = True
            self.state = "finished"

    def load_description(self) -> dict:
        """The `load` object of summary.json: what was asked for, and where the knobs ended."""
        return {
            "mode": self.load.mode,
            "concurrency": self.load.concurrency if self.load.mode == CLOSED else None,
            "rate": self.load.rate if self.load.mode == OPEN else None,
            "pool_size": self.load.pool_size or (self.load.concurrency if self.load.mode == CLOSED else DEFAULT_OPEN_POOL),
            "user_mix": self.load.user_mix,
            "arrivals": self.load.arrivals,
            "timeout_s": self.load.timeout_s,
            "duration_s": self.load.duration_s,
            "requests": self.load.requests,
            "final": {"mode": self.mode, "concurrency": self.concurrency, "rate": self.rate},
        }
