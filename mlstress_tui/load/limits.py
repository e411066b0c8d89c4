"""The rules every control shares (a key press, the ramp, a script), each once: the level clamp and the effective pool."""

from __future__ import annotations

from mlstress_tui.bounds import MAX_CONCURRENCY as MAX_CONCURRENCY
from mlstress_tui.bounds import MAX_RATE as MAX_RATE
from mlstress_tui.results.kinds import CLOSED, LoadMode

# The least: one user, or one request every ten seconds.
MIN_CONCURRENCY = 1
MIN_RATE = 0.1
# Executors (and pool slots) of the open loop when --pool-size is not given, as k6's pre-allocated VUs.
DEFAULT_OPEN_POOL = 64
def clamp_level(mode: LoadMode, level: float) -> float:
    """A commanded level within bounds: whole users in the closed loop, a rate to 0.1 req/s in the open one."""
    if mode == CLOSED:
        return float(min(max(MIN_CONCURRENCY, int(round(level))), MAX_CONCURRENCY))
    return min(max(MIN_RATE, round(float(level), 1)), MAX_RATE)


def effective_pool(mode: LoadMode, concurrency: int, pool_size: int | None) -> int:
    """The connection slots a level runs with: --pool-size, else one per user (closed) or DEFAULT_OPEN_POOL (open)."""
    if pool_size is not None:
        return pool_size
    return concurrency if mode == CLOSED else DEFAULT_OPEN_POOL
