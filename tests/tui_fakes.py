"""A deterministic stand-in for the load engine: seeded ticks, recorded commands, a fixed clock."""

from __future__ import annotations

import dataclasses
import math
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from mlstress_tui.load.levels import CommandedLevel
from mlstress_tui.load.limits import clamp_level
from mlstress_tui.load.user_strata import build_strata
from mlstress_tui.results.interval_stats import IntervalStats, group_stats
from mlstress_tui.results.kinds import EventKind, LoadMode
from mlstress_tui.session import RunSession
from mlstress_tui.session.engine_protocol import Engine

TICK_S = 0.25
# Below about 12 concurrent users the modelled system keeps up; past it, requests queue.
CAPACITY_USERS = 12
BASE_SERVICE_MS = 2.0
SQLITE_TARGET = {"kind": "sqlite", "label": "default.sqlite", "users": 100_000, "events": 4_500_000, "seed": 42}


# Event counts of the fake population, drawn like the fake requests' (heavy-tailed), and its strata.
POPULATION = np.minimum(np.floor(np.random.default_rng(11).pareto(1.1, 20_000) * 20), 200_000).astype(np.int64)
STRATA = tuple(build_strata(POPULATION))
STRATA_EDGES = np.array([stratum.min_events for stratum in STRATA], dtype=np.int64)

def make_tick(index: int, *, mode: str, concurrency: int, rate: float | None, pool_size: int | None,
              seed: int = 7, tick_s: float = TICK_S, max_requests: int = 4000, level_id: int | None = 0) -> IntervalStats:
    """One 0.25 s tick of a modelled service whose latency climbs past CAPACITY_USERS; same inputs, same tick."""
    rng = np.random.default_rng([seed, index])
    load = concurrency if mode == "closed" else (rate or 0.0) * BASE_SERVICE_MS / 1000
    queueing = max(1.0, load / CAPACITY_USERS) ** 2
    mean_ms = BASE_SERVICE_MS * queueing
    if mode == "closed":
        requests = int(concurrency / (mean_ms / 1000) * tick_s)
    else:
        requests = int(min(rate or 0.0, CAPACITY_USERS * 1000 / BASE_SERVICE_MS) * tick_s)
    requests = max(1, min(requests, max_requests))
    events = np.minimum(np.floor(rng.pareto(1.1, requests) * 20), 200_000).astype(np.int64)
    latency_ms = rng.lognormal(math.log(mean_ms), 0.25, requests) + events * 0.0002
    service_ms = latency_ms / queueing
    pool_wait_ms = np.where(
        pool_size is not None and concurrency > (pool_size or 0), latency_ms - service_ms, rng.exponential(0.01, requests)
    )
    tick = IntervalStats(index=index, t_start=index * tick_s, t_end=(index + 1) * tick_s, mode=LoadMode(mode),
                         concurrency=concurrency, rate=rate, requests=requests, level_id=level_id,
                         users_running=concurrency if mode == "closed" else 0)
    timeouts = int((latency_ms > 60).sum())
    missing = int(rng.random() < 0.05)
    errors = min(requests, timeouts + missing)
    tick.ok = requests - errors
    if timeouts:
        tick.errors_by_kind["timeout"] = timeouts
        tick.last_error["timeout"] = "request took longer than the 0.06 s timeout"
    if missing:
        tick.errors_by_kind["missing_user"] = missing
        tick.last_error["missing_user"] = f"user USR{index:08d} does not exist"
    tick.latency.record_many((latency_ms * 1e6).astype(np.int64))
    tick.service.record_many((service_ms * 1e6).astype(np.int64))
    tick.pool_wait.record_many((pool_wait_ms * 1e6).astype(np.int64))
    # The workers' timer: 50 wake-ups a tick, a little late, later under heavy load.
    tick.hiccup.record_many((rng.exponential(0.05 * queueing, 50) * 1e6).astype(np.int64))
    tick.strata = group_stats(np.searchsorted(STRATA_EDGES, events, side="right") - 1,
                              (latency_ms * 1e6).astype(np.int64), events, None)
    take = rng.choice(requests, size=min(requests, 40), replace=False)
    tick.scatter = np.column_stack([events[take].astype(np.float64), latency_ms[take]])
    if mode == "open":
        tick.late_starts = int(max(0.0, (rate or 0.0) * tick_s - requests))
    return tick


class FakeEngine:
    """The engine API a run session drives, with every command recorded and nothing running.

    `script` is a list of (concurrency, ticks) steps served by the first `poll()`, so a test
    sees a whole run's history at once; `live=True` instead produces ticks as wall time passes,
    at the current level (for the benchmark and for looking at the app by hand); `ticks_per_poll`
    produces that many ticks at the current level on every poll, wall time aside (a ramp in a test).
    """

    def __init__(self, run_dir: Path, *, script: list[tuple[int, int]] | None = None, live: bool = False,
                 mode: str = "closed", concurrency: int = 16, rate: float | None = None,
                 pool_size: int | None = 16, elapsed_s: float = 83.5, finished: bool = False,
                 target_info: dict[str, Any] | None = None, duration_s: float | None = None,
                 requests_limit: int | None = None, seed: int = 7, ticks_per_poll: int = 0) -> None:
        self.run_dir = Path(run_dir)
        self.mode = LoadMode(mode)
        self.concurrency = concurrency
        self.rate = rate
        self.pool_size = pool_size
        self.target_info = dict(target_info if target_info is not None else SQLITE_TARGET)
        self.duration_s = duration_s
        self.requests_limit = requests_limit
        self.state = "finished" if finished else "running"
        self.finished = finished
        self.calls: list[tuple[str, Any]] = []
        self.notes: list[tuple[str, dict[str, Any]]] = []
        self.finish_calls = 0
        self.level_id = 0
        self.worker_count = 2
        # The population the fake requests' event counts come from: the heavy-user panel has strata to fill.
        self.population_event_counts = POPULATION
        self.strata = STRATA
        self.edge_class_sizes: dict[str, int] = {}
        self.started_at = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
        self.polls = 0
        self._fixed_elapsed = None if live else elapsed_s
        self._live = live
        self._seed = seed
        self._started = time.monotonic()
        self._index = 0
        self._pending: list[IntervalStats] = []
        # Live ticks repeat a few seeded ones per level, so producing them costs (almost) nothing.
        self._live_ticks: dict[tuple[str, float, int], IntervalStats] = {}
        self.requests_served = 0
        self.ticks_per_poll = ticks_per_poll
        for level_id, (concurrency_level, ticks) in enumerate(script or []):
            for _ in range(ticks):
                self._pending.append(self._tick(mode="closed", concurrency=concurrency_level, rate=None,
                                                level_id=level_id))
        self.level_id = max(len(script or []) - 1, 0)

    def _tick(self, *, mode: str, concurrency: int, rate: float | None, level_id: int) -> IntervalStats:
        tick = make_tick(self._index, mode=mode, concurrency=concurrency, rate=rate, pool_size=self.pool_size,
                         seed=self._seed, level_id=level_id)
        self._index += 1
        return tick

    def _live_tick(self) -> IntervalStats:
        level = float(self.rate or 0.0) if self.mode == "open" else float(self.concurrency)
        key = (self.mode, level, self._index % 8)
        base = self._live_ticks.get(key)
        if base is None:
            base = self._live_ticks[key] = make_tick(key[2], mode=self.mode, concurrency=self.concurrency,
                                                     rate=self.rate, pool_size=self.pool_size, seed=self._seed)
        tick = dataclasses.replace(base, index=self._index, t_start=self._index * TICK_S,
                                   t_end=(self._index + 1) * TICK_S, level_id=self.level_id, events=[])
        self._index += 1
        return tick

    @property
    def elapsed_s(self) -> float:
        if self._fixed_elapsed is not None:
            return self._fixed_elapsed
        return time.monotonic() - self._started

    @property
    def paused_s(self) -> float:
        return 0.0

    @property
    def level(self) -> CommandedLevel:
        return CommandedLevel(self.level_id, self.mode, self.concurrency, self.rate if self.mode == "open" else None,
                              self.pool_size)

    def commanded(self, level_id: int) -> CommandedLevel | None:
        return self.level if level_id == self.level_id else None

    # Commands: recorded, applied at once; a change opens a level, as the real engine's do.
    def start(self, on_waiting: Any = None) -> None:
        self.calls.append(("start", None))

    def set_concurrency(self, n: float, at_s: float | None = None) -> None:
        self.calls.append(("set_concurrency", n))
        n = int(clamp_level(LoadMode.CLOSED, n))
        if n != self.concurrency:
            self.concurrency = n
            self.level_id += 1

    def set_rate(self, r: float, at_s: float | None = None) -> None:
        self.calls.append(("set_rate", r))
        if r != self.rate:
            self.rate = r
            self.level_id += 1

    def set_mode(self, mode: LoadMode, rate: float | None = None) -> None:
        self.calls.append(("set_mode", mode))
        if mode == "open" and self.mode != "open":
            self.rate = round(float(rate), 1) if rate else float(self.concurrency * 1000 / BASE_SERVICE_MS / 2)
        self.mode = LoadMode(mode)
        self.level_id += 1

    def note(self, kind: EventKind, **details: Any) -> None:
        self.notes.append((kind.value, details))

    def pause(self) -> None:
        self.calls.append(("pause", None))
        self.state = "paused"

    def resume(self) -> None:
        self.calls.append(("resume", None))
        self.state = "running"

    def stop(self) -> None:
        self.calls.append(("stop", None))
        self.state = "stopping"

    def poll(self) -> list[IntervalStats]:
        self.polls += 1
        ticks, self._pending = self._pending, []
        if self.ticks_per_poll and self.state in ("running", "ramping"):
            for _ in range(self.ticks_per_poll):
                ticks.append(self._tick(mode=self.mode, concurrency=self.concurrency,
                                        rate=self.rate if self.mode == "open" else None, level_id=self.level_id))
        if self._live and self.state in ("running", "ramping"):
            due = int(self.elapsed_s / TICK_S)
            while self._index < due:
                ticks.append(self._live_tick())
        elif self._live:
            self._index = max(self._index, int(self.elapsed_s / TICK_S))
        self.requests_served += sum(tick.requests for tick in ticks)
        return ticks

    def finish(self) -> None:
        self.finish_calls += 1
        self.calls.append(("finish", None))
        self.state = "finished"
        self.finished = True

    def faults(self) -> dict[str, Any]:
        return {"worker_deaths": [], "requests_lost": 0, "silent_workers": []}

    def load_description(self) -> dict[str, Any]:
        level = self.level
        return {"mode": level.mode.value, "concurrency": level.concurrency, "rate": level.rate,
                "pool_size": level.pool,
                "final": {"mode": level.mode.value, "concurrency": level.concurrency, "rate": level.rate,
                          "pool_size": level.pool, "in_flight_limit": level.in_flight_limit}}

    def node_report(self) -> list[dict[str, Any]] | None:
        return None

    def offered_arrivals(self) -> float | None:
        return None

    def finish_on_next_poll(self) -> None:
        """Make the run end by itself, as a bounded run does."""
        self.state = "finished"
        self.finished = True


# A run that visited four levels, the last past the knee: enough for every chart to have a shape.
HISTORY = [(4, 8), (8, 8), (16, 12), (32, 8), (16, 6)]


def fake_session(engine: Engine, *, sla_p95_ms: float = 200.0) -> RunSession:
    """A real run session around the fake engine, started: what the dashboard is given."""
    assert isinstance(engine, FakeEngine)
    session = RunSession(engine, run_dir=engine.run_dir, sla_p95_ms=sla_p95_ms, seed=engine._seed,
                         database={"users": 100_000, "events": 4_500_000, "seed": 42})
    session.start()
    return session


# The fake is held to the engine protocol the session declares (mypy checks this line; see test_architecture).
_checked: type[Engine] = FakeEngine


async def until(pilot, condition, *, tries: int = 200, step: float = 0.02) -> None:
    """Wait for a condition the app reaches on its own clock (never a fixed sleep standing in for it)."""
    for _ in range(tries):
        if condition():
            return
        await pilot.pause(step)
    assert condition(), "the condition never held"


# Four levels of six seconds each: enough clean seconds a level for compare's rank test.
FINISHED_SCRIPT = [(4, 24), (8, 24), (16, 24), (32, 24)]


def finished_run_dir(run_dir: Path, *, service_ms: float = BASE_SERVICE_MS, seed: int = 7,
                     target: dict[str, Any] | None = None) -> Path:
    """A run directory written by a real session around the seeded fake engine, its target `service_ms` fast."""
    global BASE_SERVICE_MS
    kept, BASE_SERVICE_MS = BASE_SERVICE_MS, service_ms
    try:
        engine = FakeEngine(run_dir, script=FINISHED_SCRIPT, concurrency=32, elapsed_s=24.0, finished=True,
                            duration_s=24.0, seed=seed, target_info=target)
        fake_session(engine).finish()
    finally:
        BASE_SERVICE_MS = kept
    return run_dir

