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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_suite_judged_against_its_baseline_shows_before_and_after(tmp_path, small_db, capsys):
    base = tmp_path / "base"
    assert main(["accept", "--db", str(small_db), "--preset", str(suite(tmp_path, "1000")), "--label", "v1",
                 "--report-dir", str(base)]) == 0
    relative = tmp_path / "relative.toml"
    relative.write_text(FAST_SUITE.replace("{p95}", '"baseline * 100"'))
    new = tmp_path / "new"
    code = main(["accept", "--db", str(small_db), "--preset", str(relative), "--label", "v2",
                 "--baseline", str(base), "--report-dir", str(new)])
    assert code == 0, capsys.readouterr().out[-2000:]
    report = json.loads((new / "report.json").read_text())
    before = json.loads((base / "report.json").read_text())
    p95 = next(c for c in report["criteria"] if c["metric"] == "p95_ms")
    base_p95 = next(s for s in before["stages"] if s["name"] == "steady")["metrics"]["p95_ms"]
    assert p95["baseline"] == base_p95 and p95["threshold"] == pytest.approx(base_p95 * 100, rel=1e-3)
    assert p95["stated"] == "p95_ms < baseline * 100" and "× 100" in p95["note"]
    assert report["baseline"]["label"] == "v1" and report["label"] == "v2"
    markdown = (new / "report.md").read_text()
    assert "| Baseline |" in markdown and "Baseline: `" in markdown


def test_relative_criteria_need_a_baseline_and_a_baseline_needs_a_report(tmp_path, small_db, capsys):
    relative = tmp_path / "relative.toml"
    relative.write_text(FAST_SUITE.replace("{p95}", '"baseline * 1.1"'))
    assert main(["accept", "--db", str(small_db), "--preset", str(relative), "--report-dir", str(tmp_path / "r")]) == 2
    assert "--baseline DIR" in capsys.readouterr().err
    assert main(["accept", "--db", str(small_db), "--preset", str(relative), "--baseline", str(tmp_path),
                 "--report-dir", str(tmp_path / "r2")]) == 2
    err = capsys.readouterr().err
    assert "holds no report.json" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_accept_writes_the_release_checklist_with_its_evidence(tmp_path, small_db, capsys):
    profile = tmp_path / "prod.toml"
    assert main(["profile", "--db", str(small_db), "--out", str(profile)]) == 0
    text = profile.read_text()
    profile.write_text(text.replace("users = 2000", "users = 20000", 1))  # production is ten times the twin
    reports = tmp_path / "reports"
    main(["accept", "--db", str(small_db), "--preset", str(suite(tmp_path, "1000")), "--profile", str(profile),
          "--report-dir", str(reports)])
    checklist = {item["key"]: item for item in json.loads((reports / "report.json").read_text())["checklist"]}
    assert list(checklist) == ["volume", "heavy_tail", "percentiles", "gate", "heavy_users", "peak_errors",
                               "throughput"]
    assert checklist["volume"]["status"] == "fail" and "-90%" in checklist["volume"]["evidence"]
    assert checklist["heavy_tail"]["status"] == "pass"
    assert checklist["gate"]["status"] == "pass"
    assert checklist["percentiles"]["status"] == "not checked"  # the fast suite has one load stage
    assert checklist["throughput"]["status"] == "not checked" and "target_concurrency" in checklist["throughput"]["evidence"]
    assert "## Release checklist" in (reports / "report.md").read_text()
    assert "release checklist:" in capsys.readouterr().out
