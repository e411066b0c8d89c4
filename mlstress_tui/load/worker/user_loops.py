"""What a virtual user does: the closed loop (send when the last returned) or the open loop (send when due).

Each loop honours the pause, the `--requests` quota and the run's end; the
open loop's latency counts from the request's due time, not from when an
executor got to it (coordinated omission corrected, as wrk2 does).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from mlstress_tui.load.schedule import ArrivalSchedule
from mlstress_tui.load.worker.quota import RequestQuota
from mlstress_tui.load.worker.send_path import SendPath
from mlstress_tui.load.worker.virtual_users import VirtualUser

POLL_S = 0.05

# What one step of a loop did.
SENT, DROPPED, STOP = 0, 1, 2


class UserLoops:
    """The loops of one worker's users; the worker sets `paused`, `schedule` and `end_ns` as plans and controls arrive."""

    def __init__(self, send: SendPath, quota: RequestQuota | None, timeout_s: float) -> None:
        self._send = send.send
        self._send_owned = send.send_owned
        self._quota = quota
        self._timeout_ns = int(timeout_s * 1e9)
        self.paused = False
        self.resumed = threading.Event()
        self.resumed.set()
        self.schedule: ArrivalSchedule | None = None
        self.end_ns = 0  # a --duration run's end instant: nothing due from then on is sent

    def run(self, vu: VirtualUser, users: Iterator[tuple[str, int, int]], *, open_loop: bool) -> None:
        """The user's loop until it is told to stop, the quota is spent or the run's end is reached."""
        step = self._open_step if open_loop else self._closed_step
        quota = self._quota
        while vu.running:
            if self.paused:
                self.resumed.wait(POLL_S)
                continue
            if quota is None:
                if step(vu, users) == STOP:
                    return
                continue
            if not quota.take():
                return
            done = step(vu, users)
            if done != SENT:
                quota.unused()
            if done == STOP:
                return

    def _closed_step(self, vu: VirtualUser, users: Iterator[tuple[str, int, int]]) -> int:
        user_id, event_count, group = next(users)
        started = time.perf_counter_ns()
        if self.end_ns and started >= self.end_ns:
            return STOP
        (self._send_owned if vu.owns else self._send)(vu, user_id, event_count, group, started,
                                                      started + self._timeout_ns)
        return SENT

    def _open_step(self, vu: VirtualUser, users: Iterator[tuple[str, int, int]]) -> int:
        schedule = self.schedule
        if schedule is None:
            return STOP
        clock = time.perf_counter_ns
        position, epoch = schedule.claim()
        due = schedule.due_ns(position)
        # Sleep in short slices so a rate change, pause or stop takes effect at once.
        while vu.running and (wait := due - clock()) > 0:
            if schedule.epoch != epoch:
                return DROPPED  # a pause came first: this arrival is not owed
            time.sleep(min(wait / 1e9, POLL_S))
            due = schedule.due_ns(position)
        if not vu.running or (self.end_ns and due >= self.end_ns):
            schedule.unclaim(position, epoch)
            return STOP
        user_id, event_count, group = next(users)
        self._send(vu, user_id, event_count, group, int(due), None)
        return SENT
