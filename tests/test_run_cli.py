"""`mlstress-tui run --headless` and `selfcheck` as a user meets them: output, files, exit codes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlstress_tui.cli import main


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.slow
def test_ctrl_c_while_the_commands_load_is_interrupted_not_a_traceback(capsys, monkeypatch):
    import mlstress_tui.cli as cli

    def interrupted_import() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted_import)
    code, out, err = run_cli(capsys, "run", "--headless")
    assert code == 130 and err == "interrupted\n" and out == ""


def test_headless_run_prints_progress_and_summary_and_writes_files(capsys, tmp_path):
    code, out, err = run_cli(capsys, "run", "--headless", "--target", "sleep:1ms", "--concurrency", "2",
                             "--duration", "2.2", "--out", str(tmp_path))
    assert code == 0, err
    progress = [line for line in out.splitlines() if "req/s" in line and "p50" in line]
    assert len(progress) >= 2
    assert "requests" in out and "summary.json" in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["load"]["mode"] == "closed" and summary["interrupted"] is False
    assert (tmp_path / "intervals.jsonl").read_text().count("\n") >= 2


@pytest.mark.slow
def test_sqlite_run_on_a_generated_database(capsys, tmp_path, small_db):
    code, out, err = run_cli(capsys, "run", "--db", str(small_db), "--concurrency", "2", "--requests", "300",
                             "--user-mix", "weighted", "--out", str(tmp_path))
    assert code == 0, err
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["requests"] == summary["ok"] == 300
    assert summary["database"]["users"] == 2000 and summary["database"]["seed"] == 7
    assert summary["target"]["kind"] == "sqlite"


@pytest.mark.slow
def test_a_query_returning_no_row_is_a_missing_user_error(capsys, tmp_path, small_db):
    query = tmp_path / "none.sql"
    query.write_text("SELECT user_id FROM users WHERE user_id = :user_id AND 0")
    code, out, err = run_cli(capsys, "run", "--db", str(small_db), "--query", str(query), "--concurrency", "1",
                             "--requests", "20", "--out", str(tmp_path / "run"))
    assert code == 0, err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["errors_by_kind"] == {"missing_user": 20}


@pytest.fixture
def empty_db(tmp_path) -> Path:
    path = tmp_path / "empty.sqlite"
    sqlite3.connect(path).execute("CREATE TABLE other (x)").connection.close()
    return path


@pytest.mark.parametrize("argv, fragments", [
    (["--db", "/nonexistent/db.sqlite"], ["/nonexistent/db.sqlite", "does not exist", "generate"]),
    (["--target", "redis:6379"], ["unknown target", "redis:6379"]),
    (["--target", "sleep:fast"], ["bad target", "sleep:2ms"]),
    (["--target", "python:no_such_module_xyz:f"], ["no module named", "no_such_module_xyz"]),
    (["--target", "sleep:1ms", "--concurrency", "0"], ["--concurrency", "at least 1"]),
    (["--target", "sleep:1ms", "--rate", "-5"], ["--rate", "positive"]),
    (["--target", "sleep:1ms", "--concurrency", "2", "--rate", "5"], ["--rate", "not allowed with"]),
    (["--target", "sleep:1ms", "--preset", "nope"], ["unknown preset", "nope"]),
])
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, argv, fragments):
    code, out, err = run_cli(capsys, "run", *argv, "--duration", "1", "--out", str(tmp_path))
    assert_one_line_error(code, err, *fragments)


def test_a_database_without_the_schema_is_bad_input(capsys, tmp_path, empty_db):
    code, out, err = run_cli(capsys, "run", "--db", str(empty_db), "--duration", "1", "--out", str(tmp_path))
    assert_one_line_error(code, err, "lacks table(s)", "events")
    not_sqlite = tmp_path / "notes.txt"
    not_sqlite.write_text("hello, this is not a database" * 100)
    code, out, err = run_cli(capsys, "run", "--db", str(not_sqlite), "--duration", "1", "--out", str(tmp_path))
    assert_one_line_error(code, err, "notes.txt", "not a readable SQLite database")


@pytest.mark.parametrize("sql, fragment", [
    (None, "cannot read query file"),
    ("", "is empty"),
    ("SELECT * FROM users WHERE user_id = 'USR00000001'", "no :user_id parameter"),
    ("SELECT * FROM nowhere WHERE user_id = :user_id", "does not run"),
    ("SELECT * FROM users WHERE user_id = :user_id AND x = :other", "unknown parameters"),
])
def test_bad_query_files_are_bad_input(capsys, tmp_path, small_db, sql, fragment):
    query = tmp_path / "q.sql"
    if sql is not None:
        query.write_text(sql)
    code, out, err = run_cli(capsys, "run", "--db", str(small_db), "--query", str(query), "--duration", "1",
                             "--out", str(tmp_path / "run"))
    assert_one_line_error(code, err, fragment)


def _children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(child) for child in (task / "children").read_text().split()}
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_stops_the_run_writes_the_summary_and_leaves_no_worker(tmp_path, signum):
    process = subprocess.Popen(
        [sys.executable, "-m", "mlstress_tui", "run", "--headless", "--target", "sleep:1ms", "--concurrency", "4",
         "--duration", "120", "--out", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    intervals = tmp_path / "intervals.jsonl"
    deadline = time.monotonic() + 30
    while not (intervals.exists() and intervals.read_text().count("\n") >= 1):
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read() if process.poll() else "slow"
        time.sleep(0.05)
    workers = _children(process.pid)
    assert len(workers) >= 2
    process.send_signal(signum)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["requests"] > 0
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in workers)


def test_an_unknown_theme_is_bad_input(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    code, out, err = run_cli(capsys, "run", "--target", "sleep:1ms", "--theme", "no-such-theme", "--out", str(tmp_path))
    assert_one_line_error(code, err, "unknown theme 'no-such-theme'", "mlstress-night")


@pytest.mark.parametrize("toml, fragment", [
    ("[load]\nconcurrency = \"8\"\n", "concurrency must be a whole number"),
    ("[load]\nthreads = 8\n", "unknown [load] keys"),
    ("[load]\nconcurrency = 0\n", "[load] concurrency must be a whole number of virtual users, at least 1"),
    ("[sla]\np95_ms = -1\n", "p95_ms must be a positive number"),
    ("[load\n", "not valid TOML"),
])
def test_bad_preset_files_are_bad_input(capsys, tmp_path, toml, fragment):
    preset = tmp_path / "bad.toml"
    preset.write_text(toml)
    code, out, err = run_cli(capsys, "run", "--target", "sleep:1ms", "--preset", str(preset), "--out", str(tmp_path))
    assert_one_line_error(code, err, fragment)
