"""Whether the connection pool, not the database behind it, limits the system: pool wait against query time."""

from __future__ import annotations

from mlstress_tui.results.interval_stats import IntervalStats
from mlstress_tui.results.kinds import OPEN
from mlstress_tui.results.units import format_ms

# Waiting for a connection this many times longer than the query itself (p99), and at least this long, is a pool
# that holds requests back rather than noise.
WAIT_OVER_QUERY = 2.0
MIN_WAIT_MS = 1.0
# The open loop kept up when it served this share of what was offered.
KEPT_UP = 0.95


def pool_queued(stats: IntervalStats) -> bool:
    """Requests waited for a connection longer than the query took (p99), and long enough not to be noise."""
    wait = stats.pool_wait.percentile_ms(99)
    query = stats.service.percentile_ms(99)
    return bool(stats.requests) and wait is not None and query is not None and \
        wait >= max(MIN_WAIT_MS, WAIT_OVER_QUERY * query)


def pool_bottleneck(stats: IntervalStats, *, mode: str, pool_size: int | None, concurrency: int,
                    offered_rps: float | None, target_kind: str | None = None) -> str | None:
    """One line when the pool is the bottleneck (the system cannot keep up and requests wait for a connection
    longer than the query takes), None otherwise."""
    if not pool_queued(stats):
        return None
    wait = stats.pool_wait.percentile_ms(99)
    query = stats.service.percentile_ms(99)
    if mode == OPEN:
        held_back = offered_rps is not None and offered_rps > 0 and stats.throughput_rps < KEPT_UP * offered_rps
    else:
        held_back = pool_size is not None and pool_size < concurrency
    if not held_back:
        return None
    pool = f" (pool of {pool_size})" if pool_size else ""
    if target_kind == "http":
        # The tool's connections are the client's, not the system's: the service behind them is what is slow.
        return (f"the service cannot keep up: requests queued p99 {format_ms(wait)} for one of the tool's connections{pool} "
                f"while each answer took p99 {format_ms(query)}; the service's own pool or capacity is the limit")
    return (f"the pool, not the database, is the bottleneck: requests waited p99 {format_ms(wait)} for a connection{pool} "
            f"while the query took p99 {format_ms(query)}; raise --pool-size or lower the load")
