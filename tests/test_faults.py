"""Faults are measurements: hung, raising, printing and dying targets, and the open loop's accounting."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from mlstress_tui.analysis.validity import validity
from mlstress_tui.cli import main
from mlstress_tui.load.engine import LoadEngine
from mlstress_tui.load.spec import LoadSpec
from mlstress_tui.load.targets import Target, parse_target
from mlstress_tui.load.targets.python import PythonTarget
from mlstress_tui.load.targets.sqlite import SQLiteTarget
from mlstress_tui.session import RunSession


def python_target(name: str) -> Target:
    return PythonTarget(f"pipeline_fixtures:{name}")


def run(target: Target, load: LoadSpec, run_dir, users_db=None) -> dict:
    engine = LoadEngine(target, load, run_dir=run_dir, users_db=users_db)
    return RunSession(engine, run_dir=run_dir).run_bounded(poll_s=0.05)


@pytest.mark.slow
def test_a_call_that_never_returns_is_a_timeout_at_its_deadline_and_its_user_is_replaced(tmp_path, small_db):
    started = time.monotonic()
    summary = run(python_target("hangs"), LoadSpec(concurrency=4, timeout_s=0.3, duration_s=1.5), tmp_path, small_db)
    wall = time.monotonic() - started
    assert summary["errors_by_kind"]["timeout"] >= 4
    # Recorded with their latency (at least the deadline), and the run's worst latency is theirs.
    assert summary["latency_ms"]["max"] >= 300
    assert summary["faults"]["stuck_users_max"] >= 4
    # Replaced users kept the load going: calls that do return kept completing after the first hangs.
    lines = [json.loads(line) for line in (tmp_path / "intervals.jsonl").read_text().splitlines()]
    assert all(line["requests"] > 0 for line in lines[:-1])
    assert summary["requests"] == summary["ok"] + summary["errors"]
    assert summary["harness"]["verdict"] != "load_not_held"
    assert wall < 1.5 + 0.3 + 6  # the finish never waits on the hung calls (their sleep is 30 s)


@pytest.mark.slow
def test_without_replacement_stuck_users_are_the_load_not_held(tmp_path, small_db):
    summary = run(python_target("hangs"), LoadSpec(concurrency=4, timeout_s=0.3, duration_s=1.2, replace_stuck=False),
                  tmp_path, small_db)
    assert summary["errors_by_kind"]["timeout"] >= 1
    assert summary["harness"]["verdict"] == "load_not_held"
    assert "not replaced" in summary["harness"]["note"]


@pytest.mark.slow
def test_system_exit_from_the_target_is_an_error_of_its_kind_and_the_users_go_on(tmp_path, small_db):
    summary = run(python_target("exits"), LoadSpec(concurrency=2, duration_s=1.0), tmp_path, small_db)
    assert summary["errors_by_kind"]["SystemExit"] > 100
    assert summary["ok"] > summary["errors_by_kind"]["SystemExit"]


@pytest.mark.slow
def test_what_the_target_prints_logs_and_warns_goes_to_target_log(tmp_path, small_db, capfd):
    summary = run(python_target("chatty"), LoadSpec(concurrency=1, requests=50), tmp_path, small_db)
    text = (tmp_path / "target.log").read_text()
    for fragment in ("features for USR", "stderr line for USR", "logged for USR", "UserWarning"):
        assert fragment in text
    assert summary["target_output"]["lines"] >= 150
    captured = capfd.readouterr()
    assert "features for" not in captured.out + captured.err


@pytest.mark.slow
def test_a_worker_that_dies_is_said_replaced_and_the_exit_code_is_3(tmp_path, small_db, capsys):
    code = main(["run", "--headless", "--target", "python:pipeline_fixtures:dies", "--users-db", str(small_db),
                 "--concurrency", "2", "--duration", "2", "--out", str(tmp_path / "run")])
    out = capsys.readouterr().out
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert code == 3
    assert summary["faults"]["worker_deaths"] and summary["faults"]["worker_deaths"][0]["exitcode"] == 1
    assert summary["harness"]["verdict"] == "load_not_held"
    assert "died" in out
    assert summary["requests"] > 0  # what the survivors (and replacements) measured is kept


@pytest.mark.slow
def test_the_open_loop_sends_exactly_the_requests_asked_for(tmp_path):
    for rate, requests in ((200, 50), (100, 7)):
        summary = run(parse_target("sleep:1ms"), LoadSpec(mode="open", rate=rate, requests=requests),
                      tmp_path / f"{rate}-{requests}")
        assert summary["requests"] == requests


@pytest.mark.slow
def test_uniform_arrivals_interleave_across_workers(tmp_path, monkeypatch):
    stamps = tmp_path / "stamps"
    monkeypatch.setenv("MLSTRESS_STAMPS", str(stamps))
    run(python_target("stamps"), LoadSpec(mode="open", rate=8, duration_s=2.2, workers=2), tmp_path)
    times = np.sort(np.array([int(line) for line in stamps.read_text().split()], dtype=np.int64))
    gaps_ms = np.diff(times) / 1e6
    assert len(times) >= 12
    # 8/s over two workers: one request every 125 ms, not two at once every 250 ms.
    assert gaps_ms.min() > 60, gaps_ms


@pytest.mark.slow
def test_the_open_loop_counts_the_backlog_it_never_sent(tmp_path):
    summary = run(parse_target("sleep:100ms"), LoadSpec(mode="open", rate=400, pool_size=4, duration_s=1.5),
                  tmp_path)
    # Capacity 40/s against 400/s offered: most of what was due was never sent.
    assert summary["unsent"] > summary["requests"]
    bound = summary["latency_with_unsent_ms"]
    assert bound["max"] >= summary["latency_ms"]["max"] * 0.9
    assert bound["p50"] >= summary["latency_ms"]["p50"] * 0.5


@pytest.mark.slow
def test_a_printing_target_never_reaches_the_dashboard_s_terminal(tmp_path, small_db):
    """The dashboard in a pseudo-terminal, as over SSH: the target's lines must not appear in what it draws."""
    import fcntl
    import os
    import pty
    import select
    import struct
    import sys
    import termios
    from pathlib import Path

    tests = str(Path(__file__).resolve().parent)
    argv = [sys.executable, "-c", "import sys; from mlstress_tui.cli import main; sys.exit(main(sys.argv[1:]))",
            "run", "--target", "python:pipeline_fixtures:chatty", "--users-db", str(small_db),
            "--concurrency", "1", "--duration", "2", "--out", str(tmp_path / "run")]
    pid, fd = pty.fork()
    if pid == 0:  # the child: nothing of pytest's may run here
        try:
            fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
            os.environ["TERM"] = "xterm-256color"
            os.environ["PYTHONPATH"] = tests + os.pathsep + os.environ.get("PYTHONPATH", "")
            os.execv(sys.executable, argv)
        finally:
            os._exit(127)
    drawn, started, quit_sent = b"", time.monotonic(), False
    while time.monotonic() - started < 40:
        if not quit_sent and (tmp_path / "run" / "summary.json").exists():
            os.write(fd, b"q")  # the bounded run ended and waits on its final panel: leave it
            quit_sent = True
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            drawn += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, drawn[-2000:]
    screen = drawn.decode("utf-8", "replace")
    assert "live stats" in screen
    for fragment in ("features for", "stderr line for", "logged for", "UserWarning"):
        assert fragment not in screen
    assert "features for USR" in (tmp_path / "run" / "target.log").read_text()


@pytest.mark.slow
def test_open_loop_hung_calls_are_timeouts_too(tmp_path, small_db):
    summary = run(python_target("hangs"), LoadSpec(mode="open", rate=100, timeout_s=0.3, duration_s=1.2),
                  tmp_path, small_db)
    assert summary["errors_by_kind"]["timeout"] >= 10
    assert summary["latency_ms"]["max"] >= 300
    assert summary["requests"] == summary["ok"] + summary["errors"]


def test_a_single_request_is_never_judged_cpu_bound(tmp_path):
    # The last sliver of a tick used to read as a worker using a whole core.
    summary = run(parse_target("sleep:1ms"), LoadSpec(concurrency=1, requests=1), tmp_path)
    assert summary["requests"] == 1
    assert summary["harness"]["worker_cpu_max"] < 0.95
    assert summary["harness"]["verdict"] != "cpu_bound"
    if summary["harness"]["hiccup_ms"]["p50"] is None:
        assert summary["harness"]["verdict"] == "unknown" and "too short" in summary["harness"]["note"]


@pytest.mark.slow
def test_a_stopped_harness_is_a_stall_said_and_not_load_time(tmp_path):
    """Ctrl-Z then `fg` (SIGSTOP/SIGCONT to the whole process group): the stall turns the verdict, not the target."""
    import os
    import signal
    import subprocess
    import sys

    out = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "mlstress_tui", "run", "--headless", "--target", "sleep:1ms", "--concurrency", "2",
         "--duration", "5", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.monotonic() + 30
    while not (out / "intervals.jsonl").exists() or not (out / "intervals.jsonl").read_text().count("\n") >= 1:
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGSTOP)
    time.sleep(1.5)
    os.killpg(process.pid, signal.SIGCONT)
    printed, _ = process.communicate(timeout=60)
    assert process.returncode == 0, printed
    summary = json.loads((out / "summary.json").read_text())
    # Seconds stopped are a stop, not a lagging timer: the words keep them apart.
    assert summary["harness"]["verdict"] == "stopped", summary["harness"]
    assert summary["harness"]["stopped_s"] >= 1.2 and summary["stopped_s"] >= 1.2
    assert "stalled for" in printed and "every worker" in printed
    assert validity(summary).kind == "stopped" and validity(summary).vouched is False
    # Every worker stood still: that time is not load time, and the rate is over the time the load ran.
    assert summary["load_s"] <= summary["duration_s"] - 1.2
    assert summary["throughput_rps"] == pytest.approx(summary["requests"] / summary["load_s"], rel=1e-3)
    marked = [json.loads(line) for line in (out / "intervals.jsonl").read_text().splitlines()]
    assert [line for line in marked if line.get("harness_stall_ms", 0) >= 1200]


def _hold_exclusive_lock(path, seconds: float, taken):
    """Another process's writer: BEGIN EXCLUSIVE on the file for `seconds` (readers are locked out)."""
    import sqlite3

    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("BEGIN EXCLUSIVE")
    taken.set()
    time.sleep(seconds)
    connection.execute("ROLLBACK")
    connection.close()


@pytest.mark.slow
def test_a_database_locked_at_start_is_named_as_locked(tmp_path, small_db, capsys):
    import shutil
    import threading

    copy = tmp_path / "locked.sqlite"
    shutil.copy(small_db, copy)
    taken = threading.Event()
    holder = threading.Thread(target=_hold_exclusive_lock, args=(copy, 4.0, taken))
    holder.start()
    taken.wait(5)
    started = time.monotonic()
    code = main(["run", "--headless", "--db", str(copy), "--concurrency", "1", "--duration", "1",
                 "--out", str(tmp_path / "run")])
    elapsed = time.monotonic() - started
    holder.join()
    err = capsys.readouterr().err
    assert code == 2
    assert "locked by another process" in err and "generate" not in err
    assert elapsed < 3.5  # said within the probe's short wait, not after Python's silent 5 s


@pytest.mark.slow
def test_a_lock_taken_mid_run_obeys_the_deadline_and_is_counted(tmp_path, small_db):
    import shutil
    import threading

    copy = tmp_path / "locked.sqlite"
    shutil.copy(small_db, copy)
    session = RunSession(LoadEngine(SQLiteTarget(copy),
                                    LoadSpec(concurrency=2, timeout_s=0.3, duration_s=3.0), run_dir=tmp_path / "run"),
                         run_dir=tmp_path / "run")
    session.start()
    time.sleep(0.8)
    taken = threading.Event()
    holder = threading.Thread(target=_hold_exclusive_lock, args=(copy, 1.2, taken))
    holder.start()
    summary = session.run_until_finished(threading.Event())
    holder.join()
    kinds = summary["errors_by_kind"]
    assert kinds.get("timeout", 0) + kinds.get("locked", 0) >= 4, kinds
    # No request waited on the lock past its 0.3 s deadline and then counted as ok.
    assert summary["latency_ms"]["max"] < 600, summary["latency_ms"]
    assert summary["requests"] == summary["ok"] + summary["errors"] + summary["unfinished"]


@pytest.mark.slow
def test_the_controller_never_imports_the_target_and_says_while_workers_do(tmp_path, small_db, monkeypatch, capsys):
    import os

    marks = tmp_path / "marks"
    monkeypatch.setenv("MLSTRESS_IMPORT_MARKS", str(marks))
    monkeypatch.setenv("MLSTRESS_IMPORT_DELAY", "2.5")
    code = main(["run", "--headless", "--target", "python:slow_import_fixture:features", "--users-db", str(small_db),
                 "--concurrency", "1", "--workers", "1", "--duration", "0.5", "--out", str(tmp_path / "run")])
    assert code == 0
    pids = {int(line) for line in marks.read_text().split()}
    assert os.getpid() not in pids and len(pids) == 1  # imported by the worker only
    assert "starting: 0 of 1 worker processes ready after" in capsys.readouterr().err


@pytest.mark.slow
def test_a_target_slower_to_open_than_the_startup_timeout_is_one_line(tmp_path, small_db, monkeypatch, capsys):
    monkeypatch.setenv("MLSTRESS_IMPORT_DELAY", "5")
    started = time.monotonic()
    code = main(["run", "--headless", "--target", "python:slow_import_fixture:features", "--users-db", str(small_db),
                 "--concurrency", "1", "--workers", "1", "--duration", "1", "--startup-timeout", "1",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2
    assert "after 1 s: raise --startup-timeout" in err and "Traceback" not in err
    assert time.monotonic() - started < 4


@pytest.mark.slow
def test_a_target_whose_import_ends_its_process_is_one_line_at_once(tmp_path, small_db, monkeypatch, capsys):
    monkeypatch.setenv("MLSTRESS_IMPORT_EXIT", "3")
    started = time.monotonic()
    code = main(["run", "--headless", "--target", "python:slow_import_fixture:features", "--users-db", str(small_db),
                 "--concurrency", "2", "--workers", "2", "--duration", "1", "--startup-timeout", "60",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2
    assert "ended (exit status 3) while opening python:slow_import_fixture:features" in err
    assert "Traceback" not in err
    assert time.monotonic() - started < 15  # not the 60 s start-up timeout


@pytest.mark.slow
def test_a_missing_function_is_reported_by_the_workers_in_one_line(tmp_path, small_db, capsys):
    code = main(["run", "--headless", "--target", "python:pipeline_fixtures:no_such_function", "--users-db",
                 str(small_db), "--concurrency", "1", "--duration", "1", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2
    assert "no function 'no_such_function'" in err and "Traceback" not in err


@pytest.mark.slow
def test_a_run_directory_removed_mid_run_still_prints_the_summary_and_names_the_path(tmp_path, capsys):
    import shutil
    import threading

    out = tmp_path / "run"

    def remove_once_running() -> None:
        # Once the run writes its first interval (a busy box may take seconds to start the workers).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if (out / "intervals.jsonl").exists() and (out / "intervals.jsonl").read_text().count("\n"):
                shutil.rmtree(out)
                return
            time.sleep(0.05)

    remover = threading.Thread(target=remove_once_running)
    remover.start()
    code = main(["run", "--headless", "--target", "sleep:1ms", "--concurrency", "2", "--duration", "3",
                 "--out", str(out)])
    remover.join()
    printed = capsys.readouterr()
    assert code == 3
    assert "requests" in printed.out and "p99" in printed.out  # the figures reach the screen first
    assert f"cannot write {out / 'summary.json'}: No such file or directory" in printed.out
    assert "Traceback" not in printed.out + printed.err


@pytest.mark.slow
def test_under_a_real_memory_limit_the_users_that_could_not_start_are_said(tmp_path):
    """`--concurrency 600` in an address space too small for 600 thread stacks: said, and never exit 0."""
    import os
    import resource
    import subprocess
    import sys

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1_500_000_000, 1_500_000_000))

    out = tmp_path / "run"
    process = subprocess.run(
        [sys.executable, "-m", "mlstress_tui", "run", "--headless", "--target", "sleep:1ms", "--concurrency", "600",
         "--duration", "3", "--out", str(out)],
        capture_output=True, text=True, timeout=90, preexec_fn=limit, env={**os.environ, "MALLOC_ARENA_MAX": "2"})
    summary = json.loads((out / "summary.json").read_text())
    assert "Traceback" not in process.stdout + process.stderr
    assert summary["harness"]["verdict"] == "load_not_held", summary["harness"]
    assert summary["users_running_max"] < 600
    said = [event["action"] for event in summary["faults"]["events"]]
    # Where the limit bites decides the words: a thread that cannot start, a worker that cannot, or a user whose
    # thread started and then could not allocate (a MemoryError, the user said dead and replaced).
    died_of_memory = any("MemoryError" in (event.get("error") or "") for event in summary["faults"]["events"])
    assert "cannot_hold_load" in said or "worker_died" in said or died_of_memory, said
    assert process.returncode != 0
    assert "at most" in process.stdout or "died" in process.stdout
