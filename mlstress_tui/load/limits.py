"""The bounds every control shares (a key, the ramp, a script) and the rules that follow from them, each once."""

from __future__ import annotations

from mlstress_tui.results.kinds import CLOSED, LoadMode

# The most any control may ask for: past it, threads and memory, not the target, give out.
MAX_CONCURRENCY = 1024
MAX_RATE = 1_000_000.0
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
