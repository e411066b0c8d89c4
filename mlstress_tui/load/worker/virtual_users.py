"""A worker's virtual users: one thread each, started, stopped and replaced under one lock.

Three threads change the list — the tick thread replacing a user stuck past
its deadline, a user thread replacing itself when its loop dies, the plan
applying a new level — so the list belongs to this one object and its lock;
nobody else iterates it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from mlstress_tui.results.kinds import CLOSED, OPEN, LoadMode


class VirtualUser:
    """One user's thread and its flags; `running` False tells its loop to end after the current request."""

    __slots__ = ("running", "stuck", "thread", "mode", "owns", "connection")

    def __init__(self, mode: LoadMode, *, owns: bool = False) -> None:
        self.running = True
        self.stuck = False  # inside a call past its deadline
        self.thread: threading.Thread | None = None
        self.mode = mode
        self.owns = owns  # keeps a connection of its own (`connection`, made on its first request) instead of the pool's
        self.connection: Any = None


class VirtualUsers:
    """The users of each loop, as many as the plan asks, replaced when stuck or dead."""

    def __init__(self, run_user: Callable[[VirtualUser], None]) -> None:
        self._run_user = run_user
        self._lock = threading.Lock()
        self._groups: dict[LoadMode, list[VirtualUser]] = {CLOSED: [], OPEN: []}
        self.stopped = False
        self.owned = False  # closed-loop users started from now on own their connections

    def _start(self, mode: LoadMode) -> VirtualUser:
        vu = VirtualUser(mode, owns=self.owned and mode == CLOSED)
        vu.thread = threading.Thread(target=self._run_user, args=(vu,), daemon=True, name=f"vu-{mode.value}")
        vu.thread.start()
        return vu

    def set_count(self, mode: LoadMode, count: int) -> int:
        """Start or stop users of `mode` until `count` run; how many run (fewer when threads cannot start)."""
        with self._lock:
            group = self._groups[mode]
            while len(group) > count:
                group.pop().running = False
            while len(group) < count and not self.stopped:
                try:
                    group.append(self._start(mode))
                except RuntimeError:  # "can't start new thread": a memory or pids limit
                    break
            return len(group)

    def replace(self, vu: VirtualUser) -> bool:
        """Stop `vu` and start a fresh user in its place; False when it was no longer one of ours."""
        with self._lock:
            group = self._groups[vu.mode]
            if self.stopped or not vu.running or vu not in group:
                return False
            vu.running = False
            group[group.index(vu)] = self._start(vu.mode)
            return True

    def stop_all(self) -> None:
        with self._lock:
            self.stopped = True
            for group in self._groups.values():
                for vu in group:
                    vu.running = False

    def running(self) -> int:
        with self._lock:
            return sum(1 for group in self._groups.values() for vu in group if vu.running)

    def any_alive(self) -> bool:
        """Some user's thread is still running (in a call, or between requests)."""
        with self._lock:
            return any(vu.thread is not None and vu.thread.is_alive()
                       for group in self._groups.values() for vu in group)

    def count(self, mode: LoadMode) -> int:
        with self._lock:
            return len(self._groups[mode])
