"""Requests in flight and their deadlines, kept by the harness rather than the target.

The tick thread looks at the requests in flight every 50 ms and records one
past its deadline as a `timeout` then, whether or not the call ever returns;
whoever pops a request first (its user, or the deadline) records it, so it is
counted once. A virtual user stuck in such a call is replaced by a fresh one
(bounded), so the commanded load holds.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from mlstress_tui.load.pool import ConnectionPool
from mlstress_tui.load.worker.quota import RequestQuota
from mlstress_tui.load.worker.records import NO_LABEL, Records
from mlstress_tui.load.worker.virtual_users import VirtualUser, VirtualUsers
from mlstress_tui.results.kinds import EventKind, event

# A target that keeps its own deadline (SQLite's interrupt) gets this long to say so before the harness does.
DEADLINE_GRACE_NS = 20_000_000
# Stuck virtual users abandoned per worker before the tool says it cannot hold the load.
MAX_ABANDONED = 256
SETTLE_POLL_S = 0.005

# (started_ns, deadline_ns, event_count, sent_ns, connection, virtual user, group)
Flight = tuple[int, int, int, int, Any, VirtualUser, int]


class Deadlines:
    """The worker's requests in flight by serial, their deadlines, and the users stuck past them."""

    def __init__(self, records: Records, users: VirtualUsers, pool: ConnectionPool, quota: RequestQuota | None,
                 *, replace_stuck: bool) -> None:
        self.inflight: dict[int, Flight] = {}
        self._records = records
        self._timeout = records.labels.code("timeout")
        self._users = users
        self._pool = pool
        self._quota = quota
        self._replace_stuck = replace_stuck
        self._lock = threading.Lock()
        self._stuck: set[VirtualUser] = set()
        self._abandoned: set[VirtualUser] = set()  # stuck, and replaced with their pool slot
        self.abandoned = 0
        self.cannot_hold: str | None = None

    @property
    def stuck(self) -> int:
        with self._lock:
            return len(self._stuck)

    def in_use(self) -> set[int]:
        """The ids of the connections under a call (never closed under it: that can block for ever)."""
        return {id(flight[4]) for flight in self.inflight.copy().values()}

    def expire(self, now: int, *, grace_ns: int = DEADLINE_GRACE_NS, replace: bool = True) -> None:
        """Record every request past its deadline as a timeout now, and replace the users stuck in them."""
        for serial, flight in self.inflight.copy().items():
            started, deadline, event_count, sent, connection, vu, group = flight
            if now <= deadline + grace_ns or self.inflight.pop(serial, None) is None:
                continue
            self._records.record((now - started, now - sent, sent - started, event_count, self._timeout, group,
                                  NO_LABEL))
            self._records.failures.append(("timeout", f"no answer {(now - sent) / 1e9:.2f} s after the send: "
                                                      "counted at the deadline, the call is still running"))
            if self._quota is not None:
                self._quota.settled()
            with self._lock:
                vu.stuck = True
                self._stuck.add(vu)
            if replace and self._replace_stuck:
                self._abandon(vu, connection)

    def _abandon(self, vu: VirtualUser, connection: Any) -> None:
        """Leave a stuck user in its call and put a fresh one (and a fresh connection) in its place."""
        if self.abandoned >= MAX_ABANDONED:
            if self.cannot_hold is None:
                self.cannot_hold = (f"{MAX_ABANDONED} users are stuck in the target past their deadline: "
                                    "the tool stopped replacing them, so the load applied is below the load asked for")
                self._records.events.append(event(EventKind.CANNOT_HOLD_LOAD, reason=self.cannot_hold))
            return
        if not self._users.replace(vu):
            return
        self.abandoned += 1
        with self._lock:
            self._abandoned.add(vu)
        if not vu.owns:  # an owning user's replacement makes its own connection
            self._pool.replace(connection)

    def late_return(self, vu: VirtualUser, connection: Any) -> None:
        """A call that came back after its deadline was recorded: counted apart, never twice."""
        with self._lock:
            self._records.late_returns += 1
            vu.stuck = False
            self._stuck.discard(vu)
            replaced = vu in self._abandoned
            self._abandoned.discard(vu)
        if vu.owns:
            return  # the connection is the user's: kept, or closed as its replaced thread ends
        if not replaced:
            self._pool.put(connection)
        else:
            # Its slot was refilled when it was abandoned: this connection goes, the pool keeps its size.
            self._pool.retire(connection)

    def settle(self, until_ns: int) -> None:
        """At the end: calls past their deadline are timeouts; calls still out at `until_ns` are unfinished."""
        clock = time.perf_counter_ns
        while self.inflight:
            now = clock()
            self.expire(now, replace=False)
            if not self.inflight or now >= until_ns:
                break
            latest = max((flight[1] for flight in self.inflight.copy().values()), default=now) + DEADLINE_GRACE_NS
            # In slices: a call that returns ends the wait early.
            time.sleep(min(max(min(latest, until_ns) - now, 0) / 1e9, SETTLE_POLL_S))
        unfinished = 0
        for serial in list(self.inflight):
            if self.inflight.pop(serial, None) is not None:
                unfinished += 1
                if self._quota is not None:
                    self._quota.settled()
        self._records.unfinished += unfinished
