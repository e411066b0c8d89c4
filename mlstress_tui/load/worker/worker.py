"""A worker: its virtual users drive the target, and a tick of stats ships every 250 ms.

The tick thread owns time: it keeps the deadlines, closes a tick at each
boundary of the run's tick grid, and applies a new plan between two ticks,
so no tick straddles two levels. Control messages arrive on a thread of their
own; users, deadlines, the send path and the quota are rooms of their own.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any, Protocol

from mlstress_tui.load.failures import describe_failure
from mlstress_tui.load.protocol import (ApplyPlan, Control, Pause, Resume, Start, Stop, TickReport, WorkerConfig,
                                        WorkerPlan)
from mlstress_tui.load.schedule import ArrivalSchedule
from mlstress_tui.load.target_output import TargetOutput
from mlstress_tui.load.tickets import Tickets
from mlstress_tui.load.users import UserSampler
from mlstress_tui.load.worker.deadlines import Deadlines
from mlstress_tui.load.worker.hiccup import HiccupMeter
from mlstress_tui.load.worker.quota import RequestQuota
from mlstress_tui.load.worker.records import Records
from mlstress_tui.load.worker import send_path
from mlstress_tui.load.worker.send_path import SendPath
from mlstress_tui.load.worker.tick_builder import TickBuilder
from mlstress_tui.load.worker.user_loops import POLL_S, UserLoops
from mlstress_tui.load.worker.virtual_users import VirtualUser, VirtualUsers
from mlstress_tui.results.interval_stats import STOP_MS, IntervalStats
from mlstress_tui.results.kinds import CLOSED, OPEN, EventKind, event

# An operator's stop waits at most this long for calls in flight; what is still out then is `unfinished`.
STOP_SETTLE_S = 1.0
# Far enough in the future that only the deadlines end the settle (a natural end: every call gets its deadline).
_UNTIL_DEADLINES = 2 ** 62


class ControlChannel(Protocol):
    """The engine's messages: a pipe between processes, an actor's queue under Ray."""

    def recv(self) -> Any: ...


class StatsChannel(Protocol):
    def put(self, message: Any) -> None: ...


class Worker:
    """One worker slot's users, pool, deadlines and ticks, from the start instant until stopped."""

    def __init__(self, config: WorkerConfig, plan: WorkerPlan, stats: StatsChannel,
                 tickets: Tickets | None = None) -> None:
        self.config = config
        self.plan = plan
        self._stats = stats
        self.target = config.target.open(config.timeout_s)
        self.sampler = UserSampler.from_source(config.users)
        self.pool = self.target.make_pool()
        self.records = Records()
        self.quota = (RequestQuota(tickets, config.requests_quota, config.worker_id)
                      if tickets is not None and config.requests_quota else None)
        self.users = VirtualUsers(self._user_main)
        self.deadlines = Deadlines(self.records, self.users, self.pool, self.quota,
                                   replace_stuck=config.replace_stuck)
        self.send_path = SendPath(self.target, self.pool, self.records, self.deadlines, self.quota, config.timeout_s)
        self.loops = UserLoops(self.send_path, self.quota, config.timeout_s)
        self.stopping = threading.Event()
        self.hiccups = HiccupMeter(self.stopping)
        self.ticks = TickBuilder(self.records, worker_id=config.worker_id, seed=config.users.seed,
                                 scatter_per_tick=config.scatter_per_tick, strata_edges=config.strata_edges,
                                 edge_mix=self.sampler.mix == "edge")
        self.output: TargetOutput | None = None
        self.start_ns = 0
        self.stopped_ns = 0
        self.sigterm = False  # a SIGTERM, not the engine, asked this worker to stop
        self._operator_stop = False
        self._level_changed = False
        self._plans_lock = threading.Lock()
        self._pending_plans: list[ApplyPlan] = []
        self._user_serials = itertools.count(1)
        self._cannot_hold: str | None = None
        self._output_said = False
        self._forks_seen = send_path.forks

    # -- users --------------------------------------------------------------

    def _user_main(self, vu: VirtualUser) -> None:
        """A virtual user's thread: its loop, and a replacement if the loop itself dies."""
        users = self.sampler.stream(self.config.worker_id, next(self._user_serials))
        try:
            self.loops.run(vu, users, open_loop=vu.mode == OPEN)
        except BaseException as error:  # a bug of ours or an escaped target error: said, and the load held
            kind, message = describe_failure(error)
            self.records.events.append(event(EventKind.USER_DIED, error=f"{kind}: {message}"))
            if not self.stopping.is_set():
                self.users.replace(vu)
        finally:
            if vu.connection is not None:
                self.send_path.drop_connection(vu)

    def _set_users(self, mode: Any, count: int) -> None:
        running = self.users.set_count(mode, count)
        if running < count:
            reason = (f"could start only {running} of {count} virtual users in worker {self.config.worker_id}: "
                      "the system refused more threads (a memory or pids limit)")
            if self._cannot_hold != reason:
                self._cannot_hold = reason
                self.records.events.append(event(EventKind.CANNOT_HOLD_LOAD, reason=reason))

    # -- plans and controls ---------------------------------------------------

    def apply(self, plan: WorkerPlan, *, between_ticks: bool = False) -> None:
        """Reconcile users, pool and schedule with a plan; off a tick boundary the tick it lands in is no level's."""
        self.plan = plan
        if not between_ticks:
            self._level_changed = True
        now = time.perf_counter_ns()
        executors = plan.pool_size if plan.pool_size is not None else plan.concurrency
        # A slot for every user: each keeps its own connection. A smaller pool stays the bounded pool it is.
        owned = plan.mode == CLOSED and self.target.owns_connections and executors >= plan.concurrency
        if owned != self.users.owned:
            self.users.owned = owned
            self._set_users(CLOSED, 0)  # the closed users restart, holding connections the new way
        self.pool.resize(0 if owned else executors)
        if plan.mode == CLOSED:
            self._set_users(OPEN, 0)
            self._set_users(CLOSED, plan.concurrency)
            return
        if self.loops.schedule is None:
            # Uniform arrivals interleave across workers: this one takes every W-th of the run's schedule. The curve
            # starts at the run's start instant (what is due by the time the users are up is owed, and late); a
            # replacement joining mid-run starts from the tick it joins at (the gap before it is counted as unsent
            # by the engine, from that tick's start).
            tick_ns = int(self.config.tick_s * 1e9)
            joined = self.start_ns + max((now - self.start_ns) // tick_ns, 0) * tick_ns
            self.loops.schedule = ArrivalSchedule(plan.rate, joined,
                                                  arrivals=self.config.arrivals,
                                                  seed=[self.config.users.seed, self.config.worker_id, 11],
                                                  phase=self.config.worker_id / self.config.workers)
        else:
            self.loops.schedule.set_rate(plan.rate, now)
        self._set_users(CLOSED, 0)
        self._set_users(OPEN, executors if plan.rate > 0 else 0)

    def _apply_due_plans(self, boundary_ns: int) -> None:
        with self._plans_lock:
            due = [plan for plan in self._pending_plans if (plan.at_ns or 0) <= boundary_ns]
            self._pending_plans = [plan for plan in self._pending_plans if plan not in due]
        for message in due:
            self.apply(message.plan, between_ticks=True)

    def pause(self) -> None:
        self.loops.paused = True
        self.loops.resumed.clear()
        schedule = self.loops.schedule
        if schedule is not None:
            backlog, waits = schedule.pause(time.perf_counter_ns())
            if backlog:
                self._add_unsent(backlog, waits)

    def resume(self) -> None:
        schedule = self.loops.schedule
        if schedule is not None:
            self.records.paused_arrivals += schedule.resume(self.plan.rate, time.perf_counter_ns())
        self.loops.paused = False
        self.loops.resumed.set()

    def stop(self, *, operator: bool = True) -> None:
        if not self.stopping.is_set():
            self.stopped_ns = time.perf_counter_ns()
            self._operator_stop = operator
            if self.loops.end_ns:
                self.stopped_ns = min(self.stopped_ns, self.loops.end_ns)  # a late stop ends the run at its end
        self.stopping.set()
        self.users.stop_all()
        self.loops.resumed.set()

    def _add_unsent(self, count: int, waits: Any) -> None:
        self.records.unsent += count
        if self.records.unsent_wait is None:
            self.records.unsent_wait = waits
        else:
            self.records.unsent_wait.merge(waits)

    def listen(self, control: ControlChannel) -> None:
        """Serve control messages until stopped; a lost engine (EOF) is a stop: never linger."""
        while True:
            try:
                message: Control = control.recv()
            except (EOFError, OSError):
                self.stop()
                return
            match message:
                case ApplyPlan(at_ns=None):
                    self.apply(message.plan)
                case ApplyPlan():
                    with self._plans_lock:
                        self._pending_plans.append(message)
                case Pause():
                    self.pause()
                case Resume():
                    self.resume()
                case Stop():
                    self.stop()
                    return
                case Start():
                    pass  # only the first start counts (serve_worker reads it)

    # -- ticks ------------------------------------------------------------------

    def _finished_by_itself(self) -> bool:
        quota = self.quota
        if quota is None:
            return False
        if quota.done():
            return True
        if self.users.running() == 0:
            quota.give_back_unused()
        return quota.exhausted()

    def run(self, control: ControlChannel) -> None:
        """From the start instant: apply the plan, then close a tick at each boundary until the run ends."""
        threading.Thread(target=self.listen, args=(control,), daemon=True, name="control").start()
        self.hiccups.start()
        tick_ns = int(self.config.tick_s * 1e9)
        # Nothing is sent before the instant every slot shares, on any backend.
        while (wait := self.start_ns - time.perf_counter_ns()) > 0 and not self.stopping.is_set():
            time.sleep(min(wait / 1e9, POLL_S))
        self.apply(self.plan, between_ticks=True)
        # A replacement worker joins the run's tick grid where it stands.
        index = max(int((time.perf_counter_ns() - self.start_ns) // tick_ns), 0)
        cpu_before = time.process_time()
        end_ns = self.loops.end_ns
        while True:
            boundary = self.start_ns + (index + 1) * tick_ns
            if end_ns:
                boundary = min(boundary, end_ns)
            reached_end = False
            while not self.stopping.is_set():
                if self.sigterm:
                    self.stop()  # a SIGTERM is a stop: the last tick and the goodbye still go out
                    break
                now = time.perf_counter_ns()
                self.deadlines.expire(now)
                if end_ns and now >= end_ns:
                    reached_end = True  # the run's end, on every worker at the same instant
                    break
                if boundary - now <= 0 or self._finished_by_itself():
                    break
                self.stopping.wait(min((boundary - now) / 1e9, POLL_S))
            finishing = self.stopping.is_set() or reached_end or self._finished_by_itself()
            if finishing:
                operator = self.stopping.is_set() and self._operator_stop and not reached_end
                self.stop(operator=operator)
                if reached_end:
                    self.stopped_ns = end_ns
                self._settle(operator)
                if self.output is not None:
                    self.output.end()  # the last tick counts every line the run's calls wrote
                boundary = time.perf_counter_ns()
            cpu_now = time.process_time()
            t_start_ns = max(self.start_ns + index * tick_ns, self.start_ns)
            wall = max((boundary - t_start_ns) / 1e9, 1e-9)
            # A sliver of a tick (the end of a short run) says nothing about how busy the worker was.
            busy = min((cpu_now - cpu_before) / wall, 1.0) if wall >= self.config.tick_s / 2 else 0.0
            self._stats.put(TickReport(self.config.worker_id, self._tick(index, t_start_ns, boundary, busy)))
            cpu_before = cpu_now
            if finishing:
                return
            index += 1
            self._apply_due_plans(boundary)

    def _settle(self, operator: bool) -> None:
        """Calls in flight get their deadlines (an operator's stop: at most STOP_SETTLE_S); the open loop's backlog."""
        until = time.perf_counter_ns() + int(STOP_SETTLE_S * 1e9) if operator else _UNTIL_DEADLINES
        self.deadlines.settle(until)
        schedule = self.loops.schedule
        if schedule is not None and self.plan.mode == OPEN and not self.loops.paused:
            # The open loop's backlog: due before the end, never sent; each waited at least until the end.
            owed, waits = schedule.owed_at(self.stopped_ns)
            if self.quota is not None:
                owed = min(owed, self.quota.remaining())  # arrivals past --requests were never owed
            if owed:
                self._add_unsent(owed, waits)

    def _tick(self, index: int, t_start_ns: int, t_end_ns: int, cpu: float) -> IntervalStats:
        plan = self.plan
        tick = IntervalStats(index=index, t_start=(t_start_ns - self.start_ns) / 1e9,
                             t_end=(t_end_ns - self.start_ns) / 1e9, mode=plan.mode,
                             concurrency=plan.concurrency if plan.mode == CLOSED else self.users.count(OPEN),
                             rate=plan.rate if plan.mode == OPEN else None, worker_cpu=cpu,
                             level_id=None if self._level_changed else plan.level_id)
        self._level_changed = False
        self.ticks.build(tick)
        # Attributed by the tick: a plan changes ownership only between requests of restarted users.
        tick.owned_requests = tick.requests if self.users.owned else 0
        tick.paused = self.loops.paused and not tick.requests
        lags = self.hiccups.take()
        tick.hiccup.record_many([lag for _, lag in lags])
        stop_ns = int(STOP_MS * 1e6)
        tick.stop_spans = {self.config.worker_id: [
            ((began - self.start_ns) / 1e9, (began + lag - self.start_ns) / 1e9) for began, lag in lags if lag >= stop_ns]}
        records = self.records
        tick.stuck_users = self.deadlines.stuck
        tick.inflight = len(self.deadlines.inflight)
        tick.late_returns, records.late_returns = records.late_returns, 0
        tick.unfinished, records.unfinished = records.unfinished, 0
        tick.paused_arrivals, records.paused_arrivals = records.paused_arrivals, 0
        if records.unsent:
            tick.unsent, records.unsent = records.unsent, 0
            if records.unsent_wait is not None:
                tick.unsent_wait, records.unsent_wait = records.unsent_wait, None
        tick.users_running = self.users.running()
        if self.output is not None:
            tick.output_lines = self.output.take_lines()
            dropped, why = self.output.take_dropped()
            if dropped:
                tick.output_dropped = dropped
                if not self._output_said:
                    self._output_said = True
                    records.events.append(event(EventKind.OUTPUT_DROPPED, lines=dropped, reason=why))
        if send_path.forks != self._forks_seen:
            records.events.append(event(EventKind.TARGET_FORKED, forks=send_path.forks - self._forks_seen))
            self._forks_seen = send_path.forks
        elapsed = tick.t_end
        tick.events = [item.at(elapsed, self.config.worker_id) for item in records.take_events()]
        return tick
