"""The gate never says PASS when it should not: an unfinished suite, failing heavy users, made-up answers, a target gone
between stages, a report directory that cannot be written, and one validity rule in every artefact."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mlstress_tui.analysis.acceptance import evaluate
from mlstress_tui.analysis.validity import validity
from mlstress_tui.cli import main
from mlstress_tui.report.acceptance_report import build_report, report_junit, report_markdown, write_reports
from mlstress_tui.stages import Criterion, LoadStage
from mlstress_tui.tui.acceptance_view import acceptance_text

TESTS = Path(__file__).parent


def preset(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.toml"
    path.write_text(text)
    return path


def junit_cases(path: Path) -> dict[tuple[str, str], ET.Element]:
    return {(case.get("classname"), case.get("name")): case for case in ET.parse(path).getroot().iter("testcase")}


# --- incomplete is not PASS ------------------------------------------------------------------------------------

@pytest.mark.slow
def test_an_interrupted_suite_is_incomplete_in_every_artefact_and_exits_130(tmp_path, capsys):
    reports = tmp_path / "reports"
    process = subprocess.Popen(
        [sys.executable, "-m", "mlstress_tui", "accept", "--headless", "--preset", "smoke", "--target", "sleep:1ms",
         "--report-dir", str(reports)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    intervals = reports / "smoke" / "intervals.jsonl"
    deadline = time.monotonic() + 30
    while not (intervals.exists() and intervals.read_text().count("\n")):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, out[-2000:] + err[-2000:]
    assert "Traceback" not in err
    report = json.loads((reports / "report.json").read_text())
    assert report["verdict"] == "INCOMPLETE" and report["interrupted"] is True
    [stage] = report["stages"]
    assert stage["status"] == "interrupted" and stage["reason"].startswith("interrupted after ")
    assert report["criteria"] and all(c["judged"] is False and c["passed"] is False for c in report["criteria"])
    root = ET.parse(reports / "junit.xml").getroot()
    assert root.get("errors") == str(len(report["criteria"])) and root.get("failures") == "0"
    assert all(case.find("error") is not None for case in root.iter("testcase"))
    assert (reports / "report.md").read_text().startswith("# Acceptance INCOMPLETE: preset `smoke`")
    assert "INCOMPLETE" in (reports / "acceptance.svg").read_text()
    assert "acceptance INCOMPLETE" in out
    # The printed stage line says the validity in the report's words.
    assert f"  stage smoke: {stage['validity']['line']}" in out
    assert main(["show", str(reports)]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith("acceptance INCOMPLETE") and "not finished: smoke interrupted after" in shown


def test_show_reads_a_report_written_before_incomplete_existed_as_incomplete(tmp_path, capsys):
    old = {"schema": "mlstress.report/1", "verdict": "PASS", "preset": "smoke", "passed": 1, "failed": 0,
           "criteria": [{"stage": "smoke", "metric": "requests", "op": ">=", "threshold": 1, "unit": "count",
                         "measured": 500, "passed": True, "note": ""}],
           "stages": [{"name": "smoke", "kind": "load", "ran": True, "suspect": None, "metrics": {}, "summary": None}],
           "knee_concurrency": None, "safe_concurrency": None, "breach_event_count": None, "seed": 42, "database": {},
           "started_at": "2026-01-01T00:00:00.000+00:00", "duration_s": 2.5, "interrupted": True}
    (tmp_path / "report.json").write_text(json.dumps(old))
    assert main(["show", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("acceptance INCOMPLETE: 1 of 1 criteria passed")


# --- errors are breaches, wrong answers are failures -----------------------------------------------------------

HEAVY_SUITE = """
name = "heavy-gate"
description = "the heavy-user gate only"
[[stages]]
name = "heavy"
kind = "outliers"
threshold_ms = 500.0
requests_per_stratum = 25
concurrency = 2
[[criteria]]
stage = "heavy"
metric = "breach_rate"
op = "<"
value = 0.05
"""


@pytest.mark.slow
def test_heavy_users_whose_requests_fail_fail_the_gate(tmp_path, small_db, monkeypatch, capsys):
    monkeypatch.setenv("MLSTRESS_LINEAR_DB", str(small_db))
    reports = tmp_path / "reports"
    code = main(["accept", "--target", "python:pipeline_fixtures:fails_for_heavy_users", "--users-db", str(small_db),
                 "--preset", str(preset(tmp_path, HEAVY_SUITE)), "--report-dir", str(reports), "--headless"])
    out = capsys.readouterr().out
    assert code == 1, out[-3000:]
    report = json.loads((reports / "report.json").read_text())
    assert report["verdict"] == "FAIL"
    [criterion] = report["criteria"]
    assert criterion["passed"] is False and criterion["measured"] > 0.05
    outliers = json.loads((reports / "heavy" / "outliers.json").read_text())
    heaviest = outliers["strata"][-1]
    assert heaviest["errors"] == heaviest["requests"] >= 20 and set(heaviest["errors_by_kind"]) == {"RuntimeError"}
    assert "fail: RuntimeError 100%" in outliers["failing"]["text"] and "no user breaches" not in out
    assert "Errors" in out and "failing: users with" in out


EDGE_SUITE = """
name = "edge-gate"
description = "the edge-user gate only"
[[stages]]
name = "edge"
kind = "edge"
requests = 40
concurrency = 2
[[criteria]]
stage = "edge"
metric = "edge_errors"
op = "<="
value = 0
"""


@pytest.mark.slow
@pytest.mark.parametrize("pipeline, code", [("answers_anyone", 1), ("none_for_unknown", 0)])
def test_a_pipeline_answering_unknown_ids_fails_the_edge_gate(tmp_path, small_db, monkeypatch, capsys, pipeline, code):
    monkeypatch.setenv("MLSTRESS_LINEAR_DB", str(small_db))
    reports = tmp_path / "reports"
    assert main(["accept", "--target", f"python:pipeline_fixtures:{pipeline}", "--users-db", str(small_db),
                 "--preset", str(preset(tmp_path, EDGE_SUITE)), "--report-dir", str(reports), "--headless"]) == code
    edge = json.loads((reports / "edge" / "edge.json").read_text())
    unknown = next(row for row in edge["classes"] if row["class"] == "unknown_user")
    # Each of the 2 virtual users takes the 4 classes in turn: 10 requests a class, give or take one per user.
    assert 8 <= unknown["requests"] <= 12
    if code:
        assert unknown["failures_by_kind"] == {"answered_unknown": unknown["requests"]}
        assert edge["edge_errors"] == unknown["requests"]
        assert "answered_unknown" in capsys.readouterr().out
    else:
        assert unknown["errors_by_kind"] == {"missing_user": unknown["requests"]} and edge["edge_errors"] == 0


# --- a stage that cannot start ------------------------------------------------------------------------------

VANISHING_SUITE = """
name = "vanishing"
description = "three short stages; the target cannot be imported on the second"
""" + "".join(f"""
[[stages]]
name = "{name}"
kind = "load"
concurrency = 1
requests = 20
[[criteria]]
stage = "{name}"
metric = "requests"
op = ">="
value = 20
""" for name in ("before", "gone", "after"))


@pytest.mark.slow
def test_a_stage_whose_target_disappears_fails_with_the_reason_and_the_others_still_run(tmp_path, small_db,
                                                                                       monkeypatch, capsys):
    monkeypatch.setenv("MLSTRESS_GONE_MARKER", str(tmp_path / "gone.marker"))
    reports = tmp_path / "reports"
    code = main(["accept", "--target", "python:vanishing_target:features", "--users-db", str(small_db),
                 "--workers", "1", "--preset", str(preset(tmp_path, VANISHING_SUITE)), "--report-dir", str(reports),
                 "--headless"])
    captured = capsys.readouterr()
    assert code == 1, captured.out[-3000:] + captured.err[-2000:]
    report = json.loads((reports / "report.json").read_text())
    assert report["verdict"] == "FAIL"
    stages = {stage["name"]: stage for stage in report["stages"]}
    assert [stages[name]["status"] for name in ("before", "gone", "after")] == ["completed", "could_not_start",
                                                                                "completed"]
    assert "cannot import 'vanishing_target'" in stages["gone"]["reason"] and "FileNotFoundError" in stages["gone"]["reason"]
    passed = {c["stage"]: c["passed"] for c in report["criteria"]}
    assert passed == {"before": True, "gone": False, "after": True}
    failure = junit_cases(reports / "junit.xml")[("gone", "requests >= 20")].find("failure")
    assert failure is not None and "could not start" in failure.text
    assert "stage gone could not start" in captured.out and "Traceback" not in captured.err


# --- reports that cannot be written ------------------------------------------------------------------------

@pytest.fixture
def unwritable_directory(tmp_path):
    """A 16 kB tmpfs filled to the last byte where a mount is allowed (root); else a read-only directory."""
    mount_point = tmp_path / "full"
    mount_point.mkdir()
    mounted = None
    if os.geteuid() == 0 and shutil.which("mount"):
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(mount_point)],
                                 capture_output=True, text=True)
    if mounted is None or mounted.returncode != 0:
        mount_point.chmod(0o500)
        try:
            yield mount_point, "Permission denied"
        finally:
            mount_point.chmod(0o700)
        return
    try:
        with open(mount_point / "filler", "wb") as filler:
            try:
                filler.write(b"\0" * 65536)
                filler.flush()
            except OSError:
                pass  # full: the point
        yield mount_point, "No space left on device"
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)


@pytest.mark.slow
def test_a_report_directory_that_cannot_be_written_is_one_line_and_exit_3(unwritable_directory):
    directory, why = unwritable_directory
    done = subprocess.run([sys.executable, "-m", "mlstress_tui", "accept", "--headless", "--preset", "smoke",
                           "--target", "sleep:1ms", "--report-dir", str(directory / "reports")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, done.stdout[-2000:] + done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and why in lines[0] and "--report-dir" in lines[0]
    assert "Traceback" not in done.stderr and "== stage" not in done.stdout


def test_reports_that_cannot_be_written_are_one_line_each_and_the_rest_still_tried(tmp_path):
    results = evaluate([Criterion("m", "p95_ms", "<", 100)], {"m": {"p95_ms": 10.0}})
    report = build_report(preset_name="p", stages=[LoadStage(name="m", concurrency=1, requests=1)], results=results,
                          measured={"m": {"p95_ms": 10.0}}, seed=1, database={}, started_at="now", duration_s=1.0)
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    errors: list[str] = []
    assert write_reports(report, blocked / "reports", errors) == []
    assert len(errors) == 3 and all(line.startswith(f"cannot write {blocked / 'reports'}") for line in errors)
    with pytest.raises(OSError):
        write_reports(report, blocked / "reports")


# --- one rule for validity ---------------------------------------------------------------------------------

def summary_with(verdict: str, *, kind: str = "http", note: str = "", stop_ms: float | None = None) -> dict:
    events = ([{"action": "harness_stall", "t": 1.5, "stall_ms": stop_ms, "stopped": True}] if stop_ms else [])
    return {"target": {"kind": kind}, "harness": {"verdict": verdict, "note": note, "worker_cpu_max": 0.4,
                                                  "hiccup_ms": {"p99": 0.12}},
            "faults": {"events": events}}


LAG = "the workers' own timer woke up to 0.6 ms late (p99): latencies of that order include the harness's delay"


@pytest.mark.parametrize("summary, vouched, kind", [
    (summary_with("ok"), True, "ok"),
    (summary_with("timer_lag", note=LAG), False, "timer_lag"),
    (summary_with("timer_lag", kind="sqlite", note=LAG), True, "timer_lag"),  # SQLite's cost: advice only
    (summary_with("cpu_bound", note="worker processes used whole cores"), False, "cpu_bound"),
    (summary_with("cpu_bound", kind="sqlite", note="worker processes used whole cores"), True, "cpu_bound"),
    (summary_with("stopped", kind="sqlite", stop_ms=3020.0), False, "stopped"),  # a stop is suspect for every target
    (summary_with("load_not_held", note="cores; 2 worker process(es) died"), False, "load_not_held"),
    (summary_with("unknown", note="the run was too short to judge the harness"), False, "unknown"),
])
def test_the_validity_rule_tells_a_lagging_timer_from_a_busy_core_a_stop_and_a_load_not_held(summary, vouched, kind):
    said = validity(summary)
    assert (said.vouched, said.kind) == (vouched, kind)
    assert said.line.startswith("vouched for" if vouched else f"measurement suspect: {kind}: ")
    if kind == "stopped":
        assert said.text.startswith("the harness was stopped for 3.02 s at 1.5 s")
    if summary["target"]["kind"] == "sqlite" and vouched and kind != "ok":
        assert "advice only: SQLite runs inside the worker processes" in said.text


def test_the_validity_rule_is_said_the_same_way_in_every_artefact(tmp_path):
    summaries = {"steady": summary_with("ok"), "peak": summary_with("stopped", stop_ms=3020.0),
                 "db": summary_with("cpu_bound", kind="sqlite", note="worker processes used whole cores")}
    stages = [LoadStage(name=name, concurrency=1, requests=10) for name in summaries]
    said = {name: validity(summary) for name, summary in summaries.items()}
    measured = {name: {"p95_ms": 10.0} for name in summaries}
    suspect = {name: v.suspect_reason for name, v in said.items()}
    results = evaluate([Criterion(name, "p95_ms", "<", 100) for name in summaries], measured, suspect)
    report = build_report(preset_name="p", stages=stages, results=results, measured=measured, suspect=suspect,
                          seed=1, database={}, started_at="now", duration_s=1.0,
                          validity={name: v.to_json() for name, v in said.items()})
    markdown, junit, text = report_markdown(report), report_junit(report), acceptance_text(report)
    properties = {prop.get("name"): prop.get("value") for prop in ET.fromstring(junit).iter("property")}
    for name, stage_validity in said.items():
        line = stage_validity.line
        assert next(s for s in report["stages"] if s["name"] == name)["validity"]["line"] == line
        assert f"| {line} |" in markdown
        assert properties[f"stage.{name}"] == f"completed; {line}"
    # A suspect stage's criteria say it in the same words; the panel and the console lead with the first suspect.
    note = next(c["note"] for c in report["criteria"] if c["stage"] == "peak")
    assert note == said["peak"].line
    assert f"peak: {said['peak'].line}" in text
    assert said["steady"].vouched and said["db"].vouched and not said["peak"].vouched


# --- a stage that did not end -------------------------------------------------------------------------------

def finished_session(*, requests=50, limit=50, lost=0, duration_s=None, ran_s=3.0, interrupted=False,
                     stopped_because=None):
    from types import SimpleNamespace

    summary = {"duration_s": ran_s, "requests": requests, "faults": {"requests_lost": lost},
               "load": {"requests": limit, "duration_s": duration_s}}
    return SimpleNamespace(summary=summary, interrupted=interrupted,
                           ramp_report={"stopped_because": stopped_because} if stopped_because else None)


@pytest.mark.parametrize("session, status, reason", [
    (finished_session(), "completed", ""),
    (finished_session(requests=37), "did_not_end", "did not end: 37 of 50 requests had an outcome after 3.0 s"),
    (finished_session(requests=37, lost=13), "completed", ""),  # lost with a dead worker: accounted (and exit 3)
    (finished_session(limit=None, duration_s=5.0, ran_s=2.0), "did_not_end", "did not end: ran 2.0 s of 5 s"),
    (finished_session(limit=None, duration_s=5.0, ran_s=5.0), "completed", ""),
    (finished_session(requests=10, interrupted=True), "interrupted", "interrupted after 3.0 s"),
])
def test_a_stage_that_did_not_reach_its_own_end_did_not_end(session, status, reason):
    from mlstress_tui.commands.accept import how_stage_ended

    end = how_stage_ended(LoadStage(name="s", concurrency=1, requests=50), session)
    assert (end.status, end.reason) == (status, reason)


def test_a_ramp_cut_off_by_its_time_bound_did_not_end():
    from mlstress_tui.commands.accept import how_stage_ended
    from mlstress_tui.stages import RampStage

    cut = how_stage_ended(RampStage(name="r"), finished_session(limit=None, stopped_because="run ended"))
    assert cut.status == "did_not_end" and cut.reason.startswith("the ramp was cut off after 3.0 s")
    done = how_stage_ended(RampStage(name="r"), finished_session(limit=None, stopped_because="8 users breaks the SLA"))
    assert done.status == "completed"


@pytest.mark.parametrize("verdict, interrupted, written, faulted, code", [
    ("PASS", False, True, False, 0), ("FAIL", False, True, False, 1), ("INCOMPLETE", False, True, False, 4),
    ("INCOMPLETE", True, True, False, 130), ("PASS", False, False, False, 3), ("FAIL", False, False, False, 3),
    ("PASS", False, True, True, 3), ("FAIL", False, True, True, 1),
])
def test_exit_codes_keep_failed_incomplete_and_the_tool_s_own_faults_apart(verdict, interrupted, written, faulted, code):
    from mlstress_tui.commands.accept import exit_code

    assert exit_code(verdict, interrupted=interrupted, reports_written=written, faulted=faulted) == code
