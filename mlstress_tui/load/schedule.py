"""When each open-loop request is due: a piecewise-constant arrival rate, no queue in memory."""

from __future__ import annotations

import math
import threading
from collections import deque

import numpy as np

from mlstress_tui.results.histogram import LatencyHistogram

UNIFORM = "uniform"
POISSON = "poisson"
ARRIVALS = (UNIFORM, POISSON)
_DRAWS = 1024


class ArrivalSchedule:
    """Each request has a position on the arrival curve and is due when the curve reaches it.

    Uniform arrivals put request i at position i (wrk2-style constant rate). Poisson
    arrivals space positions by seeded unit exponentials: mapped through the same
    piecewise-rate curve, that is a Poisson process at the asked-for mean rate, bursty
    as production traffic is, so queueing shows before the very edge of capacity.
    Requests are claimed in order, so a backlog costs no memory however long the
    system falls behind; a rate change bends the curve from that instant on and
    keeps what was already due.

    A pause ends an epoch: the backlog due by then is dropped (and counted as
    unsent), claims not yet due are void (not owed), and the arrivals that fall
    in the pause are not owed either (counted as paused). A resume starts the
    curve again from the resume instant at the rate asked for.
    """

    def __init__(self, rate: float, start_ns: int, *, arrivals: str = UNIFORM, seed: object = None,
                 phase: float = 0.0) -> None:
        self._lock = threading.Lock()
        # (time_ns, arrivals at that time, rate per second) from which the curve continues.
        self._segments: deque[tuple[int, float, float]] = deque([(start_ns, 0.0, rate)], maxlen=256)
        self._rng = np.random.default_rng(seed) if arrivals == POISSON else None  # type: ignore[arg-type]
        self._gaps: list[float] = []
        # Uniform: the next request's position; Poisson: the last claimed one's (the next lies one gap on).
        # `phase` (worker i of W: i/W) interleaves workers' uniform schedules into the run's one schedule.
        self._position = phase if arrivals == UNIFORM else 0.0
        self._returned: list[float] = []  # claimed, then not sent (the run stopped first)
        self._paused_at: int | None = None
        self._rate_before_pause = rate
        # Claims made in an earlier epoch (before a pause) are void.
        self.epoch = 0

    @property
    def rate(self) -> float:
        return self._rate_before_pause if self._paused_at is not None else self._segments[-1][2]

    def _arrivals_at(self, now_ns: int) -> float:
        time_ns, arrivals, rate = self._segments[-1]
        return arrivals + max(now_ns - time_ns, 0) * rate / 1e9

    def set_rate(self, rate: float, now_ns: int) -> None:
        with self._lock:
            if self._paused_at is not None:
                self._rate_before_pause = rate  # taken up at the resume
                return
            self._segments.append((now_ns, self._arrivals_at(now_ns), rate))

    def pause(self, now_ns: int) -> tuple[int, LatencyHistogram]:
        """Stop the curve; the backlog due by now and never sent is dropped: (how many, how long each had waited)."""
        with self._lock:
            if self._paused_at is not None:
                return 0, LatencyHistogram()
            backlog, waits = self._owed_locked(now_ns)
            due = self._arrivals_at(now_ns)
            if self._rng is None:
                self._position += max(math.ceil(due - self._position), 0)
            else:
                self._position = max(self._position, due)
            self._returned = []
            self._rate_before_pause = self._segments[-1][2]
            self._segments.append((now_ns, due, 0.0))
            self._paused_at = now_ns
            self.epoch += 1
        return backlog, waits

    def resume(self, rate: float, now_ns: int) -> int:
        """Start the curve again from now at `rate`; the arrivals that fell in the pause (not owed) are returned."""
        with self._lock:
            if self._paused_at is None:
                return 0
            missed = int((now_ns - self._paused_at) * self._rate_before_pause / 1e9)
            # The next position to claim is due at once, the ones after it at the rate asked for.
            self._segments.append((now_ns, self._position, rate))
            self._paused_at = None
            self.epoch += 1
        return missed

    def claim(self) -> tuple[float, int]:
        """The position of the next request to send (for `due_ns`) and the epoch it was claimed in."""
        with self._lock:
            if self._rng is None:
                position = self._position
                self._position += 1.0
                return position, self.epoch
            if not self._gaps:
                self._gaps = self._rng.exponential(1.0, _DRAWS).tolist()
            self._position += self._gaps.pop()
            return self._position, self.epoch

    def unclaim(self, position: float, epoch: int) -> None:
        """A claimed request that was never sent: owed, like the ones never claimed (unless a pause voided it)."""
        with self._lock:
            if epoch == self.epoch:
                self._returned.append(position)

    def owed_at(self, now_ns: int) -> tuple[int, LatencyHistogram]:
        """Requests due by `now_ns` and never sent, and how long each had waited by then (a lower bound)."""
        with self._lock:
            if self._paused_at is not None:
                return 0, LatencyHistogram()  # dropped at the pause, and counted then
            return self._owed_locked(now_ns)

    def _owed_locked(self, now_ns: int) -> tuple[int, LatencyHistogram]:
        due = self._arrivals_at(now_ns)
        if self._rng is None:
            first = self._position
        else:
            # Poisson: the expected number of arrivals after the last claimed one, evenly spread.
            first = self._position + 1.0
        # Due strictly before `now_ns`: an arrival due at the very instant belongs to what comes next.
        count = max(math.ceil(due - first), 0)
        returned = [position for position in self._returned if position < due]
        waits = LatencyHistogram()
        done = 0
        while done < count:  # in chunks: an hour of overload can owe millions
            chunk = np.arange(done, min(done + 1_000_000, count), dtype=np.float64) + first
            due_ns = self._due_many(chunk)
            waits.record_many((now_ns - due_ns[np.isfinite(due_ns)]).astype(np.int64))
            done += len(chunk)
        returned_due = [self._due(position) for position in returned]
        finite = [now_ns - due_ns for due_ns in returned_due if math.isfinite(due_ns) and due_ns < now_ns]
        if finite:
            waits.record_many(np.array(finite, dtype=np.int64))
        return count + len(finite), waits

    def _due_many(self, positions: np.ndarray) -> np.ndarray:
        """`due_ns` for many positions at once (the backlog at the end of a run); inf where never due."""
        due = np.full(len(positions), np.inf)
        assigned = np.zeros(len(positions), dtype=bool)
        for time_ns, arrivals, rate in reversed(self._segments):
            here = ~assigned & (positions >= arrivals)
            if rate > 0:
                due[here] = time_ns + (positions[here] - arrivals) * 1e9 / rate
            assigned |= here
        time_ns, arrivals, rate = self._segments[0]
        if rate > 0:
            due[~assigned] = time_ns + (positions[~assigned] - arrivals) * 1e9 / rate
        return due

    def due_ns(self, index: float) -> float:
        """When the request at position `index` is due (perf_counter_ns); inf while paused."""
        return self._due(index)

    def _due(self, index: float) -> float:
        # A copy taken in one C call: another thread's rate change cannot mutate it while it is read.
        segments = tuple(self._segments)
        for time_ns, arrivals, rate in reversed(segments):
            if index >= arrivals:
                return time_ns + (index - arrivals) * 1e9 / rate if rate > 0 else math.inf
        time_ns, arrivals, rate = segments[0]
        return time_ns + (index - arrivals) * 1e9 / rate if rate > 0 else time_ns
