"""The load engine without any UI: worker processes, both load models, control and stats."""

import json
import os
import time

import pytest

from mlstress_tui.errors import UsageError
from mlstress_tui.load.engine import LoadEngine
from mlstress_tui.load.levels import split_evenly
from mlstress_tui.load.spec import LoadSpec
from mlstress_tui.results.kinds import OPEN
from mlstress_tui.load.targets import parse_target
from mlstress_tui.load.targets.python import PythonTarget
from mlstress_tui.session import RunSession


def run_to_end(engine: LoadEngine) -> dict:
    return RunSession(engine, run_dir=engine.run_dir).run_bounded(poll_s=0.05)


def wait_for_ticks(source: LoadEngine | RunSession, predicate, timeout_s: float = 10.0) -> list:
    """Poll (an engine) or pump (a session) until a tick satisfies `predicate`; return every tick seen."""
    seen = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ticks = source.pump() if isinstance(source, RunSession) else source.poll()
        seen.extend(ticks)
        if any(predicate(tick) for tick in ticks):
            return seen
        time.sleep(0.05)
    raise AssertionError("no tick matched within the timeout")


def test_split_evenly():
    assert split_evenly(5, 2) == [3, 2]
    assert split_evenly(1, 2) == [1, 0]
    assert sum(split_evenly(17, 3)) == 17


@pytest.mark.slow
def test_requests_limit_is_exact_and_everything_is_written(tmp_path):
    engine = LoadEngine(parse_target("sleep:0ms"), LoadSpec(concurrency=4, requests=5000), run_dir=tmp_path)
    summary = run_to_end(engine)
    assert summary["schema"] == "mlstress.summary/1"
    assert summary["requests"] == summary["ok"] == 5000
    assert summary["errors"] == 0 and summary["error_rate"] == 0.0
    for key in ("latency_ms", "service_ms", "pool_wait_ms"):
        assert set(summary[key]) == {"p50", "p90", "p95", "p99", "p999", "max", "mean"}
    # Latency resolution is microseconds: a no-op's median is neither 0 nor a whole millisecond.
    assert 0 < summary["latency_ms"]["p50"] < 1
    assert summary["load"] == summary["load"] | {"mode": "closed", "concurrency": 4, "pool_size": 4}
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["requests"] == 5000
    lines = [json.loads(line) for line in (tmp_path / "intervals.jsonl").read_text().splitlines()]
    assert sum(line["requests"] for line in lines) == 5000
    assert {"t", "mode", "concurrency", "rate", "requests", "errors", "throughput_rps", "latency_ms",
            "pool_wait_ms"} <= set(lines[0])


@pytest.mark.slow
def test_workers_are_separate_processes_and_are_gone_after_finish(tmp_path):
    engine = LoadEngine(parse_target("sleep:1ms"), LoadSpec(concurrency=2, duration_s=0.5, workers=2), run_dir=tmp_path)
    run_to_end(engine)
    pids = engine.backend.pids()
    assert len(pids) == 2 and os.getpid() not in pids
    assert not any(engine.backend.alive())


@pytest.mark.slow
def test_concurrency_change_takes_effect_while_running_and_is_logged(tmp_path):
    session = RunSession(LoadEngine(parse_target("sleep:2ms"), LoadSpec(concurrency=1), run_dir=tmp_path),
                         run_dir=tmp_path)
    session.start()
    try:
        wait_for_ticks(session, lambda tick: tick.requests > 0)
        session.set_concurrency(6)
        wait_for_ticks(session, lambda tick: tick.concurrency == 6 and tick.requests > 0)
    finally:
        session.finish()
    lines = [json.loads(line) for line in (tmp_path / "intervals.jsonl").read_text().splitlines()]
    events = [event for line in lines for event in line.get("events", [])]
    assert any(event["action"] == "concurrency" and event["to"] == 6 for event in events)
    assert lines[-1]["concurrency"] == 6


@pytest.mark.slow
def test_pause_stops_requests_and_resume_restarts_them(tmp_path):
    engine = LoadEngine(parse_target("sleep:1ms"), LoadSpec(concurrency=2), run_dir=tmp_path)
    engine.start()
    try:
        wait_for_ticks(engine, lambda tick: tick.requests > 0)
        engine.pause()
        assert engine.state == "paused"
        wait_for_ticks(engine, lambda tick: tick.requests == 0)
        engine.resume()
        assert engine.state == "running"
        wait_for_ticks(engine, lambda tick: tick.requests > 0)
    finally:
        engine.finish()
    assert engine.state == "finished"


@pytest.mark.slow
def test_open_loop_counts_latency_from_the_scheduled_start(tmp_path):
    # Capacity is 2 slots x 100/s = 200/s; offered 400/s: a queue builds.
    engine = LoadEngine(parse_target("sleep:10ms"),
                        LoadSpec(mode=OPEN, rate=400, pool_size=2, duration_s=2.0), run_dir=tmp_path)
    summary = run_to_end(engine)
    assert summary["offered_rps"] == 400
    assert summary["throughput_rps"] < 0.75 * 400
    assert summary["service_ms"]["p50"] < 30
    # Latency includes the time spent queued behind the schedule, service time does not.
    assert summary["latency_ms"]["p99"] > 10 * summary["service_ms"]["p50"]
    assert summary["harness"]["late_starts"] > summary["requests"] / 2


@pytest.mark.slow
def test_open_loop_rate_change_while_running(tmp_path):
    engine = LoadEngine(parse_target("sleep:0ms"), LoadSpec(mode=OPEN, rate=50), run_dir=tmp_path)
    engine.start()
    try:
        wait_for_ticks(engine, lambda tick: tick.requests > 0)
        engine.set_rate(400)
        ticks = wait_for_ticks(engine, lambda tick: tick.rate == pytest.approx(400) and tick.requests > 50)
        assert ticks[-1].mode == OPEN
    finally:
        engine.finish()


@pytest.mark.slow
def test_mode_switch_to_open_loop_and_back(tmp_path):
    engine = LoadEngine(parse_target("sleep:1ms"), LoadSpec(concurrency=2), run_dir=tmp_path)
    engine.start()
    try:
        wait_for_ticks(engine, lambda tick: tick.requests > 0)
        engine.set_mode(OPEN)
        assert engine.mode == OPEN and engine.rate > 0
        wait_for_ticks(engine, lambda tick: tick.mode == OPEN and tick.requests > 0)
        engine.set_mode("closed")
        wait_for_ticks(engine, lambda tick: tick.mode == "closed" and tick.requests > 0)
    finally:
        engine.finish()


@pytest.mark.slow
def test_target_errors_are_counted_by_kind_and_never_stop_the_run(tmp_path):
    target = PythonTarget("pipeline_fixtures:flaky")
    engine = LoadEngine(target, LoadSpec(concurrency=2, requests=400), run_dir=tmp_path)
    summary = run_to_end(engine)
    assert summary["requests"] == 400
    assert 100 < summary["errors_by_kind"]["FeatureStoreDown"] < 300
    assert summary["ok"] + summary["errors"] == 400


@pytest.mark.slow
def test_non_dict_results_and_overruns_are_errors(tmp_path):
    summary = run_to_end(LoadEngine(PythonTarget("pipeline_fixtures:not_a_dict"),
                                    LoadSpec(concurrency=1, requests=20), run_dir=tmp_path / "a"))
    assert summary["errors_by_kind"] == {"BadResult": 20}
    summary = run_to_end(LoadEngine(PythonTarget("pipeline_fixtures:slow"),
                                    LoadSpec(concurrency=1, requests=5, timeout_s=0.005), run_dir=tmp_path / "b"))
    assert summary["errors_by_kind"] == {"timeout": 5}


@pytest.mark.slow
def test_timeouts_are_their_own_kind(tmp_path):
    engine = LoadEngine(parse_target("sleep:2s"), LoadSpec(concurrency=2, requests=10, timeout_s=0.01),
                        run_dir=tmp_path)
    summary = run_to_end(engine)
    assert summary["errors_by_kind"] == {"timeout": 10}
    # Cut short at the deadline, not the 2 s the call would take (a loaded box oversleeps 10 ms, not 2 s).
    assert summary["latency_ms"]["max"] < 1000


@pytest.mark.slow
def test_a_saturated_pool_shows_as_pool_wait_not_service_time(tmp_path):
    engine = LoadEngine(parse_target("sleep:5ms"), LoadSpec(concurrency=8, pool_size=2, duration_s=1.0),
                        run_dir=tmp_path)
    summary = run_to_end(engine)
    assert summary["pool_wait_ms"]["p50"] > summary["service_ms"]["p50"]
    assert summary["service_ms"]["p50"] < 15


@pytest.mark.slow
def test_a_worker_that_cannot_start_is_one_line_of_bad_input(tmp_path):
    engine = LoadEngine(PythonTarget("no_such_module_anywhere:f"),
                        LoadSpec(concurrency=1, duration_s=1), run_dir=tmp_path)
    with pytest.raises(UsageError, match="cannot import 'no_such_module_anywhere'"):
        engine.start()
    assert not any(engine.backend.alive())


@pytest.mark.parametrize("load, message", [
    (LoadSpec(concurrency=0), "--concurrency"),
    (LoadSpec(mode=OPEN, rate=0), "--rate"),
    (LoadSpec(pool_size=0), "--pool-size"),
    (LoadSpec(user_mix="zipf"), "--user-mix"),
])
def test_bad_load_is_rejected_before_anything_starts(tmp_path, load, message):
    with pytest.raises(UsageError, match=message):
        LoadEngine(parse_target("sleep:1ms"), load, run_dir=tmp_path)


@pytest.mark.slow
def test_a_harness_that_cannot_keep_up_says_so(tmp_path):
    # Two threads per worker spinning in Python: the workers' own timer must see the stall.
    engine = LoadEngine(PythonTarget("pipeline_fixtures:spin"),
                        LoadSpec(concurrency=4, duration_s=1.5, workers=2), run_dir=tmp_path, users_db=None)
    summary = run_to_end(engine)
    harness = summary["harness"]
    assert harness["hiccup_ms"]["p99"] >= 1.0
    # On a box busy enough that both workers stood still at once, the verdict is `stopped`: still not vouched for.
    assert harness["verdict"] in ("cpu_bound", "timer_lag", "stopped")
    assert "late" in harness["note"] or "bottleneck" in harness["note"]
