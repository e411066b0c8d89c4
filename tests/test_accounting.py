"""Every request and every second accounted: pause, stalls, deaths, forks, a full disk and the end of a run.

Real worker processes throughout: these are about processes. Each test asserts the
books balance (requests + unfinished + unsent + paused arrivals + lost = what was
owed) and that the run ends, on time, saying what happened.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlstress_tui.cli import main
from mlstress_tui.load.engine import LoadEngine
from mlstress_tui.load.spec import LoadSpec
from mlstress_tui.load.targets import parse_target
from mlstress_tui.load.targets.python import PythonTarget
from mlstress_tui.session import RunSession

pytestmark = pytest.mark.slow
HERE = Path(__file__).parent


def books(summary: dict) -> int:
    """Everything the open loop accounts for: what was sent, still out, owed and unsent, paused, or lost."""
    return (summary["requests"] + summary["unfinished"] + summary["unsent"] + summary["paused_arrivals"]
            + summary["faults"]["requests_lost"])


def books_slack(rate: float) -> float:
    """How far the books may be from what the controller's clock owed: a request per worker at each end, and the
    arrivals of the message lag (each worker pauses, resumes and stops when its message lands, 10-15 ms later seen
    on a loaded box, 25 ms allowed; what it sent meanwhile is real and counted). The faults this guards against
    were thousands of requests in no field."""
    return 4 + rate * 0.025


def pump_for(session: RunSession, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        session.pump()
        time.sleep(0.05)


def cli(*args: str, env: dict | None = None, **popen: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mlstress_tui", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}, cwd=HERE, **popen)


def worker_pid(process: subprocess.Popen, slot: int) -> int:
    """The pid of this run's worker `slot` (a child of its process: other runs on the box are not touched)."""
    found = subprocess.run(["pgrep", "-P", str(process.pid), "-f", f"mlstress-tui worker {slot}:"],
                           capture_output=True, text=True).stdout.split()
    assert len(found) == 1, found
    return int(found[0])


def wait_for_first_interval(run_dir: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    path = run_dir / "intervals.jsonl"
    while not (path.exists() and path.read_text().count("\n")):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_pause_in_the_open_loop_resumes_at_the_rate_asked_and_the_books_balance(tmp_path):
    rate = 1000.0
    engine = LoadEngine(parse_target("sleep:2ms"), LoadSpec(mode="open", rate=rate, workers=2), run_dir=tmp_path)
    session = RunSession(engine, run_dir=tmp_path)
    session.start()
    try:
        pump_for(session, 1.0)
        session.pause()
        pump_for(session, 1.0)
        session.resume()
        pump_for(session, 0.5)
        before = session.snapshot.total.requests
        pump_for(session, 2.0)
        after = session.snapshot.total.requests
    finally:
        summary = session.finish()
    # After the resume the offered rate is served as before the pause: no backlog, no climbing queue.
    assert (after - before) / 2.0 >= 0.95 * rate
    assert summary["latency_ms"]["p99"] < 50, summary["latency_ms"]
    assert not summary["faults"]["worker_deaths"]
    assert summary["paused_s"] >= 1.0
    assert summary["paused_arrivals"] == pytest.approx(rate * summary["paused_s"], rel=0.1)
    assert abs(books(summary) - summary["offered_arrivals"]) <= books_slack(rate)
    assert summary["throughput_rps"] == pytest.approx(summary["requests"] / summary["load_s"], rel=1e-3)


def test_one_stopped_worker_does_not_shrink_the_run_s_load_time(tmp_path):
    """SIGSTOP of one worker: the other went on, so the run's load time is its wall time, and the stop is said."""
    run_dir = tmp_path / "run"
    process = cli("run", "--headless", "--target", "sleep:10ms", "--concurrency", "4", "--workers", "2",
                  "--duration", "5", "--out", str(run_dir))
    wait_for_first_interval(run_dir, process)
    worker = worker_pid(process, 0)
    os.kill(worker, signal.SIGSTOP)
    time.sleep(1.5)
    os.kill(worker, signal.SIGCONT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stopped_s"] == 0.0
    assert summary["load_s"] == pytest.approx(summary["duration_s"], abs=0.01)
    assert summary["throughput_rps"] == pytest.approx(summary["requests"] / summary["duration_s"], rel=0.01)
    stalls = [event for event in summary["faults"]["events"] if event["action"] == "harness_stall"]
    assert stalls and stalls[0]["stall_ms"] >= 1000 and stalls[0]["workers"] == [0]
    assert summary["validity"]["vouched"] is False


def test_a_killed_worker_s_unreported_requests_are_lost_not_sent_again(tmp_path):
    calls = tmp_path / "calls.log"
    run_dir = tmp_path / "run"
    process = cli("run", "--headless", "--target", "python:pipeline_fixtures:counts_its_calls", "--users-db",
                  str(_small_db(tmp_path)), "--concurrency", "8", "--workers", "2", "--requests", "2000",
                  "--out", str(run_dir), env={"MLSTRESS_CALL_LOG": str(calls), "PYTHONPATH": str(HERE)})
    wait_for_first_interval(run_dir, process)
    worker = worker_pid(process, 1)
    os.kill(worker, signal.SIGKILL)
    out, err = process.communicate(timeout=90)
    assert process.returncode == 3, err  # the measurement lost part of its load
    summary = json.loads((run_dir / "summary.json").read_text())
    received = len(calls.read_text().splitlines())
    lost = summary["faults"]["requests_lost"]
    assert summary["requests"] + lost == 2000
    assert received <= 2000  # the target never hears a ticket twice
    assert summary["requests"] <= received <= summary["requests"] + lost


def test_a_target_that_forks_cannot_run_the_harness_in_its_child(tmp_path):
    run_dir = tmp_path / "run"
    code = main(["run", "--headless", "--target", "python:pipeline_fixtures:forks_once", "--users-db",
                 str(_small_db(tmp_path)), "--concurrency", "2", "--workers", "1", "--requests", "200",
                 "--out", str(run_dir)])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert code == 0
    assert summary["requests"] == 200  # no child ate tickets
    assert any(event["action"] == "target_forked" for event in summary["faults"]["events"])


def test_a_full_disk_under_target_log_drops_the_output_and_never_blocks_the_target(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs needs root")
    run_dir = tmp_path / "tiny"
    run_dir.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(run_dir)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        summary_dir = tmp_path / "summary"
        engine = LoadEngine(PythonTarget("pipeline_fixtures:prints_a_lot"),
                            LoadSpec(concurrency=2, workers=1, duration_s=2.0, timeout_s=1.0), run_dir=run_dir,
                            users_db=_small_db(tmp_path))
        session = RunSession(engine, run_dir=summary_dir)
        began = time.monotonic()
        summary = session.run_bounded()
        assert time.monotonic() - began < 15
        assert summary["errors"] == 0 and summary["requests"] > 200  # the target never waited on its prints
        assert summary["target_output"]["dropped"] > 0
        assert any(event["action"] == "output_dropped" for event in summary["faults"]["events"])
    finally:
        subprocess.run(["umount", "-l", str(run_dir)], capture_output=True)


def test_a_requests_run_ends_once_every_request_has_an_outcome_even_if_calls_never_return(tmp_path):
    run_dir = tmp_path / "run"
    began = time.monotonic()
    code = main(["run", "--headless", "--target", "python:pipeline_fixtures:hangs_every_fourth", "--users-db",
                 str(_small_db(tmp_path)), "--concurrency", "4", "--requests", "50", "--timeout", "1",
                 "--out", str(run_dir)])
    took = time.monotonic() - began
    summary = json.loads((run_dir / "summary.json").read_text())
    assert code == 0
    assert took < 20, took
    assert summary["requests"] == 50
    assert summary["errors_by_kind"].get("timeout", 0) >= 1
    assert summary["ok"] + summary["errors"] == 50


def test_a_target_that_holds_the_gil_cannot_keep_a_run_from_ending(tmp_path):
    run_dir = tmp_path / "run"
    process = cli("run", "--headless", "--target", "python:pipeline_fixtures:holds_the_gil", "--users-db",
                  str(_small_db(tmp_path)), "--concurrency", "2", "--workers", "1", "--duration", "3",
                  "--timeout", "1", "--out", str(run_dir), env={"PYTHONPATH": str(HERE)})
    began = time.monotonic()
    out, err = process.communicate(timeout=60)
    took = time.monotonic() - began
    summary = json.loads((run_dir / "summary.json").read_text())
    # --duration 3 + --timeout 1 + the silence that says a worker is wedged (3 s) and a grace: never minutes.
    assert took < 30, took
    assert process.returncode == 3, err
    assert summary["harness"]["verdict"] == "load_not_held"
    assert summary["faults"]["silent_workers"]
    assert "sent nothing" in out


def test_a_sigterm_to_the_process_group_is_a_stop_not_a_death(tmp_path):
    run_dir = tmp_path / "run"
    process = cli("run", "--headless", "--target", "sleep:1ms", "--concurrency", "2", "--duration", "30",
                  "--out", str(run_dir), start_new_session=True)
    wait_for_first_interval(run_dir, process)
    os.killpg(process.pid, signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert process.returncode == 130, err
    assert summary["interrupted"] is True
    assert summary["faults"]["worker_deaths"] == [], summary["faults"]
    assert "died" not in out


def test_a_run_s_length_runs_to_its_last_answer_so_throughput_is_true(tmp_path):
    # sleep:1s, 4 users, 2.5 s: 12 requests sent by 2.0 s, the last answering at 3.0 s: 4.0 req/s, not 4.8.
    engine = LoadEngine(parse_target("sleep:1s"), LoadSpec(concurrency=4, duration_s=2.5, timeout_s=5.0),
                        run_dir=tmp_path)
    summary = RunSession(engine, run_dir=tmp_path).run_bounded()
    assert summary["requests"] == 12
    assert summary["duration_s"] == pytest.approx(3.0, abs=0.15)
    assert summary["throughput_rps"] == pytest.approx(4.0, rel=0.06)


def test_arrivals_past_a_requests_quota_were_never_owed(tmp_path):
    engine = LoadEngine(parse_target("sleep:1ms"), LoadSpec(mode="open", rate=2000.0, requests=1000),
                        run_dir=tmp_path)
    summary = RunSession(engine, run_dir=tmp_path).run_bounded()
    assert summary["requests"] == 1000
    assert summary["unsent"] == 0 and summary["latency_with_unsent_ms"] is None


def test_a_run_of_three_requests_reports_no_absurd_rate(tmp_path):
    engine = LoadEngine(PythonTarget("os:getcwd"), LoadSpec(concurrency=1, requests=3, workers=1), run_dir=tmp_path,
                        users_db=_small_db(tmp_path))
    summary = RunSession(engine, run_dir=tmp_path).run_bounded()
    lines = [json.loads(line) for line in (tmp_path / "intervals.jsonl").read_text().splitlines()]
    assert summary["requests"] == 3
    assert all(line["throughput_rps"] < 1e6 for line in lines)


def test_one_busy_second_does_not_make_a_run_cpu_bound(tmp_path):
    engine = LoadEngine(PythonTarget("pipeline_fixtures:cpu_on_first_call"),
                        LoadSpec(concurrency=1, workers=1, duration_s=4.0), run_dir=tmp_path,
                        users_db=_small_db(tmp_path))
    summary = RunSession(engine, run_dir=tmp_path).run_bounded()
    assert summary["harness"]["verdict"] != "cpu_bound", summary["harness"]
    assert summary["harness"]["cpu_bound_share"] < 0.25


_DB: Path | None = None


def _small_db(tmp_path: Path) -> Path:
    """A 500-user database, generated once for this module."""
    global _DB
    if _DB is None or not _DB.exists():
        from mlstress_tui.synth import GenerateParams, generate_sqlite

        _DB = tmp_path.parent / "accounting-users.sqlite"
        if not _DB.exists():
            generate_sqlite(GenerateParams(users=500, mean_events=5, seed=3), _DB)
    return _DB


async def test_after_a_pause_in_the_dashboard_the_open_loop_serves_its_rate_again(tmp_path):
    from mlstress_tui.tui.app import DashboardApp

    rate = 2000.0
    engine = LoadEngine(parse_target("sleep:2ms"), LoadSpec(mode="open", rate=rate, workers=2), run_dir=tmp_path)
    session = RunSession(engine, run_dir=tmp_path)
    session.start()
    app = DashboardApp(session, refresh_hz=10)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(1.0)
        await pilot.press("p")
        await pilot.pause(2.0)
        await pilot.press("p")
        resumed_s = session.elapsed_s
        await pilot.pause(3.0)
        quit_s = session.elapsed_s
        await pilot.press("q")
        for _ in range(400):
            await pilot.pause(0.05)
            if app.summary is not None:
                break
    summary = session.summary
    assert summary is not None
    # The rate served after the resume, by the run's own 1 s windows wholly after it (the test's clock and the
    # snapshot's tick-by-tick totals would count a tick more or less: an eighth of two seconds).
    windows = [json.loads(line) for line in (tmp_path / "intervals.jsonl").read_text().splitlines()]
    after = [window["throughput_rps"] for window in windows if resumed_s <= window["t"] - 1.0 and window["t"] <= quit_s]
    assert after and min(after) >= 0.95 * rate, after
    assert not summary["faults"]["worker_deaths"]
    # Arrivals that fell in the pause, by the pause the engine timed (a busy box stretches the test's own 2 s).
    assert summary["paused_arrivals"] == pytest.approx(rate * summary["paused_s"], rel=0.1)
    assert abs(books(summary) - summary["offered_arrivals"]) <= books_slack(rate)
