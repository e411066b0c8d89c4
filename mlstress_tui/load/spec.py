"""What the user asked of a run: how hard, how long and with which users, checked once before anything starts."""

from __future__ import annotations

from dataclasses import dataclass

from mlstress_tui.errors import UsageError
from mlstress_tui.load.limits import MAX_CONCURRENCY, MAX_RATE
from mlstress_tui.load.schedule import ARRIVALS
from mlstress_tui.load.users import USER_MIXES
from mlstress_tui.results.kinds import CLOSED, OPEN, LoadMode

DEFAULT_STARTUP_TIMEOUT_S = 60.0
WORKER_DEATH_POLICIES = ("replace", "stop")
NODE_LOSS_POLICIES = ("continue", "stop")


@dataclass(frozen=True)
class LoadSpec:
    """How hard, how long and with which users to drive the target."""

    mode: LoadMode = CLOSED
    concurrency: int = 4
    rate: float | None = None
    pool_size: int | None = None  # None: one slot per virtual user (closed), DEFAULT_OPEN_POOL (open)
    timeout_s: float = 5.0
    user_mix: str = "uniform"
    seed: int = 42
    duration_s: float | None = None
    requests: int | None = None
    requests_per_group: int | None = None  # stratified/edge mixes: this many requests for each group of users
    workers: int | None = None  # None: one process per core
    arrivals: str = "uniform"  # open loop: "uniform" (wrk2-style) or "poisson" (bursty, seeded)
    replace_stuck: bool = True  # a user stuck in the target past its deadline is replaced (the load holds)
    on_worker_death: str = "replace"  # a worker process that dies is replaced, or the run stops
    startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S  # for the workers to open the target (import a model)
    ray: str | None = None  # a Ray cluster to run the workers on (auto, local, ray://host:port); None: this machine
    on_node_loss: str = "continue"  # Ray: a lost actor's share goes to the rest, or the run stops
    tick_s: float = 0.25

    def __post_init__(self) -> None:
        # Presets and callers hand the mode as its word; the spec holds the enum (a bad word fails validate()).
        if self.mode in (CLOSED, OPEN):
            object.__setattr__(self, "mode", LoadMode(self.mode))

    def validate(self) -> None:
        if self.mode not in (CLOSED, OPEN):
            raise UsageError(f"unknown load mode {self.mode!r}: use closed (--concurrency) or open (--rate)")
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise UsageError(f"--concurrency must be 1 to {MAX_CONCURRENCY}, got {self.concurrency}")
        if self.mode == OPEN and (self.rate is None or not 0 < self.rate <= MAX_RATE):
            raise UsageError(f"--rate must be a positive number of requests/s up to {MAX_RATE:,.0f}, got {self.rate}")
        if self.pool_size is not None and self.pool_size < 1:
            raise UsageError(f"--pool-size must be at least 1, got {self.pool_size}")
        if self.timeout_s <= 0:
            raise UsageError(f"--timeout must be positive seconds, got {self.timeout_s}")
        if self.startup_timeout_s <= 0:
            raise UsageError(f"--startup-timeout must be positive seconds, got {self.startup_timeout_s}")
        if self.duration_s is not None and self.duration_s <= 0:
            raise UsageError(f"--duration must be positive seconds, got {self.duration_s}")
        if self.requests is not None and self.requests < 1:
            raise UsageError(f"--requests must be at least 1, got {self.requests}")
        if self.requests_per_group is not None and self.user_mix not in ("stratified", "edge"):
            raise UsageError("requests per group need the stratified or edge user mix")
        if self.user_mix not in USER_MIXES:
            raise UsageError(f"unknown --user-mix {self.user_mix!r}: use one of {', '.join(USER_MIXES)}")
        if self.workers is not None and self.workers < 1:
            raise UsageError(f"--workers must be at least 1, got {self.workers}")
        if self.on_worker_death not in WORKER_DEATH_POLICIES:
            raise UsageError(f"unknown --on-worker-death {self.on_worker_death!r}: use replace or stop")
        if self.on_node_loss not in NODE_LOSS_POLICIES:
            raise UsageError(f"unknown --on-node-loss {self.on_node_loss!r}: use continue or stop")
        if self.arrivals not in ARRIVALS:
            raise UsageError(f"unknown --arrivals {self.arrivals!r}: use one of {', '.join(ARRIVALS)}")


def split_evenly(total: int, parts: int) -> list[int]:
    """`total` as `parts` integers differing by at most one, larger first."""
    return [total // parts + (1 if index < total % parts else 0) for index in range(parts)]
