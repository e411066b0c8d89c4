"""The workers' ticks of each index merged into one tick of the run, once every live worker's share is in.

Histograms add exactly; the load a tick reports is the level commanded, never
a sum of workers caught half-way through a change. A harness stall is found
here, once, and travels on the tick as an event to every consumer: where it
happened, how long, and which workers stood still.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from mlstress_tui.load.levels import CommandedLevels
from mlstress_tui.results.interval_stats import STALL_MS, STOP_MS, IntervalStats
from mlstress_tui.results.kinds import EventKind, RunEvent
from mlstress_tui.results.node_figures import NodeFigures

MAX_QUEUED_TICKS = 4096


@dataclass
class _Pending:
    merged: IntervalStats
    reported: set[int] = field(default_factory=set)
    stalls_ms: dict[int, float] = field(default_factory=dict)


class TickCollector:
    """Gathers worker ticks by index, emits each merged tick when complete, and keeps what each slot last said."""

    def __init__(self, levels: CommandedLevels, node_of: Callable[[int], str]) -> None:
        self._levels = levels
        self._node_of = node_of
        self._pending: dict[int, _Pending] = {}
        self._out: deque[IntervalStats] = deque(maxlen=MAX_QUEUED_TICKS)
        self._events: list[RunEvent] = []
        self._lock = threading.Lock()
        self._emitted_up_to = -1
        # What each slot said last (the supervisor reads these when a slot dies or goes silent).
        self.requests_by_slot: dict[int, int] = {}
        self.last_inflight: dict[int, int] = {}
        self.last_users: dict[int, int] = {}
        self.last_heard: dict[int, float] = {}
        self.node_figures: dict[str, NodeFigures] = {}
        # Levels a slot was lost during: their ticks lack its share, so they count as no level.
        self.partial_levels: set[int] = set()

    def note(self, event: RunEvent) -> None:
        """An engine event; it travels with the next tick emitted."""
        with self._lock:
            self._events.append(event)

    def heard(self, worker: int) -> None:
        self.last_heard[worker] = time.monotonic()

    def add(self, worker: int, tick: IntervalStats) -> None:
        """One worker's share of a tick (a late share of an index already emitted joins the next one)."""
        self.heard(worker)
        index = max(tick.index, self._emitted_up_to + 1)
        pending = self._pending.get(index)
        if pending is None:
            pending = self._pending[index] = _Pending(IntervalStats(
                index=index, t_start=tick.t_start, t_end=tick.t_end, mode=tick.mode, paused=tick.paused,
                level_id=tick.level_id))
        if index != tick.index:
            tick.level_id = None  # it belongs to an interval already gone: the load it reports is not this one's
        pending.merged.merge_worker(tick)
        pending.merged.t_start = min(pending.merged.t_start, tick.t_start)
        pending.merged.t_end = max(pending.merged.t_end, tick.t_end)
        pending.reported.add(worker)
        pending.stalls_ms[worker] = max(pending.stalls_ms.get(worker, 0.0), tick.hiccup.max_ns / 1e6)
        with self._lock:
            self.node_figures.setdefault(self._node_of(worker), NodeFigures()).add(tick)
        self.requests_by_slot[worker] = self.requests_by_slot.get(worker, 0) + tick.requests
        self.last_inflight[worker] = tick.inflight
        self.last_users[worker] = tick.users_running

    def forget(self, worker: int) -> None:
        """A slot that will send no more ticks (dead, lost or silent): complete ticks without it."""
        for pending in self._pending.values():
            pending.reported.discard(worker)

    def emit(self, expected: set[int], *, complete_without: set[int], active: int, final: bool,
             silent_users: int = 0) -> None:
        """Emit every tick, oldest first, that each slot of `expected` has reported (all of them when `final`).

        `complete_without`: slots refilling or silent — a tick without their share lacks
        part of the load, so it counts as no level.
        """
        for index in sorted(self._pending):
            pending = self._pending[index]
            if not final and not expected <= pending.reported:
                break
            del self._pending[index]
            self._emitted_up_to = max(self._emitted_up_to, index)
            merged = pending.merged
            if (complete_without or len(pending.reported) < active
                    or merged.level_id in self.partial_levels):
                merged.level_id = None  # part of the load was missing: not the commanded level
            commanded = self._levels.by_id.get(merged.level_id if merged.level_id is not None
                                               else self._levels.current.level_id)
            if commanded is not None:
                merged.mode, merged.concurrency, merged.rate = commanded.mode, commanded.concurrency, commanded.rate
            merged.stuck_users += silent_users
            stall = _stall_event(merged, pending.stalls_ms)
            with self._lock:
                events, self._events = self._events, []
            merged.events = events + merged.events + ([stall] if stall is not None else [])
            self._out.append(merged)

    def take(self) -> list[IntervalStats]:
        """Ticks emitted since the last call, oldest first."""
        out = self._out
        return [out.popleft() for _ in range(len(out))]

    def leftover_events(self) -> list[RunEvent]:
        with self._lock:
            events, self._events = self._events, []
        return events


def _stall_event(merged: IntervalStats, stalls_ms: dict[int, float]) -> RunEvent | None:
    """The harness stall of this tick, when some worker's timer woke later than the median latency it measured."""
    longest = merged.harness_stall_ms()
    if longest is None:
        return None
    stalled = sorted(worker for worker, ms in stalls_ms.items() if ms >= STALL_MS)
    return RunEvent(EventKind.HARNESS_STALL, round(merged.t_start, 3),
                    {"stall_ms": round(longest, 3), "stopped": longest >= STOP_MS, "workers": stalled})
