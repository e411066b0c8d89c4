"""`--requests N` shared by every worker: tickets taken from one counter, a block at a time.

Blocks keep the shared counter's lock (or, across machines, its actor's round
trip) rare; they shrink to one near the end, so the total is exact.
"""

from __future__ import annotations

import multiprocessing
from typing import Any


def block_size(remaining: int) -> int:
    """How many tickets one claim takes when `remaining` are left."""
    return max(min(remaining // 8, 256), min(remaining, 1))


class Tickets:
    """A counter of tickets taken, shared by the workers of one run."""

    def claim(self, quota: int) -> int:
        """Take a block of tickets; 0 once all `quota` are taken."""
        raise NotImplementedError

    def give_back(self, count: int) -> None:
        raise NotImplementedError

    def taken(self) -> int:
        raise NotImplementedError


class ProcessTickets(Tickets):
    """Worker processes on this machine: a counter in shared memory."""

    def __init__(self, context: Any) -> None:
        self._value = context.Value("q", 0)

    def claim(self, quota: int) -> int:
        with self._value.get_lock():
            take = block_size(quota - self._value.value)
            self._value.value += take
        return take

    def give_back(self, count: int) -> None:
        with self._value.get_lock():
            self._value.value -= count

    def taken(self) -> int:
        with self._value.get_lock():
            return int(self._value.value)


def local_tickets() -> ProcessTickets:
    return ProcessTickets(multiprocessing.get_context("spawn"))
