"""The session's figures and words behind what the operator sees: a preset's missed point, the run log's lines, the
node table beside the run's verdict, counts said in the number they need."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from mlstress_tui.errors import UsageError
from mlstress_tui.presets import POOL_QUEUEING, load_preset
from mlstress_tui.results.kinds import EventKind, RunEvent
from mlstress_tui.results.units import counted
from mlstress_tui.session import RunSession
from mlstress_tui.session.headless_printer import event_line, node_lines, print_summary
from tui_fakes import FakeEngine


def pool_session(tmp_path: Path, concurrency: int) -> RunSession:
    """A run under the pool-saturation preset's promise, on a fake with a pool of 16."""
    engine = FakeEngine(tmp_path / "run", script=[(concurrency, 20)], concurrency=concurrency, pool_size=16)
    session = RunSession(engine, run_dir=engine.run_dir, shows=POOL_QUEUEING)
    session.start()
    session.pump()
    return session


def test_the_pool_saturation_preset_says_what_it_exists_to_show() -> None:
    assert load_preset("pool-saturation").shows == POOL_QUEUEING
    assert load_preset("default").shows is None


def test_a_preset_that_shows_an_unknown_thing_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('shows = "sparkles"\n', encoding="utf-8")
    with pytest.raises(UsageError, match="shows must be one of pool_queueing"):
        load_preset(str(path))


def test_a_pool_that_never_queued_is_said_everywhere_the_run_is(tmp_path: Path) -> None:
    session = pool_session(tmp_path, concurrency=16)  # 16 users, 16 connections: nobody waits
    line = session.snapshot.point_missed
    assert line is not None and line.startswith("the pool of 16 never queued (pool wait p99 ")
    assert line.endswith("raise the rate or lower --pool-size to see the saturation this preset is for")
    summary = session.finish()
    assert summary["point_missed"] == line
    printed = io.StringIO()
    print_summary(session.final, session.run_dir, printed)
    assert f"  >> {line}" in printed.getvalue()


def test_a_pool_that_queued_says_nothing_missed(tmp_path: Path) -> None:
    session = pool_session(tmp_path, concurrency=32)  # twice the users the pool holds: they wait
    assert session.snapshot.point_missed is None
    assert session.finish()["point_missed"] is None


def test_a_run_without_a_point_to_show_says_nothing(tmp_path: Path) -> None:
    engine = FakeEngine(tmp_path / "run", script=[(16, 20)], concurrency=16, pool_size=16)
    session = RunSession(engine, run_dir=engine.run_dir)
    session.start()
    session.pump()
    assert session.snapshot.point_missed is None


def test_every_event_is_one_whole_line_in_the_run_log() -> None:
    stall = RunEvent(EventKind.HARNESS_STALL, 58.2, {"stall_ms": 156.2, "stopped": False, "workers": [0, 1]})
    lines = [event_line(event) for event in (
        stall,
        RunEvent(EventKind.CONCURRENCY, 3.0, {"from": 16, "to": 32}),
        RunEvent(EventKind.RATE, 4.0, {"from": None, "to": 9543.2}),
        RunEvent(EventKind.RAMP_END, 9.0, {"text": "ramp ended (run ended): none"}),
        RunEvent(EventKind.PAUSE, 10.0))]
    assert lines[0] == ("workers 0, 1 stalled for 156.2ms at 58.2 s (starved of CPU): latencies then include the "
                        "stall, not only the target's")
    assert lines[1:] == ["users 16 → 32", "rate 0.0 → 9,543.2 req/s", "ramp ended (run ended): none", "paused"]


def test_the_node_table_says_when_the_run_verdict_is_not_a_node_s() -> None:
    nodes = [{"node": "10.0.0.1/a1b2c3", "actors": 2, "actors_alive": 2, "concurrency": 1, "requests": 10,
              "throughput_rps": 5.0, "p99_ms": 2.445, "harness_verdict": "ok"}]
    lines = node_lines(nodes, run_verdict="load_not_held")
    assert lines[0].endswith("node's harness")
    assert " 1 user " in lines[1] and lines[1].endswith("ok")
    assert lines[-1] == ("  the run's harness verdict is load_not_held: a node's column judges only that node's "
                         "timer and cores")
    assert node_lines(nodes, run_verdict="ok")[-1] == lines[1]


def test_counts_take_the_noun_in_the_number_they_need() -> None:
    assert counted(1, "user") == "1 user"
    assert counted(2, "user") == "2 users"
    assert counted(0, "call") == "0 calls"
    assert counted(1_024, "request") == "1,024 requests"


def test_late_starts_at_a_steady_low_latency_are_not_a_queue() -> None:
    from mlstress_tui.load.levels import CommandedLevel
    from mlstress_tui.results.kinds import OPEN
    from mlstress_tui.results.level_stats import LevelStats
    from mlstress_tui.session.snapshot import open_loop_backlog
    from tui_fakes import make_tick

    def late(tick, share):
        tick.late_starts = int(tick.requests * share)
        return tick

    level = CommandedLevel(3, OPEN, 0, 3_000.0, 64)
    steady = LevelStats(mode=OPEN, level=3_000.0, level_id=3)
    ticks = [late(make_tick(i, mode="open", concurrency=0, rate=3_000.0, pool_size=64), 0.4) for i in range(24)]
    for tick in ticks:
        steady.add(tick)
    window = ticks[-1]
    # 40% of the requests started late, but the latency neither grows nor passes the SLA: the sender was late.
    assert open_loop_backlog(level, steady, window, sla_p95_ms=200.0) is None
    # The same seconds against an SLA the latency passes: the queue holds above it.
    said = open_loop_backlog(level, steady, window, sla_p95_ms=1.0)
    assert said is not None and said.startswith("the queue is not draining: after 6 s at 3,000 req/s, 40% of")
