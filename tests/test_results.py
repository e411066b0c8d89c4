"""The ground floor without any engine: windows of ticks and the run's commanded levels."""

from __future__ import annotations

import numpy as np

from mlstress_tui.results.interval_stats import WindowMerger, merge_ticks
from mlstress_tui.results.level_stats import LevelStats, warmup_ticks
from mlstress_tui.session.level_ledger import LevelLedger
from mlstress_tui.session.run_totals import RunTotals
from tui_fakes import make_tick


def tick(index: int, concurrency: int, level_id: int | None):
    return make_tick(index, mode="closed", concurrency=concurrency, rate=None, pool_size=None, level_id=level_id)


def test_the_window_merger_closes_a_window_every_second_of_ticks() -> None:
    merger = WindowMerger(1.0)
    ticks = [tick(i, 4, 0) for i in range(10)]
    windows = [window for window in map(merger.add, ticks) if window is not None]
    assert len(windows) == 2
    assert windows[0].requests == sum(t.requests for t in ticks[:4])
    assert (windows[0].t_start, windows[0].t_end) == (0.0, 1.0)
    rest = merger.flush()
    assert rest is not None and rest.requests == sum(t.requests for t in ticks[8:])
    assert merger.flush() is None


def test_a_merged_window_spanning_a_level_change_belongs_to_no_level() -> None:
    merged = merge_ticks([tick(0, 4, 0), tick(1, 8, 1)])
    assert merged.level_id is None
    assert merge_ticks([tick(0, 4, 3), tick(1, 4, 3)]).level_id == 3


def test_levels_are_the_commanded_ones_and_transitions_belong_to_none() -> None:
    ledger, totals = LevelLedger(), RunTotals()
    # 6 -> 12 users: the tick in which one worker still ran 6 reports a mixed sum (9) but no level.
    for index, (concurrency, level_id) in enumerate([(6, 0), (6, 0), (9, None), (12, 1), (12, 1)]):
        ledger.on_tick(tick(index, concurrency, level_id))
        totals.on_tick(tick(index, concurrency, level_id))
    ledger.finish()
    levels = list(ledger.levels.values())
    assert [(level.level_id, level.level) for level in levels] == [(0, 6.0), (1, 12.0)]
    assert ledger.transition_s == 0.25
    # Every request is in a level's settled time, its warm-up, or the transition: none twice, none lost.
    in_levels = sum(level.requests + level.warmup.requests for level in levels)
    assert totals.total.requests == in_levels + tick(2, 9, None).requests
    assert all(level.warmup_s == 0.25 for level in levels)  # two ticks each: the first is the warm-up
    assert ledger.current().level == 12.0


def test_repeat_visits_are_one_chart_point_but_two_levels() -> None:
    ledger = LevelLedger()
    for index, (concurrency, level_id) in enumerate([(4, 0), (8, 1), (4, 2)]):
        ledger.on_tick(tick(index, concurrency, level_id))
    ledger.finish()
    assert len(ledger.levels) == 3
    points = ledger.by_value("closed")
    assert [point.level for point in points] == [4.0, 8.0]
    assert points[0].requests == ledger.levels[0].requests + ledger.levels[2].requests
    assert points[0].seconds == 0.5


def test_a_level_s_warm_up_is_its_slow_first_ticks_and_never_more_than_half() -> None:
    assert warmup_ticks([]) == 0 and warmup_ticks([100.0]) == 0
    assert warmup_ticks([100.0, 100.0, 100.0, 100.0]) == 1  # the first tick always
    assert warmup_ticks([20.0, 50.0, 95.0, 100.0, 100.0, 101.0, 99.0, 100.0]) == 2
    assert warmup_ticks([10.0, 10.0, 10.0, 10.0, 100.0, 100.0]) == 3  # at most half


def test_a_level_s_figures_leave_its_warm_up_out() -> None:
    stats = LevelStats(mode="closed", level=4.0, level_id=0)
    ticks = [tick(i, 4, 0) for i in range(10)]
    ticks[0].requests = 1  # a cold first tick
    for one in ticks:
        stats.add(one)
    stats.decide()
    assert stats.warmup.requests == 1 and stats.warmup_s == 0.25
    assert stats.requests == sum(one.requests for one in ticks[1:])
    assert stats.throughput_rps == stats.requests / 2.25


def _stats_with(wait_ms: float, query_ms: float, requests: int = 1000, seconds: float = 1.0):
    from mlstress_tui.results.interval_stats import IntervalStats

    stats = IntervalStats(index=0, t_start=0.0, t_end=seconds, requests=requests, ok=requests)
    stats.pool_wait.record_many(np.full(requests, int(wait_ms * 1e6)))
    stats.service.record_many(np.full(requests, int(query_ms * 1e6)))
    return stats


def test_the_pool_is_the_bottleneck_only_when_it_holds_the_load_back():
    from mlstress_tui.results.bottleneck import pool_bottleneck

    saturated = _stats_with(wait_ms=1800, query_ms=1.0, requests=2600)
    line = pool_bottleneck(saturated, mode="open", pool_size=1, concurrency=1, offered_rps=5000)
    assert line and "pool, not the database" in line and "1.80s" in line
    # The same waits while the open loop kept up with its rate: scheduling jitter, not a saturated pool.
    kept_up = _stats_with(wait_ms=80, query_ms=5.0, requests=4990)
    assert pool_bottleneck(kept_up, mode="open", pool_size=8, concurrency=8, offered_rps=5000) is None
    # The query itself is the slow part: the database, not the pool.
    slow_query = _stats_with(wait_ms=30, query_ms=40.0, requests=100)
    assert pool_bottleneck(slow_query, mode="closed", pool_size=4, concurrency=16, offered_rps=None) is None
    # Closed loop: more users than connections, each waiting far longer than its query.
    assert pool_bottleneck(_stats_with(wait_ms=20, query_ms=2.0), mode="closed", pool_size=4, concurrency=16,
                           offered_rps=None)


def test_against_an_http_service_the_tool_s_queue_is_the_service_s_limit():
    from mlstress_tui.results.bottleneck import pool_bottleneck

    line = pool_bottleneck(_stats_with(wait_ms=3800, query_ms=400, requests=170), mode="open", pool_size=64,
                           concurrency=64, offered_rps=400, target_kind="http")
    assert line and "the service cannot keep up" in line and "not the database" not in line
