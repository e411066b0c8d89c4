"""The acceptance gate's data model: preset stages and criteria, their evaluation, and the report files."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

import pytest

from mlstress_tui.analysis.acceptance import CriterionResult, evaluate, load_metrics, verdict
from mlstress_tui.errors import UsageError
from mlstress_tui.presets import available_presets, load_preset
from mlstress_tui.report.acceptance_report import build_report, write_reports
from mlstress_tui.stages import (COMPLETED, COULD_NOT_START, DID_NOT_END, INTERRUPTED, METRICS_BY_KIND, NOT_RUN,
                                 Criterion, EdgeStage, LoadStage, OutliersStage, RampStage, StageEnd)

STARTED = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


# --- presets ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", available_presets())
def test_every_shipped_preset_loads(name):
    preset = load_preset(name)
    assert preset.name == name
    for criterion in preset.criteria:
        stage = next(s for s in preset.stages if s.name == criterion.stage)
        assert criterion.metric in METRICS_BY_KIND[stage.kind]


def test_the_acceptance_preset_is_the_classic_suite():
    preset = load_preset("acceptance")
    stages = {stage.name: stage for stage in preset.stages}
    # Bound by time, not by requests: on a fast target 20 users x 50 requests was over in a tenth of a second.
    assert stages["moderate"] == LoadStage(name="moderate", concurrency=20, duration_s=10.0)
    assert stages["peak"] == LoadStage(name="peak", concurrency=100, duration_s=10.0)
    assert isinstance(stages["heavy"], OutliersStage) and stages["heavy"].threshold_ms == 500
    assert isinstance(stages["cliff"], RampStage) and isinstance(stages["edge"], EdgeStage)
    labels = {(c.stage, c.label) for c in preset.criteria}
    assert labels == {("moderate", "p95_ms < 100"), ("peak", "p95_ms < 300"), ("peak", "error_rate < 0.01"),
                      ("heavy", "breach_rate < 0.05"), ("cliff", "safe_concurrency >= 2"),
                      ("edge", "edge_errors <= 0")}
    ramp = stages["cliff"]
    steps = math.floor(math.log2(ramp.max / ramp.start)) + 1
    assert steps * ramp.step_duration_s <= 15  # the whole preset stays near a minute, as its description says
    assert "about 30 s of load" in preset.description


def test_presets_without_stages_keep_their_load_and_sla():
    preset = load_preset("traffic")
    assert preset.load["rate"] == 200.0 and preset.sla_p95_ms == 200.0
    assert preset.stages == () and preset.criteria == ()


def test_a_ramp_stage_takes_the_presets_sla_unless_it_sets_its_own(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text('[sla]\np95_ms = 150\n[[stages]]\nname = "a"\nkind = "ramp"\n'
                    '[[stages]]\nname = "b"\nkind = "ramp"\nsla_p95_ms = 80\nstep = 4\n')
    a, b = load_preset(str(path)).stages
    assert (a.sla_p95_ms, a.factor, a.max) == (150.0, 2.0, 64)
    assert (b.sla_p95_ms, b.step, b.factor) == (80.0, 4, None)


LOAD = '[[stages]]\nname = "m"\nkind = "load"\nconcurrency = 2\nrequests = 10\n'
CRITERION = '[[criteria]]\nstage = "m"\nmetric = "p95_ms"\nop = "<"\nvalue = 100\n'


@pytest.mark.parametrize("toml, fragments", [
    ("[[stages]\n", ["not valid TOML"]),
    ("[[stage]]\nname = 'm'\n", ["unknown keys", "stage"]),
    ("[sla]\np99_ms = 5\n", ["[sla]", "p99_ms"]),
    ("[sla]\np95_ms = true\n", ["p95_ms"]),
    ("stages = 3\n", ["stages", "[[stages]]"]),
    (LOAD.replace("requests = 10", "requests = 10\nthreads = 2"), ["stage 'm'", "threads"]),
    (LOAD.replace("concurrency = 2", "concurrency = true"), ["stage 'm'", "concurrency", "whole number"]),
    (LOAD.replace("concurrency = 2", "concurrency = 2.5"), ["stage 'm'", "concurrency", "whole number"]),
    (LOAD.replace("requests = 10", "duration_s = 'long'"), ["stage 'm'", "duration_s", "number"]),
    (LOAD.replace("requests = 10", "duration_s = inf"), ["stage 'm'", "duration_s", "number"]),
    (LOAD.replace("concurrency = 2", "concurrency = 0"), ["stage 'm'", "concurrency", "at least 1"]),
    (LOAD.replace("concurrency = 2", "rate = 5.0\nconcurrency = 2"), ["stage 'm'", "concurrency", "rate"]),
    (LOAD.replace("concurrency = 2\n", ""), ["stage 'm'", "concurrency", "rate"]),
    (LOAD.replace("requests = 10", "requests = 10\nduration_s = 5"), ["stage 'm'", "duration_s", "exactly one"]),
    (LOAD.replace("requests = 10\n", ""), ["stage 'm'", "requests_per_user", "exactly one"]),
    (LOAD.replace("concurrency = 2\nrequests = 10", "rate = 5\nrequests_per_user = 3"),
     ["stage 'm'", "requests_per_user", "rate"]),
    (LOAD.replace("kind = \"load\"", "kind = \"soak\""), ["stage 'm'", "kind", "soak"]),
    (LOAD.replace("name = \"m\"", "name = \"Big Stage\""), ["stage 'Big Stage'", "name"]),
    (LOAD.replace("name = \"m\"\n", ""), ["stage #1", "name"]),
    (LOAD + LOAD, ["stage 'm'", "name", "earlier stage"]),
    ('[[stages]]\nname = "r"\nkind = "ramp"\nstep_duration_s = 0\n', ["stage 'r'", "step_duration_s", "positive"]),
    ('[[stages]]\nname = "r"\nkind = "ramp"\nstart = 8\nmax = 4\n', ["stage 'r'", "max", "start"]),
    ('[[stages]]\nname = "r"\nkind = "ramp"\nstep = "x1"\n', ["stage 'r'", "step", "x2"]),
    ('[[stages]]\nname = "r"\nkind = "ramp"\nstep = "double"\n', ["stage 'r'", "step"]),
    ('[[stages]]\nname = "r"\nkind = "ramp"\nstep = 0\n', ["stage 'r'", "step", "at least 1"]),
    ('[[stages]]\nname = "r"\nkind = "ramp"\nmax_error_rate = 2\n', ["stage 'r'", "max_error_rate"]),
    ('[[stages]]\nname = "o"\nkind = "outliers"\n', ["stage 'o'", "threshold_ms"]),
    ('[[stages]]\nname = "o"\nkind = "outliers"\nthreshold_ms = -5\n', ["stage 'o'", "threshold_ms", "positive"]),
    ('[[stages]]\nname = "e"\nkind = "edge"\nrequests = 0\n', ["stage 'e'", "requests", "at least 1"]),
    ('[[stages]]\nname = "e"\nkind = "edge"\nthreshold_ms = 5\n', ["stage 'e'", "threshold_ms", "unknown"]),
    (LOAD + CRITERION.replace('stage = "m"', 'stage = "peak"'), ["criterion #1", "stage 'peak'", "m"]),
    (CRITERION, ["criterion #1", "stage 'm'", "add [[stages]]"]),
    (LOAD + CRITERION.replace("p95_ms", "knee_concurrency"), ["criterion #1", "metric 'knee_concurrency'", "load"]),
    (LOAD + CRITERION.replace("p95_ms", "p97_ms"), ["criterion #1", "metric 'p97_ms'", "p95_ms"]),
    (LOAD + CRITERION.replace('op = "<"', 'op = "=="'), ["criterion #1", "op '=='", "<="]),
    (LOAD + CRITERION.replace("value = 100", "value = true"), ["criterion #1", "value", "number"]),
    (LOAD + CRITERION.replace("value = 100", "value = nan"), ["criterion #1", "value", "number"]),
    (LOAD + CRITERION.replace("value = 100\n", ""), ["criterion #1", "value", "missing"]),
    (LOAD + CRITERION + "limit = 3\n", ["criterion #1", "limit"]),
])
def test_a_malformed_preset_names_the_file_and_the_key(tmp_path, toml, fragments):
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(UsageError) as raised:
        load_preset(str(path))
    message = str(raised.value)
    assert "\n" not in message
    for fragment in [str(path), *fragments]:
        assert fragment in message, f"{fragment!r} not in {message!r}"


# --- evaluation -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("op, measured, passed", [
    ("<", 99.999, True), ("<", 100.0, False),
    ("<=", 100.0, True), ("<=", 100.001, False),
    (">", 100.001, True), (">", 100.0, False),
    (">=", 100.0, True), (">=", 99.999, False),
])
def test_each_op_at_its_threshold(op, measured, passed):
    criterion = Criterion("m", "p95_ms", op, 100.0)
    [result] = evaluate([criterion], {"m": {"p95_ms": measured}}, {})
    assert result == CriterionResult(criterion, measured, passed, "")


def test_a_metric_not_measured_fails():
    criteria = [Criterion("m", "p99_ms", "<", 100), Criterion("m", "p95_ms", "<", 100),
                Criterion("m", "error_rate", "<", 0.01), Criterion("r", "usl_peak_concurrency", ">=", 1)]
    results = evaluate(criteria, {"m": {"p95_ms": None, "error_rate": math.nan}, "r": {"usl_peak_concurrency": None}},
                       why_missing={"r": {"usl_peak_concurrency": "no retrograde term: throughput did not fall"}})
    assert [r.passed for r in results] == [False] * 4 and all(r.judged for r in results)
    assert all(r.measured is None and r.note.startswith("not measured: ") for r in results)
    assert "no p99_ms" in results[0].note
    assert results[3].note == "not measured: no retrograde term: throughput did not fall"
    assert verdict(results) == "FAIL"


def test_a_stage_that_did_not_run_leaves_its_criteria_unjudged_and_the_suite_incomplete():
    criteria = [Criterion("gone", "p95_ms", "<", 100), Criterion("m", "p95_ms", "<", 100)]
    results = evaluate(criteria, {"m": {"p95_ms": 10.0}})
    assert [(r.passed, r.judged) for r in results] == [(False, False), (True, True)]
    assert results[0].note == "not judged: stage 'gone' did not run"
    assert verdict(results) == "INCOMPLETE"


def test_an_interrupted_stage_is_shown_but_not_judged_and_a_stage_that_could_not_start_fails():
    criteria = [Criterion("a", "p95_ms", "<", 100), Criterion("b", "p95_ms", "<", 100)]
    measured = {"a": {"p95_ms": 10.0}}
    interrupted = {"a": StageEnd(INTERRUPTED, "interrupted after 2.5 s"), "b": StageEnd(NOT_RUN, "did not run")}
    results = evaluate(criteria, measured, ends=interrupted)
    assert results[0] == CriterionResult(criteria[0], 10.0, False, "not judged: stage 'a' interrupted after 2.5 s",
                                         judged=False)
    assert verdict(results, interrupted) == "INCOMPLETE"
    gone = {"a": StageEnd(COMPLETED), "b": StageEnd(COULD_NOT_START, "cannot import 'model' (FileNotFoundError)")}
    results = evaluate(criteria, measured, ends=gone)
    assert [(r.passed, r.judged) for r in results] == [(True, True), (False, True)]
    assert results[1].note == "stage 'b' could not start: cannot import 'model' (FileNotFoundError)"
    assert verdict(results, gone) == "FAIL"
    # A stage with no criterion that could not start fails the suite too; one that did not end leaves it incomplete.
    only_a = evaluate(criteria[:1], measured, ends=gone)
    assert verdict(only_a, gone) == "FAIL"
    assert verdict(only_a, {"a": StageEnd(COMPLETED), "b": StageEnd(DID_NOT_END, "did not end")}) == "INCOMPLETE"
    assert verdict(only_a, {"a": StageEnd(COMPLETED)}) == "PASS"


@pytest.mark.parametrize("op", ["<", "<=", ">", ">="])
def test_no_knee_fails_whatever_the_comparison(op):
    [result] = evaluate([Criterion("r", "safe_concurrency", op, 2)], {"r": {"safe_concurrency": None}})
    assert result.passed is False and "first step already broke its SLA" in result.note


@pytest.mark.parametrize("op, passed", [("<", False), ("<=", False), (">", True), (">=", True)])
def test_nobody_breaching_counts_as_an_infinite_breach_event_count(op, passed):
    [result] = evaluate([Criterion("o", "breach_event_count", op, 1000)], {"o": {"breach_event_count": None}})
    assert result.passed is passed and result.measured == math.inf and "+infinity" in result.note


def test_a_suspect_stage_keeps_its_verdicts_and_says_why():
    criteria = [Criterion("a", "p95_ms", "<", 100), Criterion("a", "error_rate", "<", 0.01),
                Criterion("b", "p95_ms", "<", 100), Criterion("a", "p99_ms", "<", 100)]
    measured = {"a": {"p95_ms": 50.0, "error_rate": 0.5}, "b": {"p95_ms": 50.0}}
    results = evaluate(criteria, measured, {"a": "cpu_bound: the load generator was saturated", "b": None})
    assert [r.passed for r in results] == [True, False, True, False]
    for result in (results[0], results[1]):
        assert result.note == "measurement suspect: cpu_bound: the load generator was saturated"
    assert results[2].note == ""
    assert results[3].note.startswith("not measured") and results[3].note.endswith("the load generator was saturated")


def test_the_verdict_passes_only_when_every_criterion_passed():
    criterion = Criterion("m", "p95_ms", "<", 100)
    assert verdict(evaluate([criterion] * 3, {"m": {"p95_ms": 10.0}})) == "PASS"
    assert verdict(evaluate([criterion, Criterion("m", "p95_ms", ">", 100)], {"m": {"p95_ms": 10.0}})) == "FAIL"
    assert verdict([]) == "FAIL"


def test_load_metrics_read_a_summary_and_no_requests_is_no_error_rate():
    summary = {"requests": 200, "errors": 2, "error_rate": 0.01, "throughput_rps": 99.5,
               "latency_ms": {"p50": 1.0, "p90": 2.0, "p95": 3.0, "p99": 4.0, "p999": 5.0, "max": 6.0, "mean": 1.5},
               "pool_wait_ms": {"p95": 0.2}}
    metrics = load_metrics(summary)
    assert set(metrics) == set(METRICS_BY_KIND["load"])
    assert metrics["p95_ms"] == 3.0 and metrics["pool_wait_p95_ms"] == 0.2 and metrics["error_rate"] == 0.01
    empty = load_metrics({"requests": 0, "errors": 0, "error_rate": 0.0, "latency_ms": {}, "pool_wait_ms": {}})
    [result] = evaluate([Criterion("m", "error_rate", "<", 0.01)], {"m": empty})
    assert result.passed is False


# --- reports --------------------------------------------------------------------------------------------------

@pytest.fixture
def report(tmp_path):
    preset = load_preset("acceptance")
    measured = {
        "moderate": {"p95_ms": 42.5, "requests": 1000, "throughput_rps": 812.3, "error_rate": 0.0},
        "peak": {"p95_ms": 350.0, "requests": 1000, "throughput_rps": 650.0, "error_rate": 0.002},
        "heavy": {"breach_event_count": None, "breach_rate": 0.0, "p95_ms": 30.0},
        "cliff": {"knee_concurrency": 8, "safe_concurrency": 8, "usl_peak_concurrency": None, "requests": 4000},
        # edge did not run
    }
    suspect = {"peak": "cpu_bound: the harness was saturated"}
    results = evaluate(preset.criteria, measured, suspect)
    document = build_report(preset_name=preset.name, stages=preset.stages, results=results, measured=measured,
                            suspect=suspect, summaries={"moderate": {"run_dir": "moderate"}}, seed=42,
                            database={"users": 2000, "seed": 7}, started_at=STARTED, duration_s=41.25)
    return document, write_reports(document, tmp_path / "reports")


def test_report_json_holds_the_verdict_criteria_and_stages(report):
    document, paths = report
    assert [p.name for p in paths] == ["report.json", "report.md", "junit.xml"]
    assert not list(paths[0].parent.glob("*.tmp"))
    stored = json.loads(paths[0].read_text())
    assert stored == document
    # The edge stage did not run: the suite is INCOMPLETE, whatever the others say, and its criterion is not judged.
    assert stored["schema"] == "mlstress.report/1" and stored["verdict"] == "INCOMPLETE"
    assert (stored["passed"], stored["failed"], stored["not_judged"]) == (4, 1, 1)
    assert stored["knee_concurrency"] == 8 and stored["safe_concurrency"] == 8
    assert stored["breach_event_count"] is None
    assert stored["started_at"] == "2025-01-02T03:04:05.000+00:00" and stored["seed"] == 42
    peak_p95 = next(c for c in stored["criteria"] if c["stage"] == "peak" and c["metric"] == "p95_ms")
    assert peak_p95 == {"stage": "peak", "metric": "p95_ms", "op": "<", "threshold": 300.0, "unit": "ms",
                        "measured": 350.0, "passed": False, "judged": True,
                        "note": "measurement suspect: cpu_bound: the harness was saturated"}
    stages = {s["name"]: s for s in stored["stages"]}
    assert stages["edge"]["ran"] is False and stages["peak"]["suspect"].startswith("cpu_bound")
    assert (stages["edge"]["status"], stages["moderate"]["status"]) == ("not_run", "completed")
    assert stages["moderate"]["summary"] == {"run_dir": "moderate"} and stages["peak"]["summary"] is None


def test_junit_has_one_case_per_criterion_and_fails_where_the_criteria_failed(report):
    document, paths = report
    root = ET.parse(paths[2]).getroot()
    [suite] = root.iter("testsuite")
    assert suite.get("name") == "mlstress-tui acceptance"
    cases = suite.findall("testcase")
    assert len(cases) == len(document["criteria"]) == int(suite.get("tests"))
    failed = {(case.get("classname"), case.get("name")): case.find("failure") for case in cases
              if case.find("failure") is not None}
    assert int(suite.get("failures")) == len(failed) == 1
    assert set(failed) == {("peak", "p95_ms < 300")}
    assert failed[("peak", "p95_ms < 300")].get("message") == "measured 350.0 ms, threshold < 300.0 ms"
    # The criterion of the stage that did not run is an error: CI marks it red, not skipped and not green.
    errors = {(case.get("classname"), case.get("name")): case.find("error") for case in cases
              if case.find("error") is not None}
    assert int(suite.get("errors")) == len(errors) == 1
    assert errors[("edge", "edge_errors <= 0")].get("message") == "not judged: stage 'edge' did not run"
    properties = {prop.get("name"): prop.get("value") for prop in suite.iter("property")}
    assert properties["verdict"] == "INCOMPLETE" and properties["stage.edge"] == "did not run"


def test_report_md_lists_every_criterion_with_its_result(report):
    document, paths = report
    text = paths[1].read_text()
    assert text.startswith("# Acceptance INCOMPLETE: preset `acceptance`")
    assert "4 of 6 criteria passed, 1 not judged (their stage did not finish)." in text
    assert "| NOT JUDGED | edge | edge_errors <= 0 | n/a | not judged: stage 'edge' did not run |" in text
    assert "| FAIL | peak | p95_ms < 300.0 ms | 350.0 ms | measurement suspect" in text
    assert "| PASS | moderate | p95_ms < 100.0 ms | 42.5 ms |" in text
    assert "| PASS | peak | error_rate < 1.00% | 0.20% |" in text
    assert "| PASS | cliff | safe_concurrency >= 2 users | 8 users |" in text
    for criterion in document["criteria"]:
        assert f"| {criterion['stage']} | {criterion['metric']} {criterion['op']} " in text
    assert "| edge | edge | did not run |" in text
    assert "| peak | load | completed | 1,000 | 650.0 req/s | 350.0 ms | 0.20% | measurement suspect: cpu_bound" in text
