"""Load from more than one box: worker slots as Ray actors on a real (two fake node) Ray cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from mlstress_tui.errors import EXIT_FAULT, UsageError
from mlstress_tui.load.engine import LoadEngine
from mlstress_tui.load.spec import LoadSpec
from mlstress_tui.load.targets import parse_target
from mlstress_tui.load.targets.python import PythonTarget
from mlstress_tui.session import RunSession
from ray_fixtures import ray_cluster  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow  # every test here is process-level: seconds each


def run_session(tmp_path, target: str = "sleep:1ms", during=None, **load) -> tuple[RunSession, dict]:
    engine = LoadEngine(parse_target(target), LoadSpec(ray="auto", workers=2, **load), run_dir=tmp_path)
    session = RunSession(engine, run_dir=tmp_path)
    session.start()
    if during is not None:
        threading.Timer(during[0], during[1], args=(engine,)).start()
    summary = session.run_until_finished(threading.Event())
    return session, summary


def test_one_actor_per_slot_spread_over_the_nodes_merged_exactly(ray_cluster, tmp_path):
    _, summary = run_session(tmp_path, concurrency=4, duration_s=2)
    nodes = summary["nodes"]
    assert len(nodes) == 2 and all(node["actors"] == 1 for node in nodes)
    assert all(node["requests"] > 100 and node["harness_verdict"] != "lost" for node in nodes)
    # Same histogram buckets everywhere: the run's total is exactly the nodes' sum.
    assert summary["requests"] == sum(node["requests"] for node in nodes)
    assert summary["load"]["backend"]["backend"] == "ray"
    assert set(summary["load"]["backend"]["clock_offsets_ms"]) == {node["node"] for node in nodes}
    assert summary["latency_ms"]["p50"] == pytest.approx(1.0, abs=0.8)
    if os.geteuid() == 0:  # allowed to undo Ray's niceness 15: the load generator does not yield to the box
        assert all(node["niceness"] == 0 for node in nodes)


def test_the_open_loop_is_split_into_interleaved_segments(ray_cluster, tmp_path):
    _, summary = run_session(tmp_path, mode="open", rate=300.0, duration_s=3)
    nodes = summary["nodes"]
    # Every actor stopped sending at start + duration by its own clock; the run ends as its last call returns.
    assert 3.0 <= summary["duration_s"] <= 3.05
    # The sum over actors is the global schedule, to within one request per actor.
    assert abs(summary["requests"] + (summary.get("unsent") or 0) - 300 * 3) <= 2
    assert all(abs(node["rate"] - 150.0) < 1e-6 for node in nodes)
    per_node = [node["requests"] for node in nodes]
    assert abs(per_node[0] - per_node[1]) <= 2


def test_requests_are_exact_across_nodes(ray_cluster, tmp_path):
    _, summary = run_session(tmp_path, concurrency=4, requests=777)
    assert summary["requests"] == 777


def test_a_killed_actor_is_reported_and_its_share_goes_to_the_rest(ray_cluster, tmp_path):
    import ray

    def kill_one(engine):
        ray.kill(engine.backend._actors[1], no_restart=True)

    session, summary = run_session(tmp_path, mode="open", rate=200.0, duration_s=4, during=(1.5, kill_one))
    deaths = summary["faults"]["worker_deaths"]
    assert len(deaths) == 1 and deaths[0]["worker"] == 1 and "actor lost on node" in deaths[0]["how"]
    lost = [node for node in summary["nodes"] if node["harness_verdict"] == "lost"]
    assert len(lost) == 1 and lost[0]["lost"][0]["carried"] == "100 req/s"
    survivor = next(node for node in summary["nodes"] if node["harness_verdict"] != "lost")
    assert survivor["rate"] == pytest.approx(200.0)  # the whole rate, re-split to the one left
    last_second = summary["levels"][-1]
    assert last_second["throughput_rps"] == pytest.approx(200.0, rel=0.1)
    assert session.exit_code == EXIT_FAULT


def test_a_node_loss_can_stop_the_run(ray_cluster, tmp_path):
    import ray

    def kill_one(engine):
        ray.kill(engine.backend._actors[0], no_restart=True)

    started = time.monotonic()
    _, summary = run_session(tmp_path, concurrency=2, duration_s=20, on_node_loss="stop", during=(1.0, kill_one))
    assert time.monotonic() - started < 12
    died = [event for event in summary["faults"]["events"] if event["action"] == "worker_died"]
    assert died[0]["then"] == "run stopped" and died[0]["node"]


def test_a_target_that_fails_on_a_node_names_the_node(ray_cluster, tmp_path):
    engine = LoadEngine(PythonTarget("no_such_module_anywhere:f"), LoadSpec(ray="auto", workers=2, duration_s=1),
                        run_dir=tmp_path)
    with pytest.raises(UsageError, match=r"no_such_module_anywhere.*\(on node "):
        engine.start()


def wait_for_first_interval(intervals, timeout_s: float = 90.0) -> None:
    """Until the run has written its first interval: its workers are up and sending."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if intervals.exists() and intervals.stat().st_size > 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"no interval in {intervals} after {timeout_s:g} s")


def ray_processes() -> set[int]:
    found = subprocess.run(["pgrep", "-f", "raylet|gcs_server|ray::|ray/dashboard|log_monitor"],
                           capture_output=True, text=True).stdout.split()
    return {int(pid) for pid in found}


def test_sigint_with_ray_local_leaves_no_process(tmp_path):
    pytest.importorskip("ray")
    before = ray_processes()
    command = subprocess.Popen(
        [sys.executable, "-m", "mlstress_tui", "run", "--headless", "--ray", "local", "--target", "sleep:1ms",
         "--concurrency", "2", "--duration", "60", "--out", str(tmp_path / "run")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "RAY_AUTH_MODE": "disabled"})
    wait_for_first_interval(tmp_path / "run" / "intervals.jsonl")
    command.send_signal(signal.SIGINT)
    out, err = command.communicate(timeout=60)
    assert command.returncode == 130, err
    assert "requests" in out and (tmp_path / "run" / "summary.json").exists()
    # Ray's own processes take a moment to go after the cluster is shut down (longer on a busy box).
    deadline = time.monotonic() + 20
    while ray_processes() - before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ray_processes() - before == set()


def test_actors_end_with_a_front_end_that_is_killed(ray_cluster, tmp_path):
    def worker_actors() -> set[int]:
        found = subprocess.run(["pgrep", "-f", "ray::WorkerActor"], capture_output=True, text=True).stdout.split()
        return {int(pid) for pid in found}

    before = worker_actors()
    command = subprocess.Popen(
        [sys.executable, "-m", "mlstress_tui", "run", "--headless", "--ray", ray_cluster.address, "--target",
         "sleep:1ms", "--concurrency", "2", "--duration", "60", "--out", str(tmp_path / "run")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "RAY_AUTH_MODE": "disabled"})
    wait_for_first_interval(tmp_path / "run" / "intervals.jsonl")
    assert worker_actors() - before, "the run's actors should be up"
    command.kill()
    command.wait(10)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and worker_actors() - before:
        time.sleep(0.5)
    assert worker_actors() - before == set()  # no rogue load


def test_an_actor_that_hears_nothing_stops_its_load(monkeypatch):
    from mlstress_tui.load.backends import ray_actors
    from mlstress_tui.load.protocol import Stop

    control = ray_actors._Control()
    control.heard -= ray_actors.SILENCE_S + 1
    started = time.monotonic()
    assert isinstance(control.recv(), Stop)
    assert time.monotonic() - started < 2.5


def test_a_node_clock_off_by_more_than_a_millisecond_is_a_warning(tmp_path):
    from mlstress_tui.load.backends.local_processes import LocalProcesses
    from mlstress_tui.results.kinds import RunEvent
    from mlstress_tui.session.headless_printer import fault_line

    class SkewedClock(LocalProcesses):
        def clock_offsets_ms(self) -> dict[str, float]:
            return {"10.0.0.2/abcdef": 2.5, "10.0.0.1/123456": 0.2}

    engine = LoadEngine(parse_target("sleep:1ms"), LoadSpec(concurrency=1, duration_s=0.6, workers=1),
                        run_dir=tmp_path, backend=SkewedClock())
    session = RunSession(engine, run_dir=tmp_path)
    session.start()
    summary = session.run_until_finished(threading.Event())
    skews = [event for event in summary["faults"]["events"] if event["action"] == "clock_skew"]
    assert [event["node"] for event in skews] == ["10.0.0.2/abcdef"]
    assert "+2.50 ms off this machine's" in fault_line(RunEvent.from_json(skews[0]))
    assert session.exit_code == 0  # a warning, not a lost measurement


def test_requests_stay_exact_when_an_actor_is_lost(ray_cluster, tmp_path):
    import ray

    def kill_one(engine):
        ray.kill(engine.backend._actors[1], no_restart=True)

    _, summary = run_session(tmp_path, target="sleep:5ms", concurrency=2, requests=1500, during=(1.5, kill_one))
    assert len(summary["faults"]["worker_deaths"]) == 1
    # Tickets the lost actor held and never used went back to the other: only its in-flight request is lost.
    assert summary["requests"] + summary["faults"]["requests_lost"] == 1500


def test_ticks_across_a_loss_are_not_counted_as_the_commanded_level(ray_cluster, tmp_path):
    import ray

    def kill_one(engine):
        ray.kill(engine.backend._actors[1], no_restart=True)

    _, summary = run_session(tmp_path, mode="open", rate=400.0, duration_s=4, during=(1.5, kill_one))
    assert summary["levels"]
    for level in summary["levels"]:
        # Every level's throughput is its commanded rate: none holds ticks that lacked the lost actor's share
        # (those would read half of it, 200; a loaded box moves a short level by up to a fifth).
        assert level["throughput_rps"] == pytest.approx(400.0, rel=0.25), summary["levels"]


def test_the_closed_loop_starts_at_the_instant_every_actor_shares(ray_cluster, tmp_path):
    # Four users at sleep:2ms can do at most 4 / (p50) requests a second: a first second above that bound holds
    # requests sent before the shared start instant (folded into tick 0).
    session, summary = run_session(tmp_path, target="sleep:2ms", concurrency=4, duration_s=4)
    lines = [json.loads(line) for line in (tmp_path / "intervals.jsonl").read_text().splitlines()]
    assert lines
    bound = 4 / (summary["latency_ms"]["p50"] / 1000)
    assert lines[0]["requests"] <= bound * lines[0]["t"] * 1.02, (lines[0], bound)
    assert summary["throughput_rps"] <= bound * 1.02
