"""One request through the pool to the target and into the records: the measured path, kept to a few C-level calls.

A clock read, a slot from the pool, a dict entry for the request in flight,
the call, one `array.extend` of seven integers: the harness costs microseconds; all
aggregation happens once a tick on the batch.
"""

from __future__ import annotations

import itertools
import os
import queue
import time

from mlstress_tui.load.failures import describe_failure
from mlstress_tui.load.pool import ConnectionPool
from mlstress_tui.load.targets import ConnectionLost, LiveTarget
from mlstress_tui.load.worker.deadlines import Deadlines
from mlstress_tui.load.worker.quota import RequestQuota
from mlstress_tui.load.worker.records import NO_LABEL, Records
from mlstress_tui.load.worker.virtual_users import VirtualUser

# Set in a child process the target forked (os.register_at_fork): such a child must never run the harness.
_forked_child = False
# Forks seen in this (the worker's) process: the worker says so.
forks = 0


def _mark_forked_child() -> None:
    global _forked_child
    _forked_child = True


def _count_fork() -> None:
    global forks
    forks += 1


os.register_at_fork(after_in_child=_mark_forked_child, after_in_parent=_count_fork)


def _path_of(error: BaseException) -> str | None:
    """The path a failed request took, when its target says (`request_path`), as a short printable name."""
    try:
        path = getattr(error, "request_path", None)
    except BaseException:  # a property that raises: no path
        return None
    return path if isinstance(path, str) and path.isidentifier() and len(path) <= 32 else None


class SendPath:
    """Sends one request for a user and records its outcome, from `started` (closed loop: now; open: its due time)."""

    def __init__(self, target: LiveTarget, pool: ConnectionPool, records: Records, deadlines: Deadlines,
                 quota: RequestQuota | None, timeout_s: float) -> None:
        self._target = target
        self._pool = pool
        self._records = records
        self._deadlines = deadlines
        self._quota = quota
        self._timeout_s = timeout_s
        self._timeout_ns = int(timeout_s * 1e9)
        self._serials = itertools.count()
        self._label = records.labels.code
        self._pool_timeout = self._label("pool_timeout")
        self._connection_lost = self._label(ConnectionLost.error_kind)

    def _failed(self, error: BaseException) -> tuple[int, str | None]:
        """A failed call's kind (as a label code, its message kept for the tick) and the path it took, if said."""
        kind, message = describe_failure(error)
        self._records.failures.append((kind, message))
        return self._label(kind), _path_of(error)

    def send(self, vu: VirtualUser, user_id: str, event_count: int, group: int, started: int,
             deadline_ns: int | None) -> None:
        """One request; `deadline_ns` None counts `--timeout` from the actual send (an open-loop request that
        queued behind the schedule is late, not timed out)."""
        clock = time.perf_counter_ns
        record = self._records.record
        quota = self._quota
        try:
            connection = self._pool.get(timeout=self._timeout_s)
        except queue.Empty:
            waited = clock() - started
            record((waited, 0, waited, event_count, self._pool_timeout, group, NO_LABEL))
            if quota is not None:
                quota.settled()
            return
        if not vu.running:
            self._pool.put(connection)  # stopped or replaced while it waited for a slot: never sent
            if quota is not None:
                quota.unused()
            return
        sent = clock()
        deadline = deadline_ns or sent + self._timeout_ns
        serial = next(self._serials)
        inflight = self._deadlines.inflight
        inflight[serial] = (started, deadline, event_count, sent, connection, vu, group)
        kind = NO_LABEL
        try:
            path = self._target.request(connection, user_id, deadline)
        except BaseException as error:  # SystemExit or KeyboardInterrupt raised by target code is its error too
            kind, path = self._failed(error)
        if _forked_child:
            os._exit(0)  # a child the target forked came back here: it must not run the harness
        done = clock()
        if inflight.pop(serial, None) is None:
            self._deadlines.late_return(vu, connection)
            return
        self._pool.put(connection)
        record((done - started, done - sent, sent - started, event_count, kind, group,
                NO_LABEL if path is None else self._label(path)))
        if quota is not None:
            quota.settled()

    def send_owned(self, vu: VirtualUser, user_id: str, event_count: int, group: int, started: int,
                   deadline_ns: int | None) -> None:
        """One closed-loop request on the user's own connection: no pool, so no pool wait (0 by construction). A
        connection made or remade here is part of this request's time, as a keep-alive client's reconnect is."""
        deadline = deadline_ns or started + self._timeout_ns
        serial = next(self._serials)
        inflight = self._deadlines.inflight
        connection = vu.connection
        inflight[serial] = (started, deadline, event_count, started, connection, vu, group)
        kind = NO_LABEL
        try:
            if connection is None:
                connection = vu.connection = self._target.connect()
            path = self._target.request(connection, user_id, deadline)
        except BaseException as error:  # SystemExit or KeyboardInterrupt raised by target code is its error too
            kind, path = self._failed(error)
            if kind == self._connection_lost:
                self.drop_connection(vu)  # the next request reconnects
        if _forked_child:
            os._exit(0)
        done = time.perf_counter_ns()
        if inflight.pop(serial, None) is None:
            self._deadlines.late_return(vu, connection)
            return
        self._records.record((done - started, done - started, 0, event_count, kind, group,
                              NO_LABEL if path is None else self._label(path)))
        if self._quota is not None:
            self._quota.settled()

    def drop_connection(self, vu: VirtualUser) -> None:
        """Close a user's own connection (broken, or the user is done); a close that fails has nothing left to free."""
        connection, vu.connection = vu.connection, None
        if connection is not None:
            try:
                self._target.close(connection)
            except Exception:
                pass
