"""A worker process: threads as virtual users drive the target; a tick of stats ships every 250 ms.

Everything on the request path is kept to a few C-level calls (a clock read, a
slot from a `SimpleQueue`, a dict entry for the request in flight, one
`deque.append` of a tuple) so the harness costs microseconds; all aggregation
happens once per tick on the batch.

Every request has a deadline the harness keeps, not the target: the tick loop
looks at the requests in flight every 50 ms and records one past its deadline
as a `timeout` then, whether or not the call ever returns. A virtual user stuck
in such a call is replaced by a fresh one (bounded), so the commanded load holds.
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
from pathlib import Path
from typing import Any

import numpy as np
from setproctitle import setproctitle

from mlstress_tui.errors import UsageError
from mlstress_tui.load.schedule import ArrivalSchedule
from mlstress_tui.load.target_output import TargetOutput
from mlstress_tui.results.interval_stats import CLOSED, OPEN, IntervalStats, group_stats
from mlstress_tui.load.targets import Target
from mlstress_tui.load.users import UserSampler, UserSource

# An open-loop request that starts later than this after its due time counts as a late start.
LATE_START_NS = 1_000_000
_POLL_S = 0.05
HICCUP_PERIOD_S = 0.005
# A target that keeps its own deadline (SQLite's interrupt) gets this long to say so before the harness does.
DEADLINE_GRACE_NS = 20_000_000
# Stuck virtual users abandoned per worker before the tool says it cannot hold the load.
MAX_ABANDONED = 256
# The exit status of a worker whose own loop failed (EX_SOFTWARE); it says why on the stats queue first.
CRASH_STATUS = 70


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
    target: Target
    users: UserSource
    timeout_s: float
    tick_s: float
    requests_quota: int | None  # the run's --requests, shared by all workers through `tickets`
    arrivals: str = "uniform"
    workers: int = 1  # open loop: worker i takes every `workers`-th arrival of the run's schedule, offset i
    replace_stuck: bool = True
    output_path: str | None = None  # where the target's stdout/stderr go (target.log), None to leave them
    output_cap_bytes: int = 8 * 1024 * 1024
    scatter_per_tick: int = 200
    strata_edges: tuple[int, ...] = ()  # lower event-count edge of each stratum (empty: no strata)
    duration_s: float | None = None  # --duration: every worker ends at start + duration by its own clock


class _VirtualUser:
    __slots__ = ("running", "stuck", "thread")

    def __init__(self) -> None:
        self.running = True
        self.stuck = False  # inside a call past its deadline
        self.thread: threading.Thread | None = None


def _error_kind(error: BaseException) -> str:
    """A target's own errors name their kind (`error_kind`); anything else is its exception's name."""
    return getattr(error, "error_kind", None) or type(error).__name__


class Worker:
    """One process's virtual users, pool and stats."""

    def __init__(self, config: WorkerConfig, plan: WorkerPlan, stats_queue: Any, tickets: Any = None) -> None:
        self.config = config
        self.plan = plan
        self.stats_queue = stats_queue
        self.target = config.target.open(config.timeout_s)
        self.sampler = UserSampler.from_source(config.users)
        # Lower edges of the population's strata of event count: each tick counts every stratum exactly.
        self.strata_edges = np.array(config.strata_edges, dtype=np.int64) if config.strata_edges else None
        self.timeout_ns = int(config.timeout_s * 1e9)
        self.pool = self.target.make_pool()
        # (latency_ns, service_ns, pool_wait_ns, event_count, error kind or None, user group)
        self.records: deque[tuple] = deque()
        # Requests in flight by serial: whoever pops one first (its user, or the deadline) records it.
        self.inflight: dict[int, tuple] = {}
        self.serials = itertools.count()
        self.stuck: set[_VirtualUser] = set()
        self.abandoned = 0
        self.abandoned_users: set[_VirtualUser] = set()  # stuck, and replaced with their pool slot
        self.late_returns = 0
        self.unfinished = 0
        self.cannot_hold: str | None = None
        self.events: deque[dict] = deque()
        self.fault_lock = threading.Lock()
        self.pending_sends = 0  # requests between their ticket and their record (an open-loop one waits for its due time)
        self.unsent = 0
        self.unsent_wait: Any = None
        self.stopped_ns = 0
        self.output: Any = None  # the target's captured stdout/stderr (worker_main sets it)
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
        self.end_ns = 0  # a --duration run's end instant: nothing due from then on is sent
        self.rng = np.random.default_rng([config.users.seed, config.worker_id, 7])

    # -- pool -------------------------------------------------------------

    def _resize_pool(self, slots: int) -> None:
        self.pool.resize(slots)

    def _release(self, connection: Any) -> None:
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
        return self.tickets.claim(self.config.requests_quota, self.config.worker_id)

    def _return_unused_tickets(self) -> None:
        """A worker left with no virtual users hands its tickets back to the others."""
        with self.ticket_lock:
            if self.block and not any(vu.thread and vu.thread.is_alive() for group in self.vus.values() for vu in group):
                self.tickets.give_back(self.block, self.config.worker_id)
                self.block = 0

    def _quota_done(self) -> bool:
        """`--requests` all taken here and every one of them sent and answered (or timed out)."""
        return self.quota_spent.is_set() and not self.pending_sends and not self.inflight

    def _tickets_exhausted(self) -> bool:
        """All of `--requests` taken, and none of ours still waiting to be sent or answered."""
        if self.tickets is None:
            return False
        self._return_unused_tickets()
        taken = self.tickets.taken() >= self.config.requests_quota and not self.block
        return taken and not self.pending_sends and not self.inflight

    def _send(self, vu: _VirtualUser, user_id: str, event_count: int, group: int, started: int,
              deadline_ns: int | None) -> None:
        """One request through the pool, recorded from `started` (closed: now; open: its due time).

        `deadline_ns` None means `--timeout` counts from the actual send (the open
        loop: a request queued behind the schedule is late, not timed out).
        """
        clock = time.perf_counter_ns
        try:
            connection = self.pool.get(timeout=self.config.timeout_s)
        except queue.Empty:
            waited = clock() - started
            self.records.append((waited, 0, waited, event_count, "pool_timeout", group))
            return
        if not vu.running:
            self._release(connection)  # stopped or replaced while it waited for a slot: never sent
            return
        sent = clock()
        deadline = deadline_ns or sent + self.timeout_ns
        serial = next(self.serials)
        inflight = self.inflight
        inflight[serial] = (started, deadline, event_count, sent, connection, vu, group)
        kind = None
        try:
            self.target.request(connection, user_id, deadline)
        except BaseException as error:  # SystemExit or KeyboardInterrupt raised by target code is its error too
            kind = _error_kind(error)
            self.failures.append((kind, str(error)[:200] or type(error).__name__))
        done = clock()
        if inflight.pop(serial, None) is None:
            self._late_return(vu, connection)
            return
        self._release(connection)
        self.records.append((done - started, done - sent, sent - started, event_count, kind, group))

    def _late_return(self, vu: _VirtualUser, connection: Any) -> None:
        """A call that came back after its deadline was recorded: counted apart, never twice."""
        with self.fault_lock:
            self.late_returns += 1
            vu.stuck = False
            self.stuck.discard(vu)
            replaced = vu in self.abandoned_users
            self.abandoned_users.discard(vu)
        if not replaced:
            self._release(connection)
        else:
            # Its slot was refilled when it was abandoned: this connection goes, the pool keeps its size.
            self.pool.retire(connection)

    def expire(self, now: int, *, grace_ns: int = DEADLINE_GRACE_NS) -> None:
        """Record every request past its deadline as a timeout now, and replace the users stuck in them."""
        for serial, entry in self.inflight.copy().items():
            started, deadline, event_count, sent, connection, vu, group = entry
            if now <= deadline + grace_ns or self.inflight.pop(serial, None) is None:
                continue
            self.records.append((now - started, now - sent, sent - started, event_count, "timeout", group))
            self.failures.append(("timeout", f"no answer {(now - sent) / 1e9:.2f} s after the send: "
                                             "counted at the deadline, the call is still running"))
            with self.fault_lock:
                vu.stuck = True
                self.stuck.add(vu)
            if self.config.replace_stuck and vu.running and not self.stopping.is_set():
                self._abandon(vu, connection)

    def _abandon(self, vu: _VirtualUser, connection: Any) -> None:
        """Leave a stuck user in its call and put a fresh one (and a fresh connection) in its place."""
        if self.abandoned >= MAX_ABANDONED:
            if self.cannot_hold is None:
                self.cannot_hold = (f"{MAX_ABANDONED} users are stuck in the target past their deadline: "
                                    "the tool stopped replacing them, so the load applied is below the load asked for")
                self.events.append({"action": "cannot_hold_load", "reason": self.cannot_hold})
            return
        for mode, group in self.vus.items():
            if vu in group:
                break
        else:
            return
        vu.running = False
        self.abandoned += 1
        with self.fault_lock:
            self.abandoned_users.add(vu)
        self.pool.replace(connection)
        group[group.index(vu)] = self._start_user(mode)

    def _counted(self, delta: int) -> None:
        with self.ticket_lock:
            self.pending_sends += delta

    def _loop(self, vu: _VirtualUser, one_request: Any) -> None:
        """A virtual user's loop: pause, the `--requests` quota, then `one_request()` until it says stop."""
        counting = self.tickets is not None
        while vu.running:
            if self.paused:
                self.resumed.wait(_POLL_S)
                continue
            if not counting:
                if not one_request():
                    return
                continue
            # Pending from the ticket to the record: the worker does not end with a request half-sent.
            self._counted(+1)
            try:
                if self._out_of_quota() or not one_request():
                    return
            finally:
                self._counted(-1)

    def _closed_user(self, vu: _VirtualUser, users: Any) -> None:
        """Closed loop: send the next request when the last returns."""
        clock, send, timeout_ns = time.perf_counter_ns, self._send, self.timeout_ns

        def one_request() -> bool:
            user_id, event_count, group = next(users)
            started = clock()
            send(vu, user_id, event_count, group, started, started + timeout_ns)
            return True

        self._loop(vu, one_request)

    def _open_user(self, vu: _VirtualUser, users: Any) -> None:
        """Open loop: take the next due request; latency counts from when it was due."""
        clock, send, schedule = time.perf_counter_ns, self._send, self.schedule

        def one_request() -> bool:
            index = schedule.claim()
            due = schedule.due_ns(index)
            # Sleep in short slices so a rate change, pause or stop takes effect at once.
            while vu.running and (wait := due - clock()) > 0:
                time.sleep(min(wait / 1e9, _POLL_S))
                due = schedule.due_ns(index)
            if not vu.running or (self.end_ns and due >= self.end_ns):
                schedule.unclaim(index)
                return False
            user_id, event_count, group = next(users)
            send(vu, user_id, event_count, group, int(due), None)
            return True

        self._loop(vu, one_request)

    def _user_main(self, vu: _VirtualUser, mode: str, users: Any) -> None:
        """A virtual user's thread: its loop, and a replacement if the loop itself dies."""
        loop = self._closed_user if mode == CLOSED else self._open_user
        try:
            loop(vu, users)
        except BaseException as error:  # a bug of ours or an escaped target error: said, and the load held
            self.events.append({"action": "user_died", "error": f"{type(error).__name__}: {error}"[:200]})
            group = self.vus[mode]
            if vu.running and vu in group and not self.stopping.is_set():
                vu.running = False
                group[group.index(vu)] = self._start_user(mode)

    def _start_user(self, mode: str) -> _VirtualUser:
        vu = _VirtualUser()
        users = self.sampler.stream(self.config.worker_id, next(self.vu_serial))
        vu.thread = threading.Thread(target=self._user_main, args=(vu, mode, users), daemon=True, name=f"vu-{mode}")
        vu.thread.start()
        return vu

    def _set_users(self, mode: str, count: int) -> None:
        group = self.vus[mode]
        while len(group) > count:
            group.pop().running = False
        while len(group) < count:
            try:
                group.append(self._start_user(mode))
            except RuntimeError as error:  # "can't start new thread": a memory or pids limit
                reason = (f"could start only {len(group)} of {count} virtual users in worker "
                          f"{self.config.worker_id}: {error}")
                if self.cannot_hold != reason:
                    self.cannot_hold = reason
                    self.events.append({"action": "cannot_hold_load", "reason": reason})
                return

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
            # Uniform arrivals interleave across workers: this one takes every W-th of the run's schedule.
            self.schedule = ArrivalSchedule(plan.rate, max(now, self.start_ns), arrivals=self.config.arrivals,
                                            seed=[self.config.users.seed, self.config.worker_id, 11],
                                            phase=self.config.worker_id / self.config.workers)
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

    def stop(self, at_ns: int | None = None) -> None:
        if not self.stopping.is_set():
            self.stopped_ns = at_ns or time.perf_counter_ns()
            if self.end_ns:
                self.stopped_ns = min(self.stopped_ns, self.end_ns)  # a stop that came late ends the run at its end
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
            latency, service, wait, event_count, kinds, groups = zip(*batch)
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
            counts = np.fromiter(event_count, dtype=np.int64, count=len(batch))
            tick.scatter = np.column_stack([counts[sample].astype(np.float64), latency_ns[sample] / 1e6])
            failed = kinds if errors else None
            if self.strata_edges is not None:
                by_stratum = np.searchsorted(self.strata_edges, counts, side="right") - 1
                tick.strata = group_stats(by_stratum, latency_ns, counts, failed)
            if self.sampler.mix == "edge":
                tick.edge_classes = group_stats(np.fromiter(groups, dtype=np.int64, count=len(batch)),
                                                latency_ns, counts, failed)
        hiccups = self.hiccups
        tick.hiccup.record_many([hiccups.popleft() for _ in range(len(hiccups))])
        failures = self.failures
        for _ in range(len(failures)):
            kind, message = failures.popleft()
            tick.last_error[kind] = message
        with self.fault_lock:
            tick.stuck_users = len(self.stuck)
            tick.late_returns, self.late_returns = self.late_returns, 0
        tick.inflight = len(self.inflight)
        tick.unfinished, self.unfinished = self.unfinished, 0
        if self.unsent:
            tick.unsent, self.unsent = self.unsent, 0
            tick.unsent_wait, self.unsent_wait = self.unsent_wait, None
        tick.users_running = sum(1 for group in self.vus.values() for vu in group if vu.running)
        tick.output_lines = self.output.take_lines() if self.output is not None else 0
        events = self.events
        tick.events = [dict(events.popleft(), worker=self.config.worker_id) for _ in range(len(events))]
        return tick

    def _settle_inflight(self) -> None:
        """At the end: wait for calls in flight up to their deadlines, then count what never came back."""
        clock = time.perf_counter_ns
        while self.inflight:
            now = clock()
            self.expire(now, grace_ns=0)
            latest = max((entry[1] for entry in self.inflight.copy().values()), default=now)
            if latest > now:
                time.sleep(min((latest - now) / 1e9, _POLL_S))
        if self.schedule is not None and self.plan.mode == OPEN and not self.paused:
            # The open loop's backlog: due, never sent; each waited at least until now.
            # A --duration run holds the arrivals due in [start, end): one due exactly at the end is the next run's.
            until = self.stopped_ns - 1 if self.end_ns and self.stopped_ns == self.end_ns else self.stopped_ns
            self.unsent, self.unsent_wait = self.schedule.owed_at(until)

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
        # A replacement worker joins the run's tick grid where it stands.
        index = max(int((time.perf_counter_ns() - self.start_ns) // tick_ns), 0)
        cpu_before = time.process_time()
        while True:
            boundary = self.start_ns + (index + 1) * tick_ns
            if self.end_ns:
                boundary = min(boundary, self.end_ns)
            while not self.stopping.is_set() and not self._quota_done():
                now = time.perf_counter_ns()
                self.expire(now)
                if self.end_ns and now >= self.end_ns:
                    self.stop(at_ns=self.end_ns)  # the run's end, on every worker at the same instant
                    break
                if boundary - now <= 0:
                    break
                self.stopping.wait(min((boundary - now) / 1e9, _POLL_S))
            finishing = self.stopping.is_set() or self._quota_done() or self._tickets_exhausted()
            if finishing:
                self.stop()
                self._settle_inflight()
                boundary = time.perf_counter_ns()
            cpu_now = time.process_time()
            wall = max((boundary - max(self.start_ns + index * tick_ns, self.start_ns)) / 1e9, 1e-9)
            # A sliver of a tick (the end of a short run) says nothing about how busy the worker was.
            busy = min((cpu_now - cpu_before) / wall, 1.0) if wall >= self.config.tick_s / 2 else 0.0
            tick = self.drain(index, index * tick_ns / 1e9, (boundary - self.start_ns) / 1e9, busy)
            cpu_before = cpu_now
            self.stats_queue.put(("tick", self.config.worker_id, tick))
            if finishing:
                return
            index += 1

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
                if len(message) > 2:
                    # A plan with an effective instant (this process's clock): every node bends its
                    # share of the schedule at the same moment, whenever the message arrived.
                    wait_ns = message[2] - time.perf_counter_ns()
                    if wait_ns > 0:
                        time.sleep(wait_ns / 1e9)
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
    setproctitle(f"mlstress-tui worker {config.worker_id}: {config.target.label}")
    # Ctrl-C reaches the whole process group; the engine decides how to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(143))
    # Before the target is imported: whatever it prints from then on goes to target.log.
    output = (TargetOutput(Path(config.output_path), config.output_cap_bytes, f"worker {config.worker_id}")
              if config.output_path else None)
    _leave(stats_queue, output, serve_worker(config, plan, control, stats_queue, tickets, output))


def serve_worker(config: WorkerConfig, plan: WorkerPlan, control: Any, stats_queue: Any, tickets: Any,
                 output: TargetOutput | None = None) -> int:
    """Open the target, say ready, run from the start message until stopped; the exit status to end with.

    `control` has `recv()`, `stats_queue` has `put()`: a pipe and a queue between processes here,
    an actor's own queues under Ray.
    """
    try:
        worker = Worker(config, plan, stats_queue, tickets)
    except UsageError as error:
        stats_queue.put(("failed", config.worker_id, str(error)))
        return 0
    except BaseException as error:  # setup failures reach the user as one line, not a traceback
        stats_queue.put(("failed", config.worker_id, f"{type(error).__name__}: {error}"))
        return 0
    worker.output = output
    stats_queue.put(("ready", config.worker_id, None))
    message = control.recv()
    if message[0] != "start":
        stats_queue.put(("exit", config.worker_id, None))
        return 0
    worker.start_ns = message[1]
    if config.duration_s:
        worker.end_ns = worker.start_ns + int(config.duration_s * 1e9)
    failure = None
    try:
        worker.run(control)
    except BaseException as error:  # MemoryError under a memory limit, a thread that cannot start: this worker died
        failure = (f"{type(error).__name__}: {error}" if str(error) else type(error).__name__)[:200]
    worker.pool.close_idle({id(entry[4]) for entry in worker.inflight.copy().values()})
    if failure is not None:
        # Said before the exit, so the engine reports the death with its cause rather than a bare status.
        stats_queue.put(("crashed", config.worker_id, failure))
        return CRASH_STATUS
    stats_queue.put(("exit", config.worker_id, None))
    return 0


def _leave(stats_queue: Any, output: TargetOutput | None, status: int = 0) -> None:
    """Flush what this worker sent, then exit at once: threads stuck in target code must not hold the process."""
    if output is not None:
        output.close()
    stats_queue.close()
    stats_queue.join_thread()
    os._exit(status)
