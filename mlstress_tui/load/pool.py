"""A bounded, fair connection pool: slots go to waiters first come, first served."""

from __future__ import annotations

import queue
import threading
from collections import deque
from typing import Any


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
