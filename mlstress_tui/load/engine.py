"""The load engine: worker processes driven from one control API, their stats merged into ticks.

The engine publishes ticks and decides nothing: a run session (`mlstress_tui.session`)
`start()`s it, turns its knobs (from a key press or the ramp controller alike),
`poll()`s merged ticks on its own clock and hands them to its consumers, then
`finish()`es it. The engine never blocks a caller except in `start()` and `finish()`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from mlstress_tui.errors import UsageError
from mlstress_tui.load.backends import WorkerBackend, backend_for
from mlstress_tui.load.limits import DEFAULT_OPEN_POOL, MAX_CONCURRENCY, MAX_RATE
from mlstress_tui.load.schedule import ARRIVALS
from mlstress_tui.load.targets import Target
from mlstress_tui.load.user_strata import Stratum, build_strata
from mlstress_tui.load.users import USER_MIXES, UserSampler, UserSource
from mlstress_tui.load.worker import WorkerConfig, WorkerPlan
from mlstress_tui.results.interval_stats import CLOSED, OPEN, IntervalStats
from mlstress_tui.results.node_figures import NodeFigures

log = logging.getLogger(__name__)

DEFAULT_STARTUP_TIMEOUT_S = 60.0
WORKER_DEATH_POLICIES = ("replace", "stop")
NODE_LOSS_POLICIES = ("continue", "stop")
# A node's clock further than this from the front end's is a warning.
CLOCK_WARN_MS = 1.0
# A worker that exits with status 0 but never said goodbye is given this long for its message to arrive.
_SILENT_EXIT_GRACE_S = 0.5
# A worker slot whose process dies this often in a row, never delivering a tick in between, is not refilled
# again: a replacement would die the same way (a memory limit, a target that crashes at once).
MAX_DEATHS_PER_SLOT = 3


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
    requests_per_group: int | None = None  # stratified/edge mixes: this many requests for each group of users
    workers: int | None = None  # None: one process per core
    arrivals: str = "uniform"  # open loop: "uniform" (wrk2-style) or "poisson" (bursty, seeded)
    replace_stuck: bool = True  # a user stuck in the target past its deadline is replaced (the load holds)
    on_worker_death: str = "replace"  # a worker process that dies is replaced, or the run stops
    startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S  # for the workers to open the target (import a model)
    ray: str | None = None  # a Ray cluster to run the workers on (auto, local, ray://host:port); None: this machine
    on_node_loss: str = "continue"  # Ray: a lost actor's share goes to the rest, or the run stops
    tick_s: float = 0.25

    def validate(self) -> None:
        if self.mode not in (CLOSED, OPEN):
            raise UsageError(f"unknown load mode {self.mode!r}: use closed (--concurrency) or open (--rate)")
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise UsageError(f"--concurrency must be 1 to {MAX_CONCURRENCY}, got {self.concurrency}")
        if self.mode == OPEN and (self.rate is None or not 0 < self.rate <= MAX_RATE):
            raise UsageError(f"--rate must be a positive number of requests/s up to {MAX_RATE:,.0f}, got {self.rate}")
        if self.pool_size is not None and self.pool_size < 1:
            raise UsageError(f"--pool-size must be at least 1, got {self.pool_size}")
        if self.timeout_s <= 0:
            raise UsageError(f"--timeout must be positive seconds, got {self.timeout_s}")
        if self.startup_timeout_s <= 0:
            raise UsageError(f"--startup-timeout must be positive seconds, got {self.startup_timeout_s}")
        if self.duration_s is not None and self.duration_s <= 0:
            raise UsageError(f"--duration must be positive seconds, got {self.duration_s}")
        if self.requests is not None and self.requests < 1:
            raise UsageError(f"--requests must be at least 1, got {self.requests}")
        if self.requests_per_group is not None and self.user_mix not in ("stratified", "edge"):
            raise UsageError("requests per group need the stratified or edge user mix")
        if self.user_mix not in USER_MIXES:
            raise UsageError(f"unknown --user-mix {self.user_mix!r}: use one of {', '.join(USER_MIXES)}")
        if self.workers is not None and self.workers < 1:
            raise UsageError(f"--workers must be at least 1, got {self.workers}")
        if self.on_worker_death not in WORKER_DEATH_POLICIES:
            raise UsageError(f"unknown --on-worker-death {self.on_worker_death!r}: use replace or stop")
        if self.on_node_loss not in NODE_LOSS_POLICIES:
            raise UsageError(f"unknown --on-node-loss {self.on_node_loss!r}: use continue or stop")
        if self.arrivals not in ARRIVALS:
            raise UsageError(f"unknown --arrivals {self.arrivals!r}: use one of {', '.join(ARRIVALS)}")


def split_evenly(total: int, parts: int) -> list[int]:
    """`total` as `parts` integers differing by at most one, larger first."""
    return [total // parts + (1 if index < total % parts else 0) for index in range(parts)]


class LoadEngine:
    """Drives a target with worker processes and collects their stats."""

    def __init__(self, target: Target, load: LoadSpec, *, run_dir: Path,
                 database: dict | None = None, users_db: Path | None = None,
                 backend: WorkerBackend | None = None) -> None:
        load.validate()
        self.target = target
        self.load = load
        self.run_dir = Path(run_dir)
        self.database = database or {}
        where = target.users()
        self.users = UserSource(db_path=where.db_path or (users_db if not where.dsn else None), dsn=where.dsn,
                                mix=load.user_mix, seed=load.seed)
        # The population read once here too (it checks the user source before any worker starts): its
        # strata of event count are what every worker counts requests by, and what the heavy-user analysis weighs.
        sampler = UserSampler.from_source(self.users)
        self.population_event_counts = sampler.population_counts
        self.strata: list[Stratum] = build_strata(sampler.population_counts) if sampler.population_counts.any() else []
        self.edge_class_sizes = sampler.edge_class_sizes
        self.mode = load.mode
        self.concurrency = load.concurrency
        self.rate: float | None = load.rate if load.mode == OPEN else None
        self._last_rate = load.rate or float(load.concurrency * 10)
        self.pool_size = load.pool_size
        self.duration_s = load.duration_s
        if load.user_mix == "stratified" and not self.strata:
            raise UsageError("the stratified user mix needs users with events: point --db or --users-db at a "
                             "database made by 'generate'")
        # Stratified and edge mixes take their quota per group, so every group gets the same number of requests.
        groups = len(self.strata) if load.user_mix == "stratified" else sum(map(bool, self.edge_class_sizes.values()))
        self.requests_limit = load.requests or (load.requests_per_group * groups if load.requests_per_group else None)
        self.state = "starting"
        # Each control change opens a level; workers stamp their ticks with the level they run at.
        self.level_id = 0
        self.levels: dict[int, tuple[str, int, float | None]] = {0: (self.mode, self.concurrency, self.rate)}
        self.backend = backend or backend_for(load.ray)
        self.backend.connect()
        workers = load.workers or self.backend.default_workers()
        if load.pool_size is not None:
            workers = min(workers, load.pool_size)
        self.worker_count = max(workers, 1)
        # The slots sharing the load; a lost node's slots leave it and the rest take their share.
        self._active: list[int] = list(range(self.worker_count))
        self._ticks: deque[IntervalStats] = deque(maxlen=4096)
        self._events: list[dict] = []
        self._lock = threading.Lock()
        self._collector: threading.Thread | None = None
        self._start_ns = 0
        self._start_wall_ns = 0
        self.started_at = datetime.now(timezone.utc)
        self._end_ns: int | None = None
        self._stop_sent = False
        self._finish_lock = threading.Lock()
        self._finished = False
        self._live: set[int] = set()
        self._tickets = None
        # Faults of the tool itself, said in summary.json: workers that died, requests lost with them.
        self.worker_deaths: list[dict] = []
        self.requests_lost = 0
        self._last_inflight: dict[int, int] = {}
        self._last_users: dict[int, int] = {}
        self._gone_since: dict[int, float] = {}
        self._missing: set[int] = set()  # worker slots being refilled: the load is below the commanded one
        self._crash_reasons: dict[int, str] = {}  # what a worker said as its loop failed, before it exited
        self._deaths_by_slot: dict[int, int] = {}
        self._node_figures: dict[str, NodeFigures] = {}
        self._requests_by_slot: dict[int, int] = {}
        # Levels some slot was lost during: their ticks lack that slot's share, so they count as no level.
        self._partial_levels: set[int] = set()
        # Control changes come from the UI or the ramp and, on a node loss, from the collector: one at a time.
        self._control_lock = threading.RLock()

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

    def _plans(self) -> dict[int, WorkerPlan]:
        """Each active slot's share of the commanded level."""
        slots = self._active or list(range(self.worker_count))
        parts = len(slots)
        if self.mode == CLOSED:
            concurrency = split_evenly(self.concurrency, parts)
            pools = split_evenly(self.pool_size, parts) if self.pool_size is not None else [None] * parts
            return {slot: WorkerPlan(CLOSED, concurrency[i], 0.0, pools[i], self.level_id)
                    for i, slot in enumerate(slots)}
        pools = split_evenly(self.pool_size or DEFAULT_OPEN_POOL, parts)
        rate = float(self.rate or 0.0)
        return {slot: WorkerPlan(OPEN, pools[i], rate / parts, pools[i], self.level_id) for i, slot in enumerate(slots)}

    def start(self, on_waiting: Callable[[float, int, int], None] | None = None) -> None:
        """Spawn the workers, wait until each is ready, then start them together.

        `on_waiting(seconds, ready, workers)` is called about once a second while the
        workers open the target (a model's import can take a while), so a front end can say so.
        """
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._tickets = self.backend.tickets(self.worker_count) if self.requests_limit else None
        for worker_id, plan in self._plans().items():
            self._spawn(worker_id, plan)
        self._await_ready(on_waiting)
        try:
            self.backend.before_start()
        except UsageError:
            self._kill_workers()
            raise
        # Every slot is ready (the barrier); they start together at one instant a little ahead.
        lead_ns = self.backend.start_lead_ns
        self._start_ns, self._start_wall_ns = time.perf_counter_ns() + lead_ns, time.time_ns() + lead_ns
        self.started_at = datetime.now(timezone.utc)
        self._live = set(range(self.worker_count))
        for worker_id in self._active:
            self.backend.start(worker_id, self._start_ns, self._start_wall_ns)
        for node, offset_ms in self.backend.clock_offsets_ms().items():
            # Beyond a millisecond it is said as a warning: start and plan instants are shifted by it, but
            # per-node timestamps are the node's own.
            self.note("clock_skew" if abs(offset_ms) > CLOCK_WARN_MS else "clock_offset", node=node,
                      offset_ms=round(offset_ms, 3))
        self.state = "running"
        self._collector = threading.Thread(target=self._collect, daemon=True, name="collector")
        self._collector.start()

    def _spawn(self, worker_id: int, plan: WorkerPlan) -> None:
        config = WorkerConfig(worker_id=worker_id, target=self.target, users=self.users,
                              timeout_s=self.load.timeout_s, tick_s=self.load.tick_s,
                              requests_quota=self.requests_limit, arrivals=self.load.arrivals,
                              duration_s=self.duration_s,
                              workers=self.worker_count, replace_stuck=self.load.replace_stuck,
                              output_path=str(self.run_dir / "target.log"),
                              output_cap_bytes=8 * 1024 * 1024 // self.worker_count,
                              strata_edges=tuple(stratum.min_events for stratum in self.strata))
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
            if said is None:
                if on_waiting is not None:
                    on_waiting(time.monotonic() - began, len(ready), self.worker_count)
                continue
            kind, worker_id, detail = said
            if kind == "failed":
                self._kill_workers()
                raise UsageError(detail)
            ready.add(worker_id)

    def _kill_workers(self) -> None:
        self.backend.kill_all()
        self.backend.close()
        self.state = "finished"

    # -- control ----------------------------------------------------------

    def _broadcast(self, *message: object) -> None:
        for worker_id in range(self.worker_count):
            self.backend.send(worker_id, message)

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
        self.backend.send_plans(plans)

    def set_concurrency(self, concurrency: int) -> None:
        with self._control_lock:
            concurrency = min(max(1, int(concurrency)), MAX_CONCURRENCY)
            if self.mode != CLOSED or concurrency == self.concurrency or self._stop_sent:
                return
            self.note("concurrency", **{"from": self.concurrency, "to": concurrency})
            self.concurrency = concurrency
            self._open_level()

    def set_rate(self, rate: float) -> None:
        with self._control_lock:
            rate = min(max(0.1, float(rate)), MAX_RATE)
            if self.mode != OPEN or rate == self.rate or self._stop_sent:
                return
            self.note("rate", **{"from": self.rate, "to": rate})
            self.rate = self._last_rate = rate
            self._open_level()

    def set_mode(self, mode: str, rate: float | None = None) -> None:
        """Switch between closed and open loop; the open loop runs at `rate` (default: its last rate)."""
        with self._control_lock:
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
        if self._end_ns is None:
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
            kind, worker_id, payload = self.backend.receive(0.1) or (None, None, None)
            if kind == "tick" and worker_id in self._live:
                merged, reported = pending.setdefault(payload.index, (IntervalStats(
                    index=payload.index, t_start=payload.t_start, t_end=payload.t_end, mode=payload.mode,
                    rate=None, paused=payload.paused, level_id=payload.level_id), set()))
                merged.merge_worker(payload)
                merged.t_end = max(merged.t_end, payload.t_end)
                with self._lock:
                    self._node_figures.setdefault(self.backend.node_of(worker_id), NodeFigures()).add(payload)
                self._requests_by_slot[worker_id] = self._requests_by_slot.get(worker_id, 0) + payload.requests
                reported.add(worker_id)
                self._last_inflight[worker_id] = payload.inflight
                self._last_users[worker_id] = payload.users_running
                self._deaths_by_slot.pop(worker_id, None)  # it delivered: its next death starts a new count
                self._missing.discard(worker_id)
            elif kind == "exit":
                self._live.discard(worker_id)
            elif kind == "crashed":
                self._crash_reasons[worker_id] = str(payload)
            elif kind == "ready" and worker_id in self._missing:
                # A replacement worker: it joins the run's clock and tick grid where they stand.
                self.backend.start(worker_id, self._start_ns, self._start_wall_ns)
            elif kind == "failed" and worker_id in self._missing:
                self._missing.discard(worker_id)
                self._live.discard(worker_id)
                self.note("worker_replacement_failed", worker=worker_id, error=str(payload)[:200])
            self._check_deaths(pending)
            self._emit_complete(pending, final=not self._live)
            self._check_limits()
        self._emit_complete(pending, final=True)
        if self._end_ns is None:
            self._end_ns = time.perf_counter_ns()
        if self.state != "finished":
            self.state = "stopping"

    def _check_deaths(self, pending: dict) -> None:
        """A worker gone without saying so died: said at once, its in-flight requests counted as lost."""
        now = time.monotonic()
        for worker_id in sorted(self._live):
            gone = self.backend.exit_of(worker_id)
            if gone is None:
                continue
            exitcode = gone.code
            if worker_id in self._missing and self._stop_sent:
                self._live.discard(worker_id)  # a replacement told to stop before it started
                continue
            if exitcode == 0 and now - self._gone_since.setdefault(worker_id, now) < _SILENT_EXIT_GRACE_S:
                continue  # its goodbye may still be in the queue
            self._live.discard(worker_id)
            self._gone_since.pop(worker_id, None)
            lost = self._last_inflight.pop(worker_id, 0)
            self.requests_lost += lost
            how = gone.how
            if worker_id in self._crash_reasons:
                how += f", {self._crash_reasons.pop(worker_id)}"
            plan = self._plans().get(worker_id) or WorkerPlan(self.mode, 0, 0.0, None, self.level_id)
            running = self._last_users.pop(worker_id, None)
            if plan.mode == OPEN:
                carried = f"{plan.rate:g} req/s"
            elif running is not None and running != plan.concurrency:
                carried = f"{running} users (of {plan.concurrency} asked)"
            else:
                carried = f"{plan.concurrency} users"
            death = {"worker": worker_id, "how": how, "exitcode": exitcode, "carried": carried,
                     "inflight_lost": lost, "t": round(self.elapsed_s, 3)}
            self._return_tickets(worker_id, lost)
            self.worker_deaths.append(death)
            log.info("worker %d died (%s) carrying %s", worker_id, how, carried)  # said on screen via the note
            deaths = self._deaths_by_slot[worker_id] = self._deaths_by_slot.get(worker_id, 0) + 1
            if not self.backend.can_replace:
                self._lose_slot(worker_id, death, pending)
                continue
            replace = self.load.on_worker_death == "replace" and not self._stop_sent and deaths < MAX_DEATHS_PER_SLOT
            then = ("replaced" if replace else "run stopped" if deaths < MAX_DEATHS_PER_SLOT
                    else f"run stopped: it died {deaths} times, a replacement would die the same way")
            self.note("worker_died", **death, then=then)
            # Ticks it will never send are complete without it.
            for _, reported in pending.values():
                reported.discard(worker_id)
            if replace:
                self._spawn(worker_id, plan)
                self._missing.add(worker_id)
                self._live.add(worker_id)
            else:
                self.stop()

    def _return_tickets(self, worker_id: int, lost: int) -> None:
        """`--requests` stays exact: tickets a dead worker took and never reported go back to the others."""
        if self._tickets is None:
            return
        unused = self._tickets.held(worker_id) - self._requests_by_slot.get(worker_id, 0) - lost
        if unused > 0:
            self._tickets.give_back(unused, worker_id)

    def _lose_slot(self, worker_id: int, death: dict, pending: dict) -> None:
        """A slot that cannot be refilled (its node is gone): the rest take its share, or the run stops."""
        with self._control_lock:
            self._lose_slot_locked(worker_id, death, pending)

    def _lose_slot_locked(self, worker_id: int, death: dict, pending: dict) -> None:
        self._partial_levels.add(self.level_id)
        self._active = [slot for slot in self._active if slot != worker_id]
        death["node"] = self.backend.node_of(worker_id)
        keep_going = self.load.on_node_loss == "continue" and self._active and not self._stop_sent
        then = (f"its share went to the other {len(self._active)} worker(s)" if keep_going
                else "run stopped" if self._active else "run stopped: no worker left")
        self.note("worker_died", **death, then=then)
        for _, reported in pending.values():
            reported.discard(worker_id)
        if keep_going:
            self._open_level()
        else:
            self.stop()

    def _emit_complete(self, pending: dict, *, final: bool) -> None:
        for index in sorted(pending):
            merged, reported = pending[index]
            if not final and not (self._live - self._missing) <= reported:
                break
            del pending[index]
            if self._missing or len(reported) < len(self._active) or merged.level_id in self._partial_levels:
                merged.level_id = None  # part of the load was missing: not the commanded level
            # A tick reports the level commanded, never a sum of workers caught half-way through a change.
            commanded = self.levels.get(merged.level_id if merged.level_id is not None else self.level_id)
            if commanded is not None:
                merged.mode, merged.concurrency, merged.rate = commanded
            with self._lock:
                merged.events, self._events = self._events + merged.events, []
            self._ticks.append(merged)

    def _check_limits(self) -> None:
        if self._stop_sent or not self._start_ns:
            return
        if self.duration_s is not None and time.perf_counter_ns() - self._start_ns >= self.duration_s * 1e9:
            # The workers ended at that instant by their own clocks; the run's length is the duration asked for.
            self._end_ns = self._start_ns + int(self.duration_s * 1e9)
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
            for worker_id in range(self.worker_count):
                if not self.backend.join(worker_id, max(wait / 4, 0.5)):
                    # Still in a call after its deadline and the grace: what it had in flight is lost.
                    self.requests_lost += self._last_inflight.get(worker_id, 0)
                    log.warning("worker %d did not stop in time: ended", worker_id)
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
            "requests": self.requests_limit,
            "replace_stuck": self.load.replace_stuck,
            "on_worker_death": self.load.on_worker_death,
            **({} if self.backend.can_replace else {"on_node_loss": self.load.on_node_loss,
                                                    "backend": self.backend.describe()}),
            # The open loop's in-flight limit is its pool (executors); the closed loop's, its users.
            "in_flight_limit": (self.load.concurrency if self.load.mode == CLOSED
                                else self.load.pool_size or DEFAULT_OPEN_POOL),
            "final": {"mode": self.mode, "concurrency": self.concurrency if self.mode == CLOSED else None,
                      "rate": self.rate, "pool_size": self._final_pool(),
                      "in_flight_limit": self.concurrency if self.mode == CLOSED else self._final_pool()},
        }

    def node_report(self) -> list[dict] | None:
        """Per node (Ray runs): its actors, the load offered and achieved there, p99, verdict and liveness."""
        if self.backend.can_replace:
            return None  # one machine: the run's own figures are the node's
        plans = self._plans()
        offsets = self.backend.clock_offsets_ms()
        lost = {death["worker"]: death for death in self.worker_deaths}
        by_node: dict[str, list[int]] = {}
        for slot in range(self.worker_count):
            by_node.setdefault(self.backend.node_of(slot), []).append(slot)
        report = []
        for node, slots in sorted(by_node.items()):
            active = [slot for slot in slots if slot in self._active]
            with self._lock:
                figures = self._node_figures.get(node) or NodeFigures()
                p99 = figures.latency.percentile_ms(99)
            if self.mode == OPEN:
                offered = {"rate": round(sum(plans[slot].rate for slot in active if slot in plans), 3)}
            else:
                offered = {"concurrency": sum(plans[slot].concurrency for slot in active if slot in plans)}
            report.append({
                "node": node, "actors": len(slots), "actors_alive": len(active), **offered,
                "requests": figures.requests, "errors": figures.errors, "late_starts": figures.late_starts,
                "throughput_rps": round(figures.requests / max(self.elapsed_s, 1e-9), 2),
                "p99_ms": None if p99 is None else round(p99, 3),
                "harness_verdict": "lost" if not active else figures.verdict(),
                "clock_offset_ms": None if node not in offsets else round(offsets[node], 3),
                # Above 0 the load generator yielded the CPU to the rest of the box (Ray's default is 15).
                "niceness": max((getattr(self.backend, "niceness_of", lambda _: 0)(slot) or 0 for slot in slots),
                                default=0),
                "lost": [{"worker": slot, "carried": lost[slot]["carried"], "how": lost[slot]["how"]}
                         for slot in slots if slot in lost],
            })
        return report

    def _final_pool(self) -> int:
        return self.pool_size or (self.concurrency if self.mode == CLOSED else DEFAULT_OPEN_POOL)

    def faults(self) -> dict:
        """The tool's own faults, for summary.json: workers that died and the requests lost with them."""
        return {"worker_deaths": list(self.worker_deaths), "requests_lost": self.requests_lost}
