"""`--requests N` shared by every worker: tickets taken from one counter, a block at a time.

Blocks keep the shared counter's lock (or, across machines, its actor's round
trip) rare; they shrink to one near the end, so the total is exact.
"""

from __future__ import annotations

from typing import Any


# The most tickets one claim takes: a shared lock every 32 requests costs ~0.03 µs a request, and a worker that dies
# holding a block loses at most this many unsent tickets.
MAX_BLOCK = 32


def block_size(remaining: int) -> int:
    """How many tickets one claim takes when `remaining` are left."""
    return max(min(remaining // 8, MAX_BLOCK), min(remaining, 1))


class Tickets:
    """A counter of tickets taken, shared by the workers of one run, and what each worker slot holds.

    A slot whose worker dies still holds tickets it never reported: they are lost, never given
    to another worker (the target may have answered them), so requests + lost = --requests and the
    target never receives more than N calls. Blocks are small, so a death leaves few unsent tickets
    among the lost.
    """

    def claim(self, quota: int, slot: int) -> int:
        """Take a block of tickets for `slot`; 0 once all `quota` are taken."""
        raise NotImplementedError

    def give_back(self, count: int, slot: int) -> None:
        raise NotImplementedError

    def taken(self) -> int:
        raise NotImplementedError

    def held(self, slot: int) -> int:
        """Tickets `slot` has taken and not given back."""
        raise NotImplementedError



class ProcessTickets(Tickets):
    """Worker processes on this machine: counters in shared memory."""

    def __init__(self, context: Any, slots: int) -> None:
        self._value = context.Value("q", 0)
        self._held = context.Array("q", max(slots, 1), lock=False)  # guarded by the total's lock

    def claim(self, quota: int, slot: int) -> int:
        with self._value.get_lock():
            take = block_size(quota - self._value.value)
            self._value.value += take
            self._held[slot] += take
        return take

    def give_back(self, count: int, slot: int) -> None:
        with self._value.get_lock():
            self._value.value -= count
            self._held[slot] -= count

    def taken(self) -> int:
        with self._value.get_lock():
            return int(self._value.value)

    def held(self, slot: int) -> int:
        with self._value.get_lock():
            return int(self._held[slot])

