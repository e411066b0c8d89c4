"""`--requests N` shared by every worker: tickets taken from one counter, a block at a time.

Blocks keep the shared counter's lock (or, across machines, its actor's round
trip) rare; they shrink to one near the end, so the total is exact.
"""

from __future__ import annotations

from typing import Any


def block_size(remaining: int) -> int:
    """How many tickets one claim takes when `remaining` are left."""
    return max(min(remaining // 8, 256), min(remaining, 1))


class Tickets:
    """A counter of tickets taken, shared by the workers of one run, and what each worker slot holds.

    A slot whose worker dies still holds tickets: those it never sent go back to the others
    (`give_back`), those it sent but never reported are lost (the target may have answered them,
    `SentCounts` tells them apart), so `--requests` stays exact and the target never receives more
    than N calls.
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


class SentCounts:
    """Requests each worker slot has sent, in shared memory: what a worker that dies had sent but never reported.

    Each slot's counter has one writer (its worker), so an increment needs no lock;
    the engine reads it only after that worker is gone.
    """

    def __init__(self, context: Any, slots: int) -> None:
        self._sent = context.Array("q", max(slots, 1), lock=False)

    def mark(self, slot: int) -> None:
        self._sent[slot] += 1

    def sent(self, slot: int) -> int:
        return int(self._sent[slot])
