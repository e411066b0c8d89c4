"""A worker process: threads as virtual users drive the target; a tick of stats ships every 250 ms.

Everything on the request path is kept to a few C-level calls (a clock read, a
slot from a `SimpleQueue`, one `deque.append` of a tuple) so the harness costs
microseconds; all aggregation happens once per tick on the batch.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import queue
import signal
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlstress_tui.errors import UsageError
from mlstress_tui.load.pool import SlotPool
from mlstress_tui.load.schedule import ArrivalSchedule
from mlstress_tui.results.interval_stats import CLOSED, OPEN, IntervalStats
from mlstress_tui.load.targets import RequestTimeout, TargetSpec
from mlstress_tui.load.users import UserSampler, UserSource
from mlstress_tui.pipeline.feature_query import MissingUser

# An open-loop request that starts later than this after its due time counts as a late start.
LATE_START_NS = 1_000_000
_POLL_S = 0.05
HICCUP_PERIOD_S = 0.005


@dataclass(frozen=True)
class WorkerPlan:
    """This worker's share of the load."""

    mode: str
    concurrency: int
    rate: float
    pool_size: int | None  # None: one slot per virtual user
    level_id: int = 0  # the commanded level this plan carries out; ticks are stamped with it


@dataclass(frozen=True)
class WorkerConfig:
    worker_id: int
    target: TargetSpec
    users: UserSource
    timeout_s: float
    tick_s: float
    requests_quota: int | None  # the run's --requests, shared by all workers through `tickets`
    arrivals: str = "uniform"
    scatter_per_tick: int = 200


class _VirtualUser:
    __slots__ = ("running", "thread")

    def __init__(self) -> None:
        self.running = True
        self.thread: threading.Thread | None = None


def _error_kind(error: BaseException) -> str:
    if isinstance(error, RequestTimeout):
        return "timeout"
    if isinstance(error, MissingUser):
        return "missing_user"
    return type(error).__name__


class Worker:
    """One process's virtual users, pool and stats."""

    def __init__(self, config: WorkerConfig, plan: WorkerPlan, stats_queue: Any, tickets: Any = None) -> None:
        self.config = config
        self.plan = plan
        self.stats_queue = stats_queue
        self.target = config.target.build()
        self.sampler = UserSampler.from_source(config.users)
        self.timeout_ns = int(config.timeout_s * 1e9)
        self.pool = SlotPool()
        self.connections: list[Any] = []
        self.surplus_slots = 0
        self.pool_lock = threading.Lock()
        # (latency_ns, service_ns, pool_wait_ns, event_count, error kind or None)
        self.records: deque[tuple] = deque()
        self.failures: deque[tuple[str, str]] = deque(maxlen=256)
        self.hiccups: deque[int] = deque()
        self.vus: dict[str, list[_VirtualUser]] = {CLOSED: [], OPEN: []}
        self.vu_serial = itertools.count()
        self.paused = False
        self.level_changed = False
        self.resumed = threading.Event()
        self.resumed.set()
        self.tickets = tickets
        self.ticket_lock = threading.Lock()
        self.block = 0
        self.quota_spent = threading.Event()
        self.stopping = threading.Event()
        self.schedule: ArrivalSchedule | None = None
        self.start_ns = 0
        self.rng = np.random.default_rng([config.users.seed, config.worker_id, 7])

    # -- pool -------------------------------------------------------------

    def _resize_pool(self, slots: int) -> None:
        with self.pool_lock:
            have = len(self.connections) - self.surplus_slots
            while have < slots:
                if self.surplus_slots:
                    self.surplus_slots -= 1
                else:
                    connection = self.target.connect()
                    self.connections.append(connection)
                    self.pool.put(connection)
                have += 1
            # Slots in use cannot be taken back: the surplus is closed as it returns.
            self.surplus_slots += max(have - slots, 0)

    def _release(self, connection: Any) -> None:
        if self.surplus_slots:
            with self.pool_lock:
                if self.surplus_slots:
                    self.surplus_slots -= 1
                    self.connections.remove(connection)
                    self.target.close(connection)
                    return
        self.pool.put(connection)

    # -- virtual users ----------------------------------------------------

    def _out_of_quota(self) -> bool:
        """Take a ticket for one request; True once `--requests` are all spoken for."""
        if self.tickets is None:
            return False
        with self.ticket_lock:
            if not self.block:
                self.block = self._claim_block()
                if not self.block:
                    self.quota_spent.set()
                    return True
            self.block -= 1
            return False

    def _claim_block(self) -> int:
        # Tickets come from a counter shared by all workers, a block at a time so the
        # cross-process lock is rare; blocks shrink to one near the end, so the total is exact.
        with self.tickets.get_lock():
            remaining = self.config.requests_quota - self.tickets.value
            take = max(min(remaining // 8, 256), min(remaining, 1))
            self.tickets.value += take
        return take

    def _return_unused_tickets(self) -> None:
        """A worker left with no virtual users hands its tickets back to the others."""
        with self.ticket_lock:
            if self.block and not any(vu.thread and vu.thread.is_alive() for group in self.vus.values() for vu in group):
                with self.tickets.get_lock():
                    self.tickets.value -= self.block
                self.block = 0

    def _tickets_exhausted(self) -> bool:
        if self.tickets is None:
            return False
        self._return_unused_tickets()
        with self.tickets.get_lock():
            return self.tickets.value >= self.config.requests_quota and not self.block

    def _send(self, user_id: str, event_count: int, started: int, deadline_ns: int | None) -> None:
        """One request through the pool, recorded from `started` (closed: now; open: its due time).

        `deadline_ns` None means `--timeout` counts from the actual send (the open
        loop: a request queued behind the schedule is late, not timed out).
        """
        clock = time.perf_counter_ns
        try:
            connection = self.pool.get(timeout=self.config.timeout_s)
        except queue.Empty:
            waited = clock() - started
            self.records.append((waited, 0, waited, event_count, "pool_timeout"))
            return
        sent = clock()
        kind = None
        try:
            self.target.request(connection, user_id, deadline_ns or sent + self.timeout_ns)
        except Exception as error:
            kind = _error_kind(error)
            self.failures.append((kind, str(error)[:200]))
        finally:
            self._release(connection)
        done = clock()
        self.records.append((done - started, done - sent, sent - started, event_count, kind))

    def _closed_user(self, vu: _VirtualUser, users: Any) -> None:
        """Closed loop: send the next request when the last returns."""
        clock, send, timeout_ns = time.perf_counter_ns, self._send, self.timeout_ns
        while vu.running:
            if self.paused:
                self.resumed.wait(_POLL_S)
                continue
            if self._out_of_quota():
                return
            user_id, event_count = next(users)
            started = clock()
            send(user_id, event_count, started, started + timeout_ns)

    def _open_user(self, vu: _VirtualUser, users: Any) -> None:
        """Open loop: take the next due request; latency counts from when it was due."""
        clock, send, schedule = time.perf_counter_ns, self._send, self.schedule
        while vu.running:
            if self.paused:
                self.resumed.wait(_POLL_S)
                continue
            if self._out_of_quota():
                return
            index = schedule.claim()
            due = schedule.due_ns(index)
            # Sleep in short slices so a rate change, pause or stop takes effect at once.
            while vu.running and (wait := due - clock()) > 0:
                time.sleep(min(wait / 1e9, _POLL_S))
                due = schedule.due_ns(index)
            if not vu.running:
                return
            user_id, event_count = next(users)
            send(user_id, event_count, int(due), None)

    def _set_users(self, mode: str, count: int) -> None:
        group = self.vus[mode]
        while len(group) > count:
            group.pop().running = False
        loop = self._closed_user if mode == CLOSED else self._open_user
        while len(group) < count:
            vu = _VirtualUser()
            users = self.sampler.stream(self.config.worker_id, next(self.vu_serial))
            vu.thread = threading.Thread(target=loop, args=(vu, users), daemon=True, name=f"vu-{mode}")
            group.append(vu)
            vu.thread.start()

    def apply(self, plan: WorkerPlan) -> None:
        """Reconcile threads, pool and schedule with a new plan."""
        self.plan = plan
        # The tick this change lands in ran partly at the old level: it belongs to neither.
        self.level_changed = True
        now = time.perf_counter_ns()
        if plan.mode == CLOSED:
            self._resize_pool(plan.pool_size if plan.pool_size is not None else plan.concurrency)
            self._set_users(OPEN, 0)
            self._set_users(CLOSED, plan.concurrency)
            return
        executors = plan.pool_size if plan.pool_size is not None else plan.concurrency
        self._resize_pool(executors)
        if self.schedule is None:
            self.schedule = ArrivalSchedule(plan.rate, max(now, self.start_ns), arrivals=self.config.arrivals,
                                            seed=[self.config.users.seed, self.config.worker_id, 11])
        else:
            self.schedule.set_rate(plan.rate, now)
        self._set_users(CLOSED, 0)
        self._set_users(OPEN, executors if plan.rate > 0 else 0)

    def pause(self) -> None:
        self.paused = True
        self.resumed.clear()
        if self.schedule is not None:
            self.schedule.pause(time.perf_counter_ns())

    def resume(self) -> None:
        if self.schedule is not None:
            self.schedule.resume(self.plan.rate, time.perf_counter_ns())
        self.paused = False
        self.resumed.set()

    def stop(self) -> None:
        self.stopping.set()
        for group in self.vus.values():
            for vu in group:
                vu.running = False
        self.resumed.set()

    # -- stats ------------------------------------------------------------

    def drain(self, index: int, t_start: float, t_end: float, cpu: float) -> IntervalStats:
        """Fold the records gathered since the last tick into one IntervalStats."""
        plan = self.plan
        tick = IntervalStats(index=index, t_start=t_start, t_end=t_end, mode=plan.mode,
                             concurrency=plan.concurrency if plan.mode == CLOSED else len(self.vus[OPEN]),
                             rate=plan.rate if plan.mode == OPEN else None, worker_cpu=cpu,
                             paused=self.paused and not self.records,
                             level_id=None if self.level_changed else plan.level_id)
        self.level_changed = False
        records = self.records
        batch = [records.popleft() for _ in range(len(records))]
        if batch:
            latency, service, wait, event_count, kinds = zip(*batch)
            tick.requests = len(batch)
            errors = Counter(kind for kind in kinds if kind is not None)
            tick.ok = tick.requests - sum(errors.values())
            tick.errors_by_kind = dict(errors)
            latency_ns = np.fromiter(latency, dtype=np.int64, count=len(batch))
            wait_ns = np.fromiter(wait, dtype=np.int64, count=len(batch))
            tick.latency.record_many(latency_ns)
            tick.service.record_many(np.fromiter(service, dtype=np.int64, count=len(batch)))
            tick.pool_wait.record_many(wait_ns)
            if plan.mode == OPEN:
                tick.late_starts = int(np.count_nonzero(wait_ns > LATE_START_NS))
            sample = self.rng.choice(len(batch), size=min(len(batch), self.config.scatter_per_tick), replace=False)
            counts = np.fromiter(event_count, dtype=np.float64, count=len(batch))
            tick.scatter = np.column_stack([counts[sample], latency_ns[sample] / 1e6])
        hiccups = self.hiccups
        tick.hiccup.record_many([hiccups.popleft() for _ in range(len(hiccups))])
        failures = self.failures
        for _ in range(len(failures)):
            kind, message = failures.popleft()
            tick.last_error[kind] = message
        return tick

    def _measure_hiccups(self) -> None:
        """Sleep a fixed period and record how late each wake-up is: the stall any request here would see."""
        clock, period_ns, record = time.perf_counter_ns, int(HICCUP_PERIOD_S * 1e9), self.hiccups.append
        while not self.stopping.is_set():
            started = clock()
            time.sleep(HICCUP_PERIOD_S)
            record(max(clock() - started - period_ns, 0))

    def run(self, control: Any) -> None:
        """Serve control messages on a thread and ship ticks from this one until stopped."""
        threading.Thread(target=self._listen, args=(control,), daemon=True, name="control").start()
        threading.Thread(target=self._measure_hiccups, daemon=True, name="hiccup").start()
        tick_ns = int(self.config.tick_s * 1e9)
        self.apply(self.plan)
        self.level_changed = False
        index = 0
        cpu_before = time.process_time()
        while True:
            boundary = self.start_ns + (index + 1) * tick_ns
            while not self.stopping.is_set() and not self.quota_spent.is_set():
                remaining = boundary - time.perf_counter_ns()
                if remaining <= 0:
                    break
                self.stopping.wait(min(remaining / 1e9, _POLL_S))
            finishing = self.stopping.is_set() or self.quota_spent.is_set() or self._tickets_exhausted()
            if finishing:
                self.stop()
                self._join_users()
                boundary = time.perf_counter_ns()
            cpu_now = time.process_time()
            wall = max((boundary - max(self.start_ns + index * tick_ns, self.start_ns)) / 1e9, 1e-9)
            tick = self.drain(index, index * tick_ns / 1e9, (boundary - self.start_ns) / 1e9,
                              min((cpu_now - cpu_before) / wall, 1.0))
            cpu_before = cpu_now
            self.stats_queue.put(("tick", self.config.worker_id, tick))
            if finishing:
                return
            index += 1

    def _join_users(self) -> None:
        deadline = time.monotonic() + self.config.timeout_s + 1.0
        for group in self.vus.values():
            for vu in group:
                if vu.thread is not None:
                    vu.thread.join(max(deadline - time.monotonic(), 0.0))
        for thread in threading.enumerate():
            if thread.name.startswith("vu-") and thread.is_alive():
                thread.join(max(deadline - time.monotonic(), 0.0))

    def _listen(self, control: Any) -> None:
        while True:
            try:
                message = control.recv()
            except (EOFError, OSError):
                # The engine's process is gone (a lost SSH session): stop, never linger.
                self.stop()
                return
            command = message[0]
            if command == "plan":
                self.apply(message[1])
            elif command == "pause":
                self.pause()
            elif command == "resume":
                self.resume()
            elif command == "stop":
                self.stop()
                return


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when the engine's process dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def worker_main(config: WorkerConfig, plan: WorkerPlan, control: Any, stats_queue: Any, tickets: Any) -> None:
    """Entry point of a worker process."""
    _die_with_parent()
    # Ctrl-C reaches the whole process group; the engine decides how to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(143))
    try:
        worker = Worker(config, plan, stats_queue, tickets)
    except UsageError as error:
        stats_queue.put(("failed", config.worker_id, str(error)))
        return
    except Exception as error:  # setup failures reach the user as one line, not a traceback
        stats_queue.put(("failed", config.worker_id, f"{type(error).__name__}: {error}"))
        return
    stats_queue.put(("ready", config.worker_id, None))
    message = control.recv()
    if message[0] != "start":
        return
    worker.start_ns = message[1]
    try:
        worker.run(control)
    finally:
        for connection in worker.connections:
            try:
                worker.target.close(connection)
            except Exception:
                pass
        stats_queue.put(("exit", config.worker_id, None))
