"""The run session on the real engine: commanded levels, the ramp controller, the `ramp` command."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from mlstress_tui.cli import main
from mlstress_tui.errors import UsageError
from mlstress_tui.load.engine import LoadEngine
from mlstress_tui.load.spec import LoadSpec
from mlstress_tui.load.schedule import ArrivalSchedule
from mlstress_tui.load.targets import parse_target
from mlstress_tui.session import RampPlan, RunSession


def pump_for(session: RunSession, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        session.pump()
        time.sleep(0.05)


@pytest.mark.slow
def test_a_change_across_two_workers_never_records_a_level_nobody_chose(tmp_path):
    # 6 -> 12 users over 2 workers: both apply the change at the same tick boundary, so no tick mixes 3 + 6.
    engine = LoadEngine(parse_target("sleep:2ms"), LoadSpec(concurrency=6, workers=2), run_dir=tmp_path)
    session = RunSession(engine, run_dir=tmp_path)
    session.start()
    try:
        pump_for(session, 1.0)
        session.set_concurrency(12)
        pump_for(session, 1.0)
    finally:
        summary = session.finish()
    assert [(level["id"], level["level"]) for level in summary["levels"]] == [(0, 6.0), (1, 12.0)]
    # A plan message that lands after the boundary it names leaves a sliver between the levels, said as transition
    # time (0.013 s seen on a loaded box), never folded into either level.
    assert summary["transition_s"] < 0.5
    lines = [json.loads(line) for line in (tmp_path / "intervals.jsonl").read_text().splitlines()]
    assert {line["concurrency"] for line in lines} <= {6, 12}
    # That sliver's window is no level's (level_id null), in one window at most; no window is given a third level.
    levels = [line["level_id"] for line in lines if line["requests"]]
    assert set(levels) <= {0, 1, None} and levels.count(None) <= (1 if summary["transition_s"] else 0), levels
    assert summary["requests"] == sum(line["requests"] for line in lines)


@pytest.mark.slow
def test_the_ramp_finds_the_knee_of_a_four_slot_pool(tmp_path):
    # sleep:5ms through 4 slots saturates at 4 users (800 req/s): the ground truth of the ramp.
    engine = LoadEngine(parse_target("sleep:5ms"), LoadSpec(concurrency=1, pool_size=4), run_dir=tmp_path)
    session = RunSession(engine, run_dir=tmp_path)
    ended = []
    session.start_ramp(RampPlan(start=1, maximum=16, factor=2, step_duration_s=0.5),
                       on_end=lambda ramp: (ended.append(ramp.stopped_because), session.stop()))
    summary = session.run_bounded(poll_s=0.05)
    report = json.loads((tmp_path / "ramp.json").read_text())
    assert report["knee_concurrency"] == 4
    assert [step["level"] for step in report["steps"]][:4] == [1, 2, 4, 8]
    # A four-slot pool plateaus past 4 users; on half-second steps the plateau's noise can read as a fall.
    assert "saturated" in ended[0] or "throughput fell" in ended[0], ended
    assert report["steps"][2]["throughput_rps"] > 1.6 * report["steps"][0]["throughput_rps"] * 2
    assert {"p50_ms", "p95_ms", "p99_ms", "error_rate", "pool_wait_p95_ms", "verdict"} <= set(report["steps"][0])
    assert summary["ramp"]["knee_concurrency"] == 4
    # The steps reused the same workers: no step's level is a phantom. (Half-second steps are noisy: the cliff may
    # show one step later, at 16.)
    assert [level["level"] for level in summary["levels"]] == [step["level"] for step in report["steps"]]


@pytest.mark.slow
def test_a_ramp_whose_first_step_breaks_the_sla_ends_there(tmp_path):
    engine = LoadEngine(parse_target("sleep:2ms"), LoadSpec(concurrency=2), run_dir=tmp_path)
    session = RunSession(engine, run_dir=tmp_path, sla_p95_ms=1.0)
    session.start_ramp(RampPlan(start=2, maximum=64, step_duration_s=0.5, sla_p95_ms=1.0),
                       on_end=lambda ramp: session.stop())
    session.run_bounded(poll_s=0.05)
    report = session.ramp_report
    assert len(report["steps"]) == 1
    assert report["knee_concurrency"] is None and report["safe_concurrency"] is None
    assert "SLA" in report["stopped_because"] and "already breaks" in report["reason"]


@pytest.mark.parametrize("plan, levels", [
    (RampPlan(start=1, maximum=64), [1, 2, 4, 8, 16, 32, 64]),
    (RampPlan(start=1, maximum=10, factor=1.5), [1, 2, 3, 4, 6, 9, 10]),
    (RampPlan(start=2, maximum=10, step=4, factor=None), [2, 6, 10]),
    (RampPlan(mode="open", start=100, maximum=400, factor=1.5), [100, 150, 225, 337.5, 400]),
])
def test_ramp_levels(plan, levels):
    assert plan.levels() == pytest.approx(levels)


def test_an_impossible_ramp_is_bad_input():
    with pytest.raises(UsageError, match="--max"):
        RampPlan(start=8, maximum=4).validate()
    with pytest.raises(UsageError, match="--factor"):
        RampPlan(factor=1.0).validate()


def test_poisson_arrivals_keep_the_mean_rate_and_are_bursty_and_seeded():
    def due_times(arrivals: str, seed: int) -> np.ndarray:
        schedule = ArrivalSchedule(1000.0, 0, arrivals=arrivals, seed=seed)
        return np.array([schedule.due_ns(schedule.claim()[0]) for _ in range(20_000)])

    poisson, uniform = due_times("poisson", 1), due_times("uniform", 1)
    assert 20_000 / (poisson[-1] / 1e9) == pytest.approx(1000.0, rel=0.03)
    gaps = np.diff(poisson)
    assert np.std(gaps) / np.mean(gaps) == pytest.approx(1.0, rel=0.05)  # exponential gaps
    assert np.std(np.diff(uniform)) < 1e-3 * np.mean(np.diff(uniform))
    assert np.array_equal(poisson, due_times("poisson", 1))
    assert not np.array_equal(poisson, due_times("poisson", 2))


@pytest.mark.slow
def test_the_ramp_command_headless_prints_the_steps_and_writes_ramp_json(capsys, tmp_path):
    code = main(["ramp", "--headless", "--target", "sleep:5ms", "--pool-size", "4", "--max", "8",
                 "--step-duration", "0.5", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "knee: 4 users" in out and "USL fit" in out
    report = json.loads((tmp_path / "ramp.json").read_text())
    usl = report["usl"]
    assert usl is not None
    # A pool of 4 plateaus rather than falls: a peak only where the measured throughput fell, and then near the pool.
    if usl["peak_concurrency"] is None:
        assert usl["kappa"] == 0 and usl["peak_note"] == "no retrograde term: throughput did not fall"
    else:
        assert 2.5 <= usl["peak_concurrency"] <= 8


def test_the_ramp_command_rejects_an_impossible_ramp_in_one_line(capsys, tmp_path):
    code = main(["ramp", "--headless", "--target", "sleep:1ms", "--start", "8", "--max", "2", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--max" in err
