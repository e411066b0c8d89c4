"""Criteria relative to a baseline run: `value = "baseline * 1.10"` read from a preset, turned into a threshold."""

from __future__ import annotations

import math

import pytest

from mlstress_tui.analysis.acceptance import evaluate
from mlstress_tui.analysis.baseline import BaselineError, baseline_metrics, resolve_criteria
from mlstress_tui.cli import main
from mlstress_tui.errors import UsageError
from mlstress_tui.presets import load_preset
from mlstress_tui.stages import Criterion

PRESET = """
name = "relative"
[[stages]]
name = "moderate"
kind = "load"
concurrency = 2
requests = 100
[[stages]]
name = "heavy"
kind = "outliers"
threshold_ms = 500.0
[[criteria]]
stage = "moderate"
metric = "p95_ms"
op = "<"
value = "baseline * 1.10"
[[criteria]]
stage = "moderate"
metric = "throughput_rps"
op = ">="
value = "baseline*0.9"
[[criteria]]
stage = "moderate"
metric = "error_rate"
op = "<"
value = 0.01
[[criteria]]
stage = "heavy"
metric = "breach_event_count"
op = ">="
value = "baseline"
"""

# What a baseline's report.json holds per stage (`stages[].metrics`).
BASELINE_REPORT = {"stages": [
    {"name": "moderate", "ran": True, "metrics": {"p95_ms": 87.3, "throughput_rps": 400.0, "error_rate": 0.0}},
    {"name": "heavy", "ran": True, "metrics": {"breach_event_count": None}},
    {"name": "edge", "ran": False, "metrics": {}},
]}


def preset_file(tmp_path, text=PRESET):
    path = tmp_path / "relative.toml"
    path.write_text(text)
    return path


def test_a_preset_states_criteria_relative_to_a_baseline(tmp_path):
    criteria = load_preset(str(preset_file(tmp_path))).criteria
    assert [criterion.baseline_ratio for criterion in criteria] == [1.10, 0.9, None, 1.0]
    assert [criterion.relative for criterion in criteria] == [True, True, False, True]
    assert criteria[0].label == "p95_ms < baseline * 1.1"
    assert criteria[2].value == 0.01 and criteria[2].label == "error_rate < 0.01"
    with pytest.raises(ValueError, match="resolve it"):
        criteria[0].holds(50.0)


@pytest.mark.parametrize("value", ['"baseline * -1"', '"base * 2"', '"baseline + 5"', '"baseline * 0"', '"1.1"'])
def test_a_relative_value_that_does_not_read_is_one_line_naming_it(tmp_path, value):
    text = PRESET.replace('"baseline * 1.10"', value, 1)
    with pytest.raises(UsageError, match=r'criterion #1: value must be a number or "baseline \* F"'):
        load_preset(str(preset_file(tmp_path, text)))


def test_relative_criteria_become_thresholds_with_a_note_and_judge_like_any_other(tmp_path):
    criteria = load_preset(str(preset_file(tmp_path))).criteria
    resolved = resolve_criteria(criteria, baseline_metrics(BASELINE_REPORT))
    assert [r.criterion.value for r in resolved] == [pytest.approx(96.03), pytest.approx(360.0), 0.01, math.inf]
    assert resolved[0].note == "baseline 87.3 ms × 1.10 = 96.0 ms" and resolved[0].baseline == 87.3
    assert resolved[1].note == "baseline 400.0 req/s × 0.90 = 360.0 req/s"
    assert resolved[2].note == "" and resolved[2].criterion is criteria[2]
    # No user breached in the baseline (null): +infinity, as the acceptance criteria count it.
    assert resolved[3].baseline == math.inf
    assert all(not r.criterion.relative for r in resolved)
    results = evaluate([r.criterion for r in resolved],
                       {"moderate": {"p95_ms": 99.0, "throughput_rps": 380.0, "error_rate": 0.0},
                        "heavy": {"breach_event_count": None}})
    assert [result.passed for result in results] == [False, True, True, True]


def test_a_baseline_that_did_not_measure_it_is_an_error_naming_stage_and_metric():
    relative = Criterion("moderate", "p99_ms", "<", math.nan, baseline_ratio=1.2)
    with pytest.raises(BaselineError, match="stage 'moderate' measured no p99_ms"):
        resolve_criteria([relative], baseline_metrics(BASELINE_REPORT))
    with pytest.raises(BaselineError, match="no stage 'edge' that ran"):
        resolve_criteria([Criterion("edge", "error_rate", "<", math.nan, baseline_ratio=1.0)],
                         baseline_metrics(BASELINE_REPORT))
    with pytest.raises(BaselineError, match="no stages"):
        baseline_metrics({"schema": "mlstress.summary/1"})


def test_accept_refuses_relative_criteria_until_it_takes_a_baseline(tmp_path, capsys):
    code = main(["accept", "--target", "sleep:1ms", "--preset", str(preset_file(tmp_path)),
                 "--report-dir", str(tmp_path / "report")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "against a baseline: pass --baseline DIR" in err and "p95_ms < baseline * 1.1" in err
    assert not (tmp_path / "report").exists()
