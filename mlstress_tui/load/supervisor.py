"""Watching the worker slots: a death is said at once and refilled (or the run stopped), a silent slot is said too.

Every request stays accounted for through it: a dead worker's requests sent
but never reported are lost (never sent again: the target may have answered
them), its tickets never sent go back to the others, and the open loop's
arrivals while its slot was refilled are unsent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlstress_tui.load.backends import WorkerBackend
from mlstress_tui.load.collector import TickCollector
from mlstress_tui.load.levels import CommandedLevels
from mlstress_tui.load.protocol import WorkerPlan
from mlstress_tui.load.spec import LoadSpec
from mlstress_tui.load.tickets import Tickets
from mlstress_tui.results.interval_stats import IntervalStats
from mlstress_tui.results.kinds import OPEN, EventKind, LoadMode, RunEvent

log = logging.getLogger(__name__)

# A worker that exits with status 0 but never said goodbye is given this long for its message to arrive.
SILENT_EXIT_GRACE_S = 0.5
# A worker slot whose process dies this often in a row, never delivering a tick in between, is not refilled
# again: a replacement would die the same way (a memory limit, a target that crashes at once).
MAX_DEATHS_PER_SLOT = 3
# A worker that sends no tick for this long (ticks come every 250 ms) is stuck: a target holding the GIL,
# a wedged process. It is said, its users count as stuck, and the other workers' ticks go on without it.
SILENT_S = 3.0
# Past its deadline, a silent worker is killed this long after, once the run is ending (its calls cannot end).
KILL_GRACE_S = 2.0
# A worker that stopped on SIGTERM while the run went on: if the run has not been stopped by then (the group's
# signal reaches the front end too), it was a death.
SIGTERM_GRACE_S = 1.0


@dataclass
class SlotFaults:
    """The tool's own faults over the run: workers that died or went silent, and the requests lost with them."""

    worker_deaths: list[dict[str, Any]] = field(default_factory=list)
    requests_lost: int = 0
    silent: list[dict[str, Any]] = field(default_factory=list)
    lost_by_slot: dict[int, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"worker_deaths": list(self.worker_deaths), "requests_lost": self.requests_lost,
                "silent_workers": list(self.silent)}


class Supervisor:
    """Which slots live, which are being refilled, which went silent, and what each death cost."""

    def __init__(self, backend: WorkerBackend, spec: LoadSpec, levels: CommandedLevels, collector: TickCollector,
                 *, slots: int, note: Callable[[RunEvent], None], spawn: Callable[[int, WorkerPlan], None],
                 stop_run: Callable[[], None], elapsed: Callable[[], float],
                 reopen_level: Callable[[], None]) -> None:
        self._backend = backend
        self._spec = spec
        self._levels = levels
        self._collector = collector
        self._note = note
        self._spawn = spawn
        self._stop_run = stop_run
        self._elapsed = elapsed
        self._reopen_level = reopen_level
        self.active: list[int] = list(range(slots))  # the slots sharing the load
        self.live: set[int] = set()
        self.missing: set[int] = set()  # being refilled: the load is below the commanded one
        self.silent: set[int] = set()
        self.faults = SlotFaults()
        self.tickets: Tickets | None = None
        self.stopping = False
        self._crash_reasons: dict[int, str] = {}
        self._deaths_by_slot: dict[int, int] = {}
        self._gone_since: dict[int, float] = {}
        self._sigterm_at: dict[int, float] = {}
        # Open loop: a dead slot's share from its last tick until its replacement's first (arrivals never sent).
        self._refill_from: dict[int, tuple[float, float, int]] = {}
        self._last_end: dict[int, float] = {}

    def start(self, start_perf_ns: int, start_wall_ns: int) -> None:
        self._start = (start_perf_ns, start_wall_ns)
        self.live = set(range(len(self.active)))
        now = time.monotonic()
        for slot in self.live:
            self._collector.last_heard[slot] = now

    # -- what the slots said ------------------------------------------------

    def on_tick(self, worker: int, tick: IntervalStats) -> None:
        if worker in self.missing:
            self.missing.discard(worker)
            gap = self._refill_from.pop(worker, None)
            if gap is not None:
                # Arrivals of the dead slot's share from its last tick to its replacement's first, less those it
                # sent after its last tick (already counted as lost).
                since, rate, sent_after = gap
                tick.unsent += max(round((tick.t_start - since) * rate) - sent_after, 0)
        if worker in self.silent:
            self.silent.discard(worker)
            self._note(RunEvent(EventKind.WORKER_SILENT, round(self._elapsed(), 3),
                                {"worker": worker, "back": True}))
        self._deaths_by_slot.pop(worker, None)  # it delivered: its next death starts a new count
        self._last_end[worker] = tick.t_end

    def on_ready(self, worker: int) -> None:
        if worker in self.missing:
            # A replacement worker: it joins the run's clock and tick grid where they stand.
            self._backend.start(worker, *self._start)

    def on_failed(self, worker: int, reason: str) -> None:
        if worker in self.missing:
            self.missing.discard(worker)
            self.live.discard(worker)
            self._note(RunEvent(EventKind.WORKER_REPLACEMENT_FAILED, round(self._elapsed(), 3),
                                {"error": reason[:200]}, worker))

    def on_exit(self, worker: int, *, sigterm: bool) -> None:
        if sigterm and not self.stopping:
            self._sigterm_at[worker] = time.monotonic()  # a stop of the group, or a death: decided in check()
            return
        self.live.discard(worker)

    def on_crashed(self, worker: int, reason: str) -> None:
        self._crash_reasons[worker] = reason

    # -- checks, on the collector's clock -------------------------------------

    def check(self) -> None:
        now = time.monotonic()
        for worker, at in list(self._sigterm_at.items()):
            if self.stopping:
                del self._sigterm_at[worker]
                self.live.discard(worker)
            elif now - at >= SIGTERM_GRACE_S:
                del self._sigterm_at[worker]
                self._died(worker, 0, "stopped by a SIGTERM sent to it alone, while the run went on")
        for worker in sorted(self.live):
            if worker in self._sigterm_at:
                continue
            gone = self._backend.exit_of(worker)
            if gone is None:
                self._check_silence(worker, now)
                continue
            if worker in self.missing and self.stopping:
                self.live.discard(worker)  # a replacement told to stop before it started
                continue
            if gone.code == 0 and now - self._gone_since.setdefault(worker, now) < SILENT_EXIT_GRACE_S:
                continue  # its goodbye may still be in the queue
            self._gone_since.pop(worker, None)
            how = gone.how
            if worker in self._crash_reasons:
                how += f", {self._crash_reasons.pop(worker)}"
            self._died(worker, gone.code, how)

    def _check_silence(self, worker: int, now: float) -> None:
        if worker in self.missing or worker in self.silent:
            return
        quiet = now - self._collector.last_heard.get(worker, now)
        if quiet < SILENT_S:
            return
        self.silent.add(worker)
        self._collector.forget(worker)
        users = self._collector.last_users.get(worker, 0)
        info = {"worker": worker, "silent_s": round(quiet, 1), "users": users,
                "inflight": self._collector.last_inflight.get(worker, 0)}
        self.faults.silent.append({**info, "t": round(self._elapsed(), 3)})
        self._note(RunEvent(EventKind.WORKER_SILENT, round(self._elapsed(), 3), info))
        log.warning("worker %d has sent nothing for %.1f s", worker, quiet)

    def end_stuck(self, *, timeout_s: float, at_t: float, mode: LoadMode) -> None:
        """Once the run is ending, a worker still silent past its deadline and a grace is killed: nothing a target
        does can keep a run from ending. Its calls in flight count as timeouts at their deadline."""
        now = time.monotonic()
        for worker in sorted(self.silent & self.live):
            quiet = now - self._collector.last_heard.get(worker, now)
            if quiet < max(SILENT_S, timeout_s) + KILL_GRACE_S:
                continue
            self._backend.kill(worker)
            inflight = self._collector.last_inflight.get(worker, 0)
            self.killed(worker, inflight)
            if inflight:
                self._collector.add(worker, _timeouts_tick(inflight, timeout_s, at_t, mode))
            self._note(RunEvent(EventKind.WORKER_SILENT, round(self._elapsed(), 3),
                                {"worker": worker, "killed": True, "silent_s": round(quiet, 1), "timeouts": inflight}))

    def killed(self, worker: int, inflight: int) -> None:
        """A silent worker the engine killed at the end: its calls in flight are timeouts, the rest it sent lost."""
        self.live.discard(worker)
        self.silent.discard(worker)
        lost = max(self._lost_with(worker) - inflight, 0)
        self.faults.lost_by_slot[worker] = self.faults.lost_by_slot.get(worker, 0) - inflight
        self.faults.requests_lost += lost
        for entry in self.faults.silent:
            if entry["worker"] == worker:
                entry["killed"] = True

    def silent_users(self) -> int:
        return sum(self._collector.last_users.get(worker, 0) for worker in self.silent)

    # -- deaths ----------------------------------------------------------------

    def _lost_with(self, worker: int) -> int:
        """Requests the dead worker may have sent and never reported: under --requests every ticket it took and did
        not report (exact: requests + lost = N, and none is sent twice); otherwise what it had in flight at its
        last tick (what it answered since is not known)."""
        reported = self._collector.requests_by_slot.get(worker, 0)
        already = self.faults.lost_by_slot.get(worker, 0)
        if self.tickets is not None:
            lost = max(self.tickets.held(worker) - reported - already, 0)
        else:
            lost = self._collector.last_inflight.get(worker, 0)
        self.faults.lost_by_slot[worker] = already + lost
        return lost

    def _died(self, worker: int, code: int, how: str) -> None:
        self.live.discard(worker)
        self._collector.last_inflight.pop(worker, None)
        lost = self._lost_with(worker)
        self.faults.requests_lost += lost
        plan = self._levels.plans(self.active).get(worker) or WorkerPlan(self._levels.current.mode, 0, 0.0, None)
        running = self._collector.last_users.pop(worker, None)
        if plan.mode == OPEN:
            carried = f"{plan.rate:g} req/s"
        elif running is not None and running != plan.concurrency:
            carried = f"{running} users (of {plan.concurrency} asked)"
        else:
            carried = f"{plan.concurrency} users"
        death: dict[str, Any] = {"worker": worker, "how": how, "exitcode": code, "carried": carried,
                                 "inflight_lost": lost, "t": round(self._elapsed(), 3)}
        self.faults.worker_deaths.append(death)
        log.info("worker %d died (%s) carrying %s", worker, how, carried)
        deaths = self._deaths_by_slot[worker] = self._deaths_by_slot.get(worker, 0) + 1
        self._collector.forget(worker)
        self.silent.discard(worker)
        if not self._backend.can_replace:
            self._lose_slot(worker, death)
            return
        replace = self._spec.on_worker_death == "replace" and not self.stopping and deaths < MAX_DEATHS_PER_SLOT
        then = ("replaced" if replace else "run stopped" if deaths < MAX_DEATHS_PER_SLOT
                else f"run stopped: it died {deaths} times, a replacement would die the same way")
        self._note(RunEvent(EventKind.WORKER_DIED, death["t"], {**death, "then": then}))
        if not replace:
            self._stop_run()
            return
        if plan.mode == OPEN:
            since = self._last_end.get(worker, 0.0)
            self._refill_from[worker] = (since, plan.rate, lost)
        self._spawn(worker, plan)
        self.missing.add(worker)
        self.live.add(worker)

    def _lose_slot(self, worker: int, death: dict[str, Any]) -> None:
        """A slot that cannot be refilled (its node is gone): the rest take its share, or the run stops."""
        self._collector.partial_levels.add(self._levels.current.level_id)
        self.active = [slot for slot in self.active if slot != worker]
        death["node"] = self._backend.node_of(worker)
        keep_going = self._spec.on_node_loss == "continue" and bool(self.active) and not self.stopping
        then = (f"its share went to the other {len(self.active)} worker(s)" if keep_going
                else "run stopped" if self.active else "run stopped: no worker left")
        self._note(RunEvent(EventKind.WORKER_DIED, death["t"], {**death, "then": then}))
        if keep_going:
            self._reopen_level()
        else:
            self._stop_run()


def _timeouts_tick(count: int, timeout_s: float, at_t: float, mode: LoadMode) -> IntervalStats:
    """Calls a killed worker had in flight: timeouts recorded at their deadline, as the worker would have."""
    tick = IntervalStats(index=10 ** 9, t_start=at_t, t_end=at_t, mode=mode, requests=count,
                         errors_by_kind={"timeout": count},
                         last_error={"timeout": "no answer by the deadline: the worker was wedged and killed"})
    deadline_ns = np.full(count, int(timeout_s * 1e9), dtype=np.int64)
    tick.latency.record_many(deadline_ns)
    tick.service.record_many(deadline_ns)
    tick.pool_wait.record_many(np.zeros(count, dtype=np.int64))
    return tick
