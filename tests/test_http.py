"""The HTTP target end to end against the reference service as a real server process."""

from __future__ import annotations

import json
import threading
import time

import pytest

from http_fixtures import reference_service, stop
from mlstress_tui.analysis.edge_users import edge_report
from mlstress_tui.cli import main
from mlstress_tui.load.engine import LoadEngine
from mlstress_tui.load.spec import LoadSpec
from mlstress_tui.load.targets.http import HttpTarget
from mlstress_tui.session import RunSession


@pytest.fixture(scope="module")
def service(small_db):
    with reference_service(small_db, "--pool-size", "4") as (base, _process):
        yield base


def summary_of(path):
    return json.loads((path / "summary.json").read_text())


@pytest.mark.slow
def test_closed_and_open_loop_against_the_service_never_write_its_secrets(service, small_db, tmp_path, capsys):
    host = service.removeprefix("http://")
    url = f"http://robot:pw-Secret-77@{host}/predict/{{user_id}}?token=tok-Secret-88"
    for load, run_dir in ((["--concurrency", "4"], tmp_path / "closed"), (["--rate", "200"], tmp_path / "open")):
        code = main(["run", "--headless", "--url", url, "-H", "Authorization: Bearer hdr-Secret-99",
                     "--users-db", str(small_db), *load, "--duration", "1.5", "--out", str(run_dir)])
        summary = summary_of(run_dir)
        assert code == 0 and summary["requests"] > 50 and summary["errors"] == 0, summary["errors_by_kind"]
        assert summary["target"]["kind"] == "http" and summary["target"]["headers"] == ["Authorization"]
        written = "".join(path.read_text(errors="replace") for path in run_dir.iterdir())
        printed = capsys.readouterr()
        for secret in ("pw-Secret-77", "tok-Secret-88", "hdr-Secret-99"):
            assert secret not in written + printed.out + printed.err


@pytest.mark.slow
def test_unknown_users_are_missing_user_and_edge_users_are_named(service, small_db, tmp_path):
    engine = LoadEngine(HttpTarget(url=f"{service}/features/{{user_id}}"),
                        LoadSpec(concurrency=2, user_mix="edge", requests=80), run_dir=tmp_path, users_db=small_db)
    summary = RunSession(engine, run_dir=tmp_path).run_bounded()
    assert set(summary["errors_by_kind"]) == {"missing_user"}
    assert 15 <= summary["errors_by_kind"]["missing_user"] <= 25  # the unknown-user quarter of the edge mix


@pytest.mark.slow
def test_5xx_slow_responses_and_a_server_that_goes_away_are_errors_by_kind(small_db, tmp_path):
    with reference_service(small_db, "--fail-rate", "1") as (base, _):
        summary = RunSession(LoadEngine(HttpTarget(url=f"{base}/features/{{user_id}}"),
                                        LoadSpec(concurrency=2, requests=40), run_dir=tmp_path / "5xx",
                                        users_db=small_db), run_dir=tmp_path / "5xx").run_bounded()
        assert summary["errors_by_kind"] == {"http_5xx": 40}
    with reference_service(small_db, "--extra-latency-ms", "400") as (base, _):
        summary = RunSession(LoadEngine(HttpTarget(url=f"{base}/features/{{user_id}}"),
                                        LoadSpec(concurrency=2, timeout_s=0.1, duration_s=1.0), run_dir=tmp_path / "slow",
                                        users_db=small_db), run_dir=tmp_path / "slow").run_bounded()
        assert summary["errors_by_kind"].get("timeout", 0) >= 4 and summary["latency_ms"]["max"] < 400
    with reference_service(small_db) as (base, process):
        engine = LoadEngine(HttpTarget(url=f"{base}/features/{{user_id}}"), LoadSpec(concurrency=2, duration_s=3.0),
                            run_dir=tmp_path / "gone", users_db=small_db)
        session = RunSession(engine, run_dir=tmp_path / "gone")
        session.start()
        killer = threading.Timer(1.0, stop, args=(process,))
        killer.start()
        summary = session.run_until_finished(threading.Event())
        killer.join()
    assert summary["ok"] > 0
    kinds = summary["errors_by_kind"]
    assert kinds.get("connect_refused", 0) + kinds.get("reset", 0) > 0, kinds
    assert summary["requests"] == summary["ok"] + summary["errors"] + summary["unfinished"]


@pytest.mark.slow
def test_concurrency_changes_at_run_time_against_the_service(service, small_db, tmp_path):
    engine = LoadEngine(HttpTarget(url=f"{service}/features/{{user_id}}"), LoadSpec(concurrency=1, duration_s=2.0),
                        run_dir=tmp_path, users_db=small_db)
    session = RunSession(engine, run_dir=tmp_path)
    session.start()
    time.sleep(0.8)
    session.set_concurrency(4)
    summary = session.run_until_finished(threading.Event())
    assert [level["level"] for level in summary["levels"]] == [1.0, 4.0]


@pytest.mark.parametrize("argv, fragment", [
    (["--url", "http://127.0.0.1:1/features/{user_id}"], "nothing listening at http://127.0.0.1:1"),
    (["--url", "ftp://example.com/{user_id}"], "must be http:// or https://"),
    (["--url", "http://[::1/x/{user_id}"], "not a valid URL"),
    (["--url", "http://127.0.0.1:1/features"], "has no {user_id}"),
    (["--url", "http://127.0.0.1:1/f", "--method", "POST", "--body", '{"user": {user_id}}'], "not valid JSON"),
])
def test_bad_http_input_is_one_line_and_exit_2(small_db, tmp_path, capsys, argv, fragment):
    code = main(["run", "--headless", *argv, "--users-db", str(small_db), "--duration", "1",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.slow
def test_sigint_against_a_service_writes_the_summary_and_leaves_no_worker(service, small_db, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from test_run_cli import _alive, _children

    process = subprocess.Popen(
        [sys.executable, "-m", "mlstress_tui", "run", "--headless", "--url", f"{service}/features/{{user_id}}",
         "--users-db", str(small_db), "--concurrency", "4", "--duration", "120", "--out", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 30
    while not ((tmp_path / "intervals.jsonl").exists() and (tmp_path / "intervals.jsonl").read_text().count("\n")):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    workers = _children(process.pid)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130 and "Traceback" not in err
    assert summary_of(tmp_path)["interrupted"] is True and summary_of(tmp_path)["requests"] > 0
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert workers and not any(_alive(pid) for pid in workers)
    assert urllib_ok(f"{service}/healthz")  # the service is the user's: it keeps running


def urllib_ok(url: str) -> bool:
    import urllib.request

    return urllib.request.urlopen(url, timeout=2).status == 200


def wrong_answers(path: str) -> tuple[int, str, bytes]:
    """JSON cut short under a JSON Content-Type, plain text, or made-up features for any id at all."""
    kind, _, user_id = path.strip("/").partition("/")
    if kind == "cut":
        return 200, "application/json", b'{"user_id": "' + user_id.encode()
    if kind == "text":
        return 200, "text/plain; charset=utf-8", b"ok"
    return 200, "application/json", json.dumps({"user_id": user_id, "score": 0.5}).encode()


@pytest.mark.parametrize("path, expect_json, kind", [
    ("cut", None, "bad_response"),  # the Content-Type promises JSON: a body that does not parse fails
    ("cut", False, None),
    ("text", None, None),  # nothing promised JSON
    ("text", True, "bad_response"),
    ("any", True, None),
])
def test_a_body_that_is_not_the_json_promised_is_bad_response(path, expect_json, kind):
    from http_fixtures import stub_service
    from mlstress_tui.load.targets.http import HttpError

    with stub_service(wrong_answers) as base:
        live = HttpTarget(url=f"{base}/{path}/{{user_id}}", expect_json=expect_json).open(2.0)
        handle = live.connect()
        try:
            if kind is None:
                live.request(handle, "USR00000001", time.perf_counter_ns() + 2_000_000_000)
            else:
                with pytest.raises(HttpError) as raised:
                    live.request(handle, "USR00000001", time.perf_counter_ns() + 2_000_000_000)
                assert raised.value.error_kind == kind and "not JSON" in str(raised.value)
        finally:
            live.close(handle)


@pytest.mark.slow
def test_bad_responses_are_counted_by_kind_in_a_run(tmp_path):
    from http_fixtures import stub_service

    with stub_service(wrong_answers) as base:
        engine = LoadEngine(HttpTarget(url=f"{base}/cut/{{user_id}}"), LoadSpec(concurrency=1, requests=20, workers=1),
                            run_dir=tmp_path)
        summary = RunSession(engine, run_dir=tmp_path).run_bounded()
    assert summary["requests"] == 20 and summary["errors_by_kind"] == {"bad_response": 20}


@pytest.mark.slow
def test_the_reference_service_keeps_the_contract_features_as_json_and_404_for_unknown(service, small_db, tmp_path):
    engine = LoadEngine(HttpTarget(url=f"{service}/predict/{{user_id}}", expect_json=True),
                        LoadSpec(concurrency=2, user_mix="edge", requests=40), run_dir=tmp_path, users_db=small_db)
    session = RunSession(engine, run_dir=tmp_path)
    session.add_report("edge.json", lambda done: edge_report(done.totals.total.edge_classes, done.edge_class_sizes))
    summary = session.run_bounded()
    assert set(summary["errors_by_kind"]) == {"missing_user"}
    assert session.reports["edge.json"]["edge_errors"] == 0


@pytest.mark.slow
def test_a_service_answering_ids_nobody_holds_fails_the_edge_class(small_db, tmp_path, capsys):
    from http_fixtures import stub_service

    with stub_service(wrong_answers) as base:
        code = main(["run", "--headless", "--url", f"{base}/any/{{user_id}}", "--users-db", str(small_db),
                     "--user-mix", "edge", "--requests", "40", "--concurrency", "2", "--out", str(tmp_path / "run")])
    assert code == 0, capsys.readouterr().out[-2000:]
    edge = json.loads((tmp_path / "run" / "edge.json").read_text())
    unknown = next(row for row in edge["classes"] if row["class"] == "unknown_user")
    assert unknown["requests"] > 0 and unknown["failures_by_kind"] == {"answered_unknown": unknown["requests"]}
    assert edge["edge_errors"] == unknown["requests"]
    assert "answered_unknown" in capsys.readouterr().out
