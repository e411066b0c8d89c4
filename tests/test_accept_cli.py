"""`accept` end to end on a small database: stages run, criteria judged, reports written, exit codes."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from mlstress_tui.cli import main

FAST_SUITE = """
name = "fast"
description = "every stage kind, a second or two each"
[sla]
p95_ms = 100.0
[[stages]]
name = "steady"
kind = "load"
concurrency = 2
requests_per_user = 200
[[stages]]
name = "heavy"
kind = "outliers"
threshold_ms = 500.0
requests_per_stratum = 10
[[stages]]
name = "cliff"
kind = "ramp"
start = 1
max = 2
step_duration_s = 0.6
[[stages]]
name = "edge"
kind = "edge"
requests = 40
[[criteria]]
stage = "steady"
metric = "error_rate"
op = "<"
value = 0.01
[[criteria]]
stage = "steady"
metric = "p95_ms"
op = "<"
value = {p95}
[[criteria]]
stage = "heavy"
metric = "breach_rate"
op = "<"
value = 0.05
[[criteria]]
stage = "cliff"
metric = "safe_concurrency"
op = ">="
value = 1
[[criteria]]
stage = "edge"
metric = "edge_errors"
op = "<="
value = 0
"""


def suite(tmp_path, p95: str):
    path = tmp_path / "fast.toml"
    path.write_text(FAST_SUITE.replace("{p95}", p95))
    return path


def test_a_suite_that_passes_writes_every_report_and_exits_0(tmp_path, small_db, capsys):
    reports = tmp_path / "reports"
    code = main(["accept", "--db", str(small_db), "--preset", str(suite(tmp_path, "1000")),
                 "--report-dir", str(reports)])
    out = capsys.readouterr().out
    assert code == 0, out[-3000:]
    report = json.loads((reports / "report.json").read_text())
    assert report["verdict"] == "PASS" and report["passed"] == 5
    assert [stage["ran"] for stage in report["stages"]] == [True] * 4
    steady = report["stages"][0]["metrics"]
    assert steady["requests"] == 400  # measured, never estimated
    assert report["safe_concurrency"] is not None
    assert (reports / "heavy" / "outliers.json").exists() and (reports / "edge" / "edge.json").exists()
    cases = ET.parse(reports / "junit.xml").getroot().iter("testcase")
    assert len(list(cases)) == 5
    svg = (reports / "acceptance.svg").read_text()
    assert "PASS" in svg and "edge_errors" in svg
    assert "acceptance PASS" in out


def test_a_criterion_that_fails_exits_1_with_measured_against_threshold(tmp_path, small_db, capsys):
    reports = tmp_path / "reports"
    code = main(["accept", "--db", str(small_db), "--preset", str(suite(tmp_path, "0.0001")),
                 "--report-dir", str(reports)])
    assert code == 1
    root = ET.parse(reports / "junit.xml").getroot()
    failures = [case for case in root.iter("testcase") if case.find("failure") is not None]
    assert [case.get("name") for case in failures] == ["p95_ms < 0.0001"]
    assert "measured" in failures[0].find("failure").get("message")
    assert "FAIL" in (reports / "report.md").read_text()


@pytest.mark.parametrize("change, fragment", [
    ('metric = "breach_rate"', "metric 'p95_knee'"),
    ('stage = "edge"\nmetric', "stage 'nowhere'"),
])
def test_a_criterion_naming_what_does_not_exist_is_exit_2(tmp_path, small_db, capsys, change, fragment):
    text = FAST_SUITE.replace("{p95}", "100")
    bad = {'metric = "breach_rate"': 'metric = "p95_knee"', 'stage = "edge"\nmetric': 'stage = "nowhere"\nmetric'}
    path = tmp_path / "bad.toml"
    path.write_text(text.replace(change, bad[change]))
    code = main(["accept", "--db", str(small_db), "--preset", str(path), "--report-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2
    assert fragment in err and "bad.toml" in err and len(err.strip().splitlines()) == 1


def test_a_preset_without_criteria_cannot_gate(tmp_path, small_db, capsys):
    code = main(["accept", "--db", str(small_db), "--preset", "default", "--report-dir", str(tmp_path / "r")])
    assert code == 2
    assert "no [[criteria]]" in capsys.readouterr().err


def test_show_prints_the_final_panel_of_an_accept_run_and_of_a_plain_run(tmp_path, small_db, capsys):
    reports = tmp_path / "reports"
    assert main(["accept", "--db", str(small_db), "--preset", str(suite(tmp_path, "1000")),
                 "--report-dir", str(reports)]) == 0
    capsys.readouterr()
    assert main(["show", str(reports)]) == 0
    assert "acceptance PASS: 5 of 5 criteria passed" in capsys.readouterr().out
    # A plain run is judged against its own SLA (kept in its summary).
    assert main(["show", str(reports / "steady")]) == 0
    shown = capsys.readouterr().out
    assert "p95_ms" in shown and "SLA p95 100 ms" in shown


def test_show_of_what_is_not_a_finished_run_is_one_line(tmp_path, capsys):
    assert main(["show", str(tmp_path / "nowhere")]) == 2
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "intervals.jsonl").write_text("{}\n")
    assert main(["show", str(tmp_path / "half")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "not a finished run" in err
