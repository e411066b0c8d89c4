"""A bounded, fair connection pool: slots go to waiters first come, first served."""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol


class ConnectionPool(Protocol):
    """What a worker needs of a target's pool: the harness's `ConnectionSlots`, or a target's own (psycopg_pool's).

    `get` is timed as pool wait; `replace` refills the slot of a connection left
    under a stuck call, `retire` closes that connection once its call returns.
    """

    def get(self, timeout: float) -> Any: ...
    def put(self, connection: Any) -> None: ...
    def resize(self, slots: int) -> None: ...
    def replace(self, connection: Any) -> None: ...
    def retire(self, connection: Any) -> None: ...
    def close_idle(self, in_use: set[int]) -> None: ...


class _Waiter:
    __slots__ = ("ready", "item", "served")

    def __init__(self) -> None:
        self.ready = threading.Lock()
        self.ready.acquire()
        self.item: Any = None
        self.served = False


class SlotPool:
    """Hands a returned slot straight to the longest waiter, as production pools do.

    A plain queue lets the thread that just returned a slot take it back before
    a woken waiter runs, so one virtual user monopolises the slot and the pool's
    wait disappears from the median; a hand-off keeps the queueing honest.
    Waiters exist only while no slot is free.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: deque[Any] = deque()
        self._waiters: deque[_Waiter] = deque()

    def get(self, timeout: float) -> Any:
        """A slot, waiting at most `timeout` seconds; queue.Empty when none came."""
        # Fast path without the lock: slots sit in `_free` only while nobody waits,
        # so taking one here can never jump the queue.
        try:
            return self._free.popleft()
        except IndexError:
            pass
        with self._lock:
            if self._free:
                return self._free.popleft()
            waiter = _Waiter()
            self._waiters.append(waiter)
        if waiter.ready.acquire(timeout=timeout):
            return waiter.item
        with self._lock:
            if not waiter.served:
                self._waiters.remove(waiter)
                raise queue.Empty
        return waiter.item  # handed over just as the wait ran out

    def put(self, item: Any) -> None:
        with self._lock:
            if self._waiters:
                waiter = self._waiters.popleft()
                waiter.item, waiter.served = item, True
                waiter.ready.release()
            else:
                self._free.append(item)


class ConnectionSlots:
    """A target's connections behind the fair hand-off pool: resized by plans, refilled for stuck users.

    The pool every target gets unless it brings its own (PostgreSQL brings
    psycopg_pool's): `get` (timed by the worker as pool wait), `put`, `resize`,
    `replace` for a connection left with a stuck call, `retire` when that call
    finally returns, and `close_idle` at the end.
    """

    def __init__(self, connect: Callable[[], Any], close: Callable[[Any], None]) -> None:
        self._connect = connect
        self._close = close
        self._slots = SlotPool()
        self._connections: list[Any] = []
        self._surplus = 0
        self._lock = threading.Lock()

    def get(self, timeout: float) -> Any:
        """A connection, waiting at most `timeout` seconds; queue.Empty when none came."""
        return self._slots.get(timeout)

    def put(self, connection: Any) -> None:
        if self._surplus:
            with self._lock:
                if self._surplus:
                    # Slots in use cannot be taken back on a shrink: the surplus is closed as it returns.
                    self._surplus -= 1
                    self._connections.remove(connection)
                    self._close(connection)
                    return
        self._slots.put(connection)

    def resize(self, slots: int) -> None:
        with self._lock:
            have = len(self._connections) - self._surplus
            while have < slots:
                if self._surplus:
                    self._surplus -= 1
                else:
                    connection = self._connect()
                    self._connections.append(connection)
                    self._slots.put(connection)
                have += 1
            self._surplus += max(have - slots, 0)

    def replace(self, connection: Any) -> None:
        """`connection` stays with a call stuck past its deadline; a fresh one takes its slot."""
        fresh = self._connect()
        with self._lock:
            self._connections.append(fresh)
        self._slots.put(fresh)

    def retire(self, connection: Any) -> None:
        """A replaced connection whose stuck call came back: closed, the pool keeps its size."""
        with self._lock:
            self._connections.remove(connection)
        self._close(connection)

    def close_idle(self, in_use: set[int]) -> None:
        """Close every connection not in `in_use` (ids): closing one under a stuck call could block for ever."""
        for connection in list(self._connections):
            if id(connection) not in in_use:
                try:
                    self._close(connection)
                except Exception:
                    pass
