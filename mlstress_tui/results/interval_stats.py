"""What happened in one interval, and one helper that merges ticks into longer windows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlstress_tui.results.histogram import LatencyHistogram
from mlstress_tui.results.kinds import CLOSED, LoadMode, RunEvent
# A wake-up of the workers' 5 ms timer this late is a stall of the harness or the machine (Ctrl-Z, a
# VM pause, swapping), not the jitter the lag percentiles describe.
STALL_MS = 50.0
# A stall longer than a tick is a stop (Ctrl-Z, SIGSTOP, a VM pause), not CPU starvation; when every worker
# stood still that long, the time is not load time.
STOP_MS = 250.0
# An interval shorter than this (the sliver at the end of a run) has too little time to divide by.
MIN_RATE_INTERVAL_S = 0.01


@dataclass
class UserGroupStats:
    """One group of users in an interval (a stratum of event count, or an edge class): exact counts, not a sample."""

    requests: int = 0
    events_sum: int = 0
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    # The failed requests' own latencies (a part of `latency`): a failure is past any budget, whatever its time.
    failed_latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    # Kept for a target's paths only (a few groups); strata and edge classes ship latency alone, every tick.
    service: LatencyHistogram | None = None
    pool_wait: LatencyHistogram | None = None

    @property
    def errors(self) -> int:
        return sum(self.errors_by_kind.values())

    @property
    def mean_events(self) -> float:
        return self.events_sum / self.requests if self.requests else 0.0

    def merge(self, other: UserGroupStats) -> None:
        self.requests += other.requests
        self.events_sum += other.events_sum
        for kind, count in other.errors_by_kind.items():
            self.errors_by_kind[kind] = self.errors_by_kind.get(kind, 0) + count
        self.latency.merge(other.latency)
        self.failed_latency.merge(other.failed_latency)
        for name in ("service", "pool_wait"):
            theirs = getattr(other, name)
            if theirs is not None:
                mine = getattr(self, name)
                if mine is None:
                    mine = LatencyHistogram()
                    setattr(self, name, mine)
                mine.merge(theirs)


def group_stats(keys: np.ndarray, latency_ns: np.ndarray, event_counts: np.ndarray,
                kinds: np.ndarray | None, kind_names: Sequence[str] = (), *,
                service_ns: np.ndarray | None = None, wait_ns: np.ndarray | None = None) -> dict[int, UserGroupStats]:
    """Requests split by group key (negative keys belong to no group).

    `kinds` holds each request's error kind as a code into `kind_names` (0: ok),
    or is None when none failed.
    """
    order = np.argsort(keys, kind="stable")
    present, starts = np.unique(keys[order], return_index=True)
    ends = np.append(starts[1:], len(order))
    groups: dict[int, UserGroupStats] = {}
    for key, start, end in zip(present.tolist(), starts.tolist(), ends.tolist()):
        if key < 0:
            continue
        members = order[start:end]
        group = UserGroupStats(requests=end - start, events_sum=int(event_counts[members].sum()))
        latency = latency_ns[members]
        group.latency.record_many(latency)
        if service_ns is not None and wait_ns is not None:
            group.service, group.pool_wait = LatencyHistogram(), LatencyHistogram()
            group.service.record_many(service_ns[members])
            group.pool_wait.record_many(wait_ns[members])
        if kinds is not None:
            codes = kinds[members]
            did_fail = codes != 0
            if did_fail.any():
                by_kind = np.bincount(codes[did_fail])
                group.errors_by_kind = {kind_names[code]: int(by_kind[code])
                                        for code in np.flatnonzero(by_kind).tolist()}
                group.failed_latency.record_many(latency[did_fail])
        groups[key] = group
    return groups


def _merge_groups(mine: dict[Any, UserGroupStats], theirs: dict[Any, UserGroupStats]) -> None:
    for key, group in theirs.items():
        if key in mine:
            mine[key].merge(group)
        else:
            mine[key] = UserGroupStats()
            mine[key].merge(group)


@dataclass
class IntervalStats:
    """What happened in one interval: counters, errors, three histograms and a scatter sample.

    Workers send one per tick; the collector merges the workers' ticks into one,
    and ticks into longer intervals, with `merge`.
    """

    index: int
    t_start: float
    t_end: float
    mode: LoadMode = CLOSED
    concurrency: int = 0
    rate: float | None = None
    requests: int = 0
    ok: int = 0
    late_starts: int = 0
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    last_error: dict[str, str] = field(default_factory=dict)
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    service: LatencyHistogram = field(default_factory=LatencyHistogram)
    pool_wait: LatencyHistogram = field(default_factory=LatencyHistogram)
    # How late the workers' own timer wakes up (jHiccup-style): delay the harness or
    # the machine adds to every request, whatever the target does.
    hiccup: LatencyHistogram = field(default_factory=LatencyHistogram)
    # (event_count, latency_ms) pairs: a bounded random sample of this interval's requests.
    scatter: np.ndarray = field(default_factory=lambda: np.empty((0, 2), dtype=np.float64))
    worker_cpu: float = 0.0
    # The load was paused for this whole interval: idle by choice, not a stalled system.
    paused: bool = False
    # Faults, counted rather than lost: calls that returned after being recorded as timeouts,
    # calls still running at the very end (neither ok nor an error), open-loop requests due
    # but never sent, and (gauges) users stuck in the target, calls in flight, users running.
    late_returns: int = 0
    unfinished: int = 0
    unsent: int = 0
    unsent_wait: LatencyHistogram = field(default_factory=LatencyHistogram)
    stuck_users: int = 0
    inflight: int = 0
    users_running: int = 0
    # Lines the target wrote to stdout/stderr/logging (they go to target.log, never the screen), and those dropped
    # because target.log could not be written (a full disk): counted, never blocking the target.
    output_lines: int = 0
    output_dropped: int = 0
    # The commanded level every worker ran at throughout; None while a change was still being applied.
    level_id: int | None = None
    # When each worker stood still (its timer woke STOP_MS or more late): (from, to) in seconds since the start,
    # by worker; every worker that reported is a key. Time in which every worker stood still is not load time;
    # one worker stopped is not a stop of the run.
    stop_spans: dict[int, list[tuple[float, float]]] = field(default_factory=dict)
    # Control events (level changes, pauses, ramp steps) that happened in this interval.
    events: list[RunEvent] = field(default_factory=list)
    # Exact per-group counts: strata of event count (when the population has them) and edge classes (edge mix).
    strata: dict[int, UserGroupStats] = field(default_factory=dict)
    edge_classes: dict[int, UserGroupStats] = field(default_factory=dict)
    # A target with several paths (a cache in front of a database): each path's requests, errors and latency.
    paths: dict[str, UserGroupStats] = field(default_factory=dict)
    # Open loop: arrivals that fell in a pause (not owed, counted so that every arrival is in some field).
    paused_arrivals: int = 0
    # Requests whose user held a connection of its own (no pool between them: pool wait 0 by construction).
    owned_requests: int = 0

    @property
    def errors(self) -> int:
        return self.requests - self.ok

    @property
    def duration_s(self) -> float:
        return max(self.t_end - self.t_start, 1e-9)

    @property
    def throughput_rps(self) -> float:
        """Requests over the interval's length; 0 for a sliver too short to divide by."""
        if self.t_end - self.t_start < MIN_RATE_INTERVAL_S:
            return 0.0
        return self.requests / self.duration_s

    @property
    def connections_owned(self) -> bool:
        """Every request ran on its user's own connection: pool wait is 0 by construction, not a measured 0."""
        return self.requests > 0 and self.owned_requests == self.requests

    def harness_stall_ms(self) -> float | None:
        """How long the harness stalled in this interval, when it stalled longer than the median latency it measured."""
        longest = self.hiccup.max_ns / 1e6
        if longest < STALL_MS:
            return None
        median = self.latency.percentile_ms(50)
        return longest if median is None or longest >= median else None

    def merge_worker(self, other: IntervalStats) -> None:
        """Add another worker's share of the same interval (loads add up)."""
        self.concurrency += other.concurrency
        if other.rate is not None:
            self.rate = (self.rate or 0.0) + other.rate
        self.mode = other.mode
        self.worker_cpu = max(self.worker_cpu, other.worker_cpu)
        self.paused = self.paused and other.paused
        if other.level_id != self.level_id:
            self.level_id = None
        self.stuck_users += other.stuck_users
        self.inflight += other.inflight
        self.users_running += other.users_running
        self.events.extend(other.events)
        self._add_counts(other, keep_groups=True)

    def merge_later(self, other: IntervalStats, *, keep_scatter: bool = True, keep_groups: bool = False) -> None:
        """Extend this interval by the next one (the load is the later one's)."""
        self.t_end = max(self.t_end, other.t_end)
        self.mode, self.concurrency, self.rate = other.mode, other.concurrency, other.rate
        self.worker_cpu = max(self.worker_cpu, other.worker_cpu)
        self.paused = self.paused and other.paused
        if other.level_id != self.level_id:
            self.level_id = None
        self.events.extend(other.events)
        # Gauges: the worst moment of the window for stuck users, the latest for the rest.
        self.stuck_users = max(self.stuck_users, other.stuck_users)
        self.inflight, self.users_running = other.inflight, other.users_running
        self._add_counts(other, keep_scatter=keep_scatter, keep_groups=keep_groups)

    def _add_counts(self, other: IntervalStats, *, keep_scatter: bool = True, keep_groups: bool = False) -> None:
        self.requests += other.requests
        self.ok += other.ok
        self.late_starts += other.late_starts
        self.late_returns += other.late_returns
        self.unfinished += other.unfinished
        self.unsent += other.unsent
        self.unsent_wait.merge(other.unsent_wait)
        self.output_lines += other.output_lines
        self.output_dropped += other.output_dropped
        for kind, count in other.errors_by_kind.items():
            self.errors_by_kind[kind] = self.errors_by_kind.get(kind, 0) + count
        self.last_error.update(other.last_error)
        self.latency.merge(other.latency)
        self.service.merge(other.service)
        self.pool_wait.merge(other.pool_wait)
        self.hiccup.merge(other.hiccup)
        if keep_scatter and len(other.scatter):
            self.scatter = np.concatenate([self.scatter, other.scatter])
        self.paused_arrivals += other.paused_arrivals
        self.owned_requests += other.owned_requests
        for worker, spans in other.stop_spans.items():
            self.stop_spans.setdefault(worker, []).extend(spans)
        _merge_groups(self.paths, other.paths)
        if keep_groups:
            _merge_groups(self.strata, other.strata)
            _merge_groups(self.edge_classes, other.edge_classes)

    def to_json(self) -> dict[str, Any]:
        """One `intervals.jsonl` line (design.md)."""
        line: dict[str, Any] = {
            "t": round(self.t_end, 3),
            "mode": self.mode.value,
            # The commanded level this line belongs to; null while a change was being applied.
            "level_id": self.level_id,
            "concurrency": self.concurrency if self.mode == CLOSED else None,
            "rate": None if self.rate is None or self.mode == CLOSED else round(self.rate, 3),
            "requests": self.requests,
            "errors": self.errors,
            "errors_by_kind": dict(self.errors_by_kind),
            "late_starts": self.late_starts,
            "throughput_rps": round(self.throughput_rps, 3),
            "latency_ms": self.latency.summary_ms(),
            "service_ms": self.service.summary_ms(),
            "pool_wait_ms": self.pool_wait.summary_ms(),
            "hiccup_ms": self.hiccup.summary_ms(),
            "worker_cpu": round(self.worker_cpu, 3),
            "stuck_users": self.stuck_users,
        }
        for key in ("late_returns", "unfinished", "unsent", "paused_arrivals", "output_lines", "output_dropped"):
            if getattr(self, key):
                line[key] = getattr(self, key)
        if self.paused:
            line["paused"] = True
        if self.connections_owned:
            line["connections"] = "owned"  # pool_wait_ms is 0 by construction: no pool was in the way
        stall = self.harness_stall_ms()
        if stall is not None:
            # This interval's latencies include the stall: marked so that no one reads it as the target's.
            line["harness_stall_ms"] = round(stall, 3)
        if self.paths:
            line["paths"] = {name: {"requests": group.requests, "errors": group.errors,
                                    "p95_ms": group.latency.percentile_ms(95)} for name, group in self.paths.items()}
        if self.events:
            line["events"] = [event.to_json() for event in self.events]
        return line


def merge_ticks(ticks: Iterable[IntervalStats], *, keep_scatter: bool = False) -> IntervalStats | None:
    """Consecutive ticks as one interval (its load is the last tick's); None for no ticks."""
    merged = None
    for tick in ticks:
        if merged is None:
            merged = IntervalStats(index=tick.index, t_start=tick.t_start, t_end=tick.t_start,
                                   level_id=tick.level_id, paused=tick.paused)
        merged.merge_later(tick, keep_scatter=keep_scatter)
    return merged


class WindowMerger:
    """Merges a stream of ticks into consecutive windows of `window_s` seconds (report lines, progress lines).

    A window never spans two commanded levels: a tick of another level closes the
    window before it, so every line belongs to one level (or to none, mid-change).
    """

    def __init__(self, window_s: float = 1.0) -> None:
        self.window_s = window_s
        self._ticks: list[IntervalStats] = []
        self.windows = 0

    def add(self, tick: IntervalStats) -> IntervalStats | None:
        """Take one tick; the merged window when this tick closes it (or the one before it), else None."""
        closed = None
        if self._ticks and tick.level_id != self._ticks[-1].level_id:
            closed = self.flush()
        self._ticks.append(tick)
        if tick.t_end - self._ticks[0].t_start >= self.window_s - 1e-6:
            if closed is not None:
                # Both close on this tick: the first now, this one with the next tick (it is a window already).
                return closed
            return self.flush()
        return closed

    def flush(self) -> IntervalStats | None:
        """Whatever is left as a (shorter) window; None when nothing is."""
        merged = merge_ticks(self._ticks)
        self._ticks = []
        if merged is not None:
            merged.index = self.windows
            self.windows += 1
        return merged


def stopped_together_s(spans: dict[int, list[tuple[float, float]]]) -> float:
    """Seconds in which every worker stood still at once: the length of the intersection of their stop spans."""
    if not spans:
        return 0.0
    common: list[tuple[float, float]] | None = None
    for worker_spans in spans.values():
        mine = _union(worker_spans)
        common = mine if common is None else _intersect(common, mine)
        if not common:
            return 0.0
    return sum(end - start for start, end in common or [])


def _union(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _intersect(left: list[tuple[float, float]], right: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    i = j = 0
    while i < len(left) and j < len(right):
        start, end = max(left[i][0], right[j][0]), min(left[i][1], right[j][1])
        if start < end:
            out.append((start, end))
        if left[i][1] < right[j][1]:
            i += 1
        else:
            j += 1
    return out
