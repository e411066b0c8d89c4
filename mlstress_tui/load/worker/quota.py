"""`--requests N` in one worker: a ticket per request from the run's shared counter, done once every ticket has an outcome.

A ticket is outstanding from the moment it is taken until its request has an
outcome — ok, an error, or a `timeout` recorded at the deadline — not until
the call returns: a call that never comes back must not keep the run going.
"""

from __future__ import annotations

import threading

from mlstress_tui.load.tickets import Tickets


class RequestQuota:
    """This worker's side of the shared tickets: a block claimed at a time, and the tickets still without an outcome."""

    def __init__(self, tickets: Tickets, quota: int, slot: int) -> None:
        self._tickets = tickets
        self._quota = quota
        self._slot = slot
        self._lock = threading.Lock()
        self._block = 0
        self.outstanding = 0  # taken, and no outcome yet
        self.spent = threading.Event()

    def take(self) -> bool:
        """A ticket for one request; False once the run's `--requests` are all spoken for."""
        with self._lock:
            if not self._block:
                self._block = self._tickets.claim(self._quota, self._slot)
                if not self._block:
                    self.spent.set()
                    return False
            self._block -= 1
            self.outstanding += 1
            return True

    def settled(self) -> None:
        """The ticket's request has its outcome."""
        with self._lock:
            self.outstanding -= 1

    def unused(self) -> None:
        """A ticket taken but never sent (its user was stopped first): back into this worker's block."""
        with self._lock:
            self.outstanding -= 1
            self._block += 1

    def done(self) -> bool:
        """Every ticket this worker will get has its outcome."""
        return self.spent.is_set() and self.outstanding == 0

    def give_back_unused(self) -> None:
        """A worker left with no users hands its unused tickets to the others."""
        with self._lock:
            if self._block:
                self._tickets.give_back(self._block, self._slot)
                self._block = 0

    def remaining(self) -> int:
        """Requests of `--requests` nobody has sent yet (this worker's unused block included)."""
        with self._lock:
            block = self._block
        return max(self._quota - self._tickets.taken(), 0) + block

    def exhausted(self) -> bool:
        """All of `--requests` taken by some worker, and none of ours still without an outcome."""
        with self._lock:
            mine_settled = not self._block and self.outstanding == 0
        return mine_settled and self._tickets.taken() >= self._quota
