"""What the engine and its worker slots say to each other: a worker's share of the load, and every message, typed.

Control flows one way (engine → worker: `Start`, `ApplyPlan`, `Pause`,
`Resume`, `Stop`), reports the other (worker → engine: `Ready`, `Failed`,
`TickReport`, `Crashed`, `Exited`). Both sides `match` on these classes, so a
message the other side does not know is a type error, not a string that
silently falls through.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlstress_tui.results.interval_stats import IntervalStats
from mlstress_tui.results.kinds import LoadMode

if TYPE_CHECKING:  # the session reads plans and levels without importing the targets (and their SQL)
    from mlstress_tui.load.targets import Target
    from mlstress_tui.load.users import UserSource


@dataclass(frozen=True)
class WorkerPlan:
    """One worker's share of a commanded level."""

    mode: LoadMode
    concurrency: int  # closed loop: virtual users; open loop: executors (its share of the in-flight limit)
    rate: float  # open loop: its share of the arrivals per second
    pool_size: int | None  # None: one slot per virtual user
    level_id: int = 0  # the commanded level this plan carries out; ticks are stamped with it


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker slot is for the whole run: its target, users, deadlines and where its output goes."""

    worker_id: int
    target: Target
    users: UserSource
    timeout_s: float
    tick_s: float
    requests_quota: int | None  # the run's --requests, shared by all workers through the tickets
    arrivals: str = "uniform"
    workers: int = 1  # open loop: worker i takes every `workers`-th arrival of the run's schedule, offset i
    replace_stuck: bool = True
    output_path: str | None = None  # where the target's stdout/stderr go (target.log), None to leave them
    output_cap_bytes: int = 8 * 1024 * 1024
    scatter_per_tick: int = 200
    strata_edges: tuple[int, ...] = ()  # lower event-count edge of each stratum (empty: no strata)
    duration_s: float | None = None  # --duration: every worker ends at start + duration by its own clock


# -- engine -> worker ----------------------------------------------------------


@dataclass(frozen=True)
class Start:
    """Start at `start_ns` (this machine's perf_counter_ns): the instant every slot shares."""

    start_ns: int


@dataclass(frozen=True)
class ApplyPlan:
    """Run `plan` from the tick boundary at `at_ns` (perf_counter_ns), so no tick straddles two levels."""

    plan: WorkerPlan
    at_ns: int | None = None  # None: at once


@dataclass(frozen=True)
class Pause:
    pass


@dataclass(frozen=True)
class Resume:
    pass


@dataclass(frozen=True)
class Stop:
    pass


Control = Start | ApplyPlan | Pause | Resume | Stop


# -- worker -> engine ----------------------------------------------------------


@dataclass(frozen=True)
class Ready:
    """The target is open; waiting for `Start`."""

    worker: int


@dataclass(frozen=True)
class Failed:
    """The target could not be opened here: one line saying why."""

    worker: int
    reason: str


@dataclass(frozen=True)
class TickReport:
    """One tick of this worker's stats."""

    worker: int
    tick: IntervalStats


@dataclass(frozen=True)
class Crashed:
    """The worker's own loop failed (a MemoryError, a thread that cannot start): said before it exits."""

    worker: int
    reason: str


@dataclass(frozen=True)
class Exited:
    """The worker ended cleanly after its last tick; `sigterm` when a SIGTERM (not the engine) ended it."""

    worker: int
    sigterm: bool = False


Said = Ready | Failed | TickReport | Crashed | Exited
