"""`mlstress-tui generate` through the real entry point: summary, defaults, one-line errors, Ctrl-C."""

from __future__ import annotations

import io
import sqlite3

import pytest

from mlstress_tui.cli import main
from mlstress_tui.commands.generate import ProgressBar
from mlstress_tui.paths import default_database_path
from mlstress_tui.synth import read_meta


def test_generate_writes_the_database_and_a_summary(tmp_path, capsys):
    out = tmp_path / "db.sqlite"
    code = main(["generate", "--users", "1500", "--mean-events", "12", "--seed", "5", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0
    assert captured.err == ""  # no progress bar when stderr is not a terminal
    expected = (str(out), "1,500", "18,000", "mean 12.0", "p50", "p99", "max", "MB", "without events", "NULL", "Zipf")
    for words in expected:
        assert words in captured.out
    conn = sqlite3.connect(out)
    meta = read_meta(conn)
    conn.close()
    assert (meta["users"], meta["events"], meta["seed"], meta["mean_events"]) == (1500, 18_000, 5, 12.0)


def test_default_out_is_the_embedded_database(capsys):
    assert main(["generate", "--users", "300", "--mean-events", "3"]) == 0
    assert default_database_path().exists()
    assert str(default_database_path()) in capsys.readouterr().out


def test_flags_reach_the_generator(tmp_path, capsys):
    out = tmp_path / "db.sqlite"
    argv = ["generate", "--users", "1000", "--mean-events", "5", "--max-events", "40", "--locale", "de_DE",
            "--no-edge-cases", "--out", str(out)]
    assert main(argv) == 0
    assert "none (--no-edge-cases)" in capsys.readouterr().out
    conn = sqlite3.connect(out)
    meta = read_meta(conn)
    top = conn.execute("SELECT max(event_count) FROM mlstress_user_stats").fetchone()[0]
    conn.close()
    assert (meta["max_events"], meta["locale"], meta["edge_cases"]["enabled"]) == (40, "de_DE", False)
    assert top <= 40


def test_existing_file_needs_force(tmp_path, capsys):
    out = tmp_path / "db.sqlite"
    out.write_text("precious")
    assert main(["generate", "--users", "200", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already exists" in err and "--force" in err
    assert out.read_text() == "precious"
    assert main(["generate", "--users", "200", "--mean-events", "2", "--out", str(out), "--force"]) == 0
    assert out.read_bytes().startswith(b"SQLite format 3")


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--users", "0"], ["--users"]),
        (["--users", "-5"], ["--users"]),
        (["--mean-events", "0.5"], ["--mean-events"]),
        (["--mean-events", "45", "--max-events", "20"], ["--max-events", "below"]),
        (["--seed", "-1"], ["--seed"]),
        (["--locale", "zz_ZZ"], ["--locale"]),
        (["--tail-index", "0.5"], ["--tail-index", "between"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, words, tmp_path, capsys):
    out = tmp_path / "db.sqlite"
    assert main(["generate", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    assert all(word in err for word in words), err
    assert not out.exists()


def test_unparsable_number_exits_2(capsys):
    try:
        code = main(["generate", "--users", "many"])
    except SystemExit as exit_:  # argparse's own exit, when main lets it through
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--users" in err and "many" in err


def test_unwritable_directory_is_one_line_and_exit_2(tmp_path, capsys):
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    assert main(["generate", "--users", "100", "--out", str(not_a_directory / "db.sqlite")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(not_a_directory) in err and "Traceback" not in err


def test_out_pointing_at_a_directory_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["generate", "--users", "100", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "directory" in err


def test_ctrl_c_exits_130_and_leaves_the_target_as_it_was(tmp_path, capsys, monkeypatch):
    from mlstress_tui.synth import generator

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(generator, "_write_user_stats", ctrl_c)
    fresh = tmp_path / "fresh.sqlite"
    assert main(["generate", "--users", "500", "--out", str(fresh)]) == 130
    assert not fresh.exists()
    existing = tmp_path / "existing.sqlite"
    existing.write_text("previous database")
    assert main(["generate", "--users", "500", "--out", str(existing), "--force"]) == 130
    assert existing.read_text() == "previous database"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["existing.sqlite"]


def test_progress_bar_shows_rows_per_second():
    stream = io.StringIO()
    bar = ProgressBar(stream)
    bar.update(0, 1000)
    bar.update(1000, 1000)
    bar.close()
    text = stream.getvalue()
    assert text.startswith("\r") and "rows/s" in text and "1,000/1,000 events" in text and "100%" in text


@pytest.mark.slow
def test_sigterm_leaves_no_temporary_file_behind(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    process = subprocess.Popen([sys.executable, "-m", "mlstress_tui", "generate", "--users", "200000",
                                "--out", str(tmp_path / "big.sqlite")], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not list(tmp_path.glob(".big.sqlite.*.tmp")):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_an_out_path_in_a_missing_directory_is_refused_not_created(tmp_path, capsys):
    from mlstress_tui.cli import main

    assert main(["generate", "--users", "10", "--out", str(tmp_path / "no" / "such" / "x.sqlite")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()


def test_a_generation_the_disk_cannot_hold_is_refused_before_it_starts(tmp_path, capsys, monkeypatch):
    import shutil

    from mlstress_tui.cli import main

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**11, 10**11 - 10**9, 10**9))
    assert main(["generate", "--users", "20000000", "--out", str(tmp_path / "huge.sqlite")]) == 2
    err = capsys.readouterr().err
    assert "about 116.5 GB" in err and "1.0 GB free" in err and "--force" in err and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_a_database_reports_its_size_in_the_database_not_a_file_size(tmp_path):
    from pathlib import Path

    from mlstress_tui.commands.generate import summary
    from mlstress_tui.synth import GenerateParams, GenerateResult

    result = GenerateResult(path=Path("postgresql://postgres@127.0.0.1:5432/features"), users=10, events=20,
                            seconds=1.0, file_size=5_000_000, events_per_user={"mean": 2, "p50": 2, "p99": 4, "max": 5},
                            edge_cases={"enabled": False})
    into_database = summary(result, GenerateParams(users=10), in_database=True)
    assert "size in database 5.0 MB" in into_database and "file size" not in into_database
    assert "file size        5.0 MB" in summary(result, GenerateParams(users=10))
