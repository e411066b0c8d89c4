"""`compare BASE NEW`: the noise rule on seeded per-second figures, run directories read back, the gate's exit codes,
and real runs of `sleep:2ms` against itself and against `sleep:2.6ms`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from mlstress_tui.analysis.compare import (MORE_ERRORS, NO_CHANGE, NOT_MEASURED, SLOWER, TOO_SHORT, Comparison,
                                           compare_levels, compare_sections, compare_singles, default_bounds,
                                           differences, judge, METRIC_BY_GATE_KEY, min_p_value, parse_bounds,
                                           span)
from mlstress_tui.report.run_dir import LevelRecord, read_run_dir
from pushgateway_fixtures import pushgateway, scrape  # noqa: F401 (a fixture)
from test_run_cli import assert_one_line_error, run_cli

# ---------------------------------------------------------------- seeded run directories


def level_line(t: float, *, mode="closed", concurrency=4, rate=None, p50=2.0, p95=2.3, p99=3.0, rps=1800.0,
               errors=0, pool=0.004, level_id=None, **extra) -> dict:
    line = {"t": t, "mode": mode, "concurrency": concurrency, "rate": rate, "requests": int(rps), "errors": errors,
            "throughput_rps": rps, "latency_ms": {"p50": p50, "p95": p95, "p99": p99},
            "pool_wait_ms": {"p95": pool}, **extra}
    if level_id is not None:
        line["level_id"] = level_id
    return line


def write_run(path: Path, *, seconds=10, scale=1.0, noise=0.02, seed=1, levels=((4, 0),), target_kind="sleep",
              label="sleep:2ms", database=None, mode="closed", errors_per_s=0, with_level_id=True,
              drop=None, extra_summary=None) -> Path:
    """A finished run: summary.json with one entry per level and intervals.jsonl, `seconds` lines a level."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True)
    lines, entries, t = [], [], 0.0
    for value, level_id in levels:
        rows = []
        for _ in range(seconds):
            t += 1.0
            wobble = 1 + rng.normal(0, noise)
            row = level_line(t, mode=mode, concurrency=value if mode == "closed" else None,
                             rate=value if mode == "open" else None, p50=2.0 * scale * wobble,
                             p95=2.3 * scale * wobble, p99=3.0 * scale * wobble, rps=1800.0 / (scale * wobble),
                             errors=errors_per_s, level_id=level_id if with_level_id else None)
            rows.append(row)
        lines += rows
        requests = sum(row["requests"] for row in rows)
        entries.append({"id": level_id, "mode": mode, "level": float(value), "seconds": float(seconds),
                        "requests": requests, "errors": errors_per_s * seconds,
                        "throughput_rps": requests / seconds,
                        "latency_ms": {key: float(np.median([row["latency_ms"][key] for row in rows]))
                                       for key in ("p50", "p95", "p99")}})
    first = levels[0][0]
    summary = {"schema": "mlstress.summary/1", "target": {"kind": target_kind, "label": label},
               "load": {"mode": mode, "concurrency": first if mode == "closed" else None,
                        "rate": first if mode == "open" else None, "pool_size": 4, "user_mix": "uniform"},
               "requests": sum(entry["requests"] for entry in entries), "pool_wait_ms": {"p95": 0.004},
               "levels": entries, "seed": 42, "database": database or {}, "harness": {"verdict": "ok"},
               **(extra_summary or {})}
    for key in drop or ():
        summary.pop(key, None)
    (path / "summary.json").write_text(json.dumps(summary))
    # The first line covers the start (a cold cache), the last the stop: compare leaves both out, so add them.
    lines.insert(0, level_line(0.5, mode=mode, concurrency=levels[0][0], p50=40.0, p95=90.0, p99=99.0, rps=10.0,
                               level_id=levels[0][1] if with_level_id else None))
    lines.append(level_line(t + 1.0, mode=mode, concurrency=levels[-1][0], rps=10.0))
    (path / "intervals.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def level(series: dict[str, list[float]], figures: dict[str, float | None] | None = None,
          key=("closed", 4.0)) -> LevelRecord:
    figures = figures if figures is not None else {name: float(np.median(values)) for name, values in series.items()}
    return LevelRecord(key=key, label="c=4", figures=figures, series=series)


# ---------------------------------------------------------------- the noise rule


def test_the_rank_test_says_when_runs_are_too_short_to_judge():
    assert min_p_value(3, 4) > 0.05  # no arrangement of 3 against 4 seconds reaches p < 0.05
    assert min_p_value(4, 4) < 0.05
    p95 = METRIC_BY_GATE_KEY["p95"]
    short = judge(p95, level({"p95_ms": [2.0, 2.0, 2.0]}), level({"p95_ms": [9.0, 9.0, 9.0, 9.0]}), 0.1)
    assert short.verdict == TOO_SHORT and not short.regressed
    assert "3 and 4 clean seconds" in short.note


def test_a_shift_outside_both_spans_is_slower_with_its_size_and_regresses_past_the_bound():
    rng = np.random.default_rng(5)
    base = list(2.0 * (1 + rng.normal(0, 0.01, 10)))
    new = list(2.6 * (1 + rng.normal(0, 0.01, 10)))
    change = judge(METRIC_BY_GATE_KEY["p50"], level({"p50_ms": base}), level({"p50_ms": new}), 0.10)
    assert change.verdict == SLOWER and change.regressed
    assert change.change == pytest.approx(0.30, abs=0.03)
    assert change.p_value < 0.001 and change.noise < 0.1
    within = judge(METRIC_BY_GATE_KEY["p50"], level({"p50_ms": base}), level({"p50_ms": new}), 0.50)
    assert within.verdict == SLOWER and not within.regressed


def test_a_significant_shift_inside_a_runs_own_span_is_no_change():
    # Every new second is slower (p tiny) but base's own seconds range over 40%: the runs' spread explains it.
    base = [2.0, 2.8, 2.1, 2.2, 2.05, 2.15, 2.1, 2.12]
    new = [value * 1.2 + 0.3 for value in [2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]]
    change = judge(METRIC_BY_GATE_KEY["p99"], level({"p99_ms": base}), level({"p99_ms": new}), 0.10)
    assert change.p_value < 0.05
    assert change.noise == pytest.approx(span(base) / np.median(base), rel=0.2)
    assert change.verdict == NO_CHANGE and not change.regressed


def test_one_histogram_bucket_is_within_the_resolution():
    base, new = [2.106369] * 8, [2.127433] * 8  # neighbouring buckets, as quantized percentiles come out
    change = judge(METRIC_BY_GATE_KEY["p50"], level({"p50_ms": base}), level({"p50_ms": new}), 0.0)
    assert change.p_value < 0.05 and change.change == pytest.approx(0.01, abs=1e-3)
    assert change.verdict == NO_CHANGE


def test_error_rate_is_judged_in_points_and_any_rise_outside_the_noise_fails_by_default():
    base = level({"error_rate": [0.0] * 8}, {"error_rate": 0.0})
    new = level({"error_rate": [0.05, 0.051, 0.049, 0.05, 0.052, 0.05, 0.048, 0.05]}, {"error_rate": 0.05})
    change = judge(METRIC_BY_GATE_KEY["error_rate"], base, new, default_bounds()["error_rate"])
    assert change.verdict == MORE_ERRORS and change.regressed and change.change == pytest.approx(0.05)
    # One failed request in one second is inside the noise.
    once = level({"error_rate": [0.0] * 7 + [0.001]}, {"error_rate": 0.0001})
    assert judge(METRIC_BY_GATE_KEY["error_rate"], base, once, 0.0).verdict == NO_CHANGE


def test_pool_wait_is_judged_as_a_share_of_the_base_latency():
    series = {"p95_ms": [2.3] * 8, "pool_wait_p95_ms": [0.004] * 8}
    doubled = {"p95_ms": [2.3] * 8, "pool_wait_p95_ms": [0.008] * 8}
    change = judge(METRIC_BY_GATE_KEY["pool_wait"], level(series), level(doubled), 0.10)
    # +100% of a 4 µs wait is +0.2% of the 2.3 ms request: below one bucket of the latency.
    assert change.change == pytest.approx(0.004 / 2.3) and change.verdict == NO_CHANGE
    saturated = {"p95_ms": [2.3] * 8, "pool_wait_p95_ms": [1.5] * 8}
    grown = judge(METRIC_BY_GATE_KEY["pool_wait"], level(series), level(saturated), 0.10)
    assert grown.verdict == SLOWER and grown.regressed


def test_a_metric_one_side_did_not_measure_is_said_and_never_regresses():
    change = judge(METRIC_BY_GATE_KEY["p95"], level({"p95_ms": [2.0] * 8}, {"p95_ms": None}),
                   level({"p95_ms": [5.0] * 8}), 0.0)
    assert change.verdict == NOT_MEASURED and not change.regressed and "base" in change.note


def test_levels_are_matched_by_what_was_commanded_and_the_rest_listed():
    a = level({"p50_ms": [2.0] * 8}, key=("closed", 4.0))
    b = level({"p50_ms": [2.0] * 8}, key=("closed", 8.0))
    c = level({"p50_ms": [2.0] * 8}, key=("open", 4.0))
    rows = compare_levels([a, b], [c, a], default_bounds())
    assert [(row.key, row.only_in) for row in rows] == [(("closed", 4.0), None), (("closed", 8.0), "base"),
                                                        (("open", 4.0), "new")]
    assert [m.label for m in rows[0].metrics] == ["p50", "p95", "p99", "throughput", "error rate", "pool wait p95",
                                                  "harness lag p99"]
    assert rows[1].metrics == ()


def test_single_figures_are_same_better_or_worse_and_a_breach_nobody_reaches_is_infinite():
    rows = {row.name: row for row in compare_singles(
        {"knee_concurrency": 16.0, "safe_concurrency": 8.0, "breach_event_count": float("inf"),
         "stratum_p95_ms:top 1%": 100.0, "usl_peak_concurrency": None},
        {"knee_concurrency": 8.0, "safe_concurrency": 8.0, "breach_event_count": 2000.0,
         "stratum_p95_ms:top 1%": 80.0, "usl_peak_concurrency": None})}
    assert rows["knee_concurrency"].verdict == "worse" and rows["knee_concurrency"].change == pytest.approx(-0.5)
    assert rows["safe_concurrency"].verdict == "same"
    assert rows["breach_event_count"].verdict == "worse" and rows["breach_event_count"].change is None
    assert rows["stratum_p95_ms:top 1%"].verdict == "better" and rows["stratum_p95_ms:top 1%"].label == "p95 top 1%"
    assert rows["usl_peak_concurrency"].verdict == "same"


def test_differences_refuse_on_what_makes_runs_comparable_and_note_the_rest():
    base = {"target kind": "sleep", "load mode": "closed", "levels": ("c=4",), "target": "sleep:2ms",
            "pool size": 4, "tool version": None}
    new = {"target kind": "sqlite", "load mode": "closed", "levels": ("c=8",), "target": "sleep:2.6ms",
           "pool size": 8, "tool version": "0.2.0"}
    found = {d.field: d.refuses for d in differences(base, new)}
    assert found == {"target kind": True, "levels": True, "target": False, "pool size": False}
    # A ramp that stopped at its cliff sooner runs the same steps as far as it went.
    assert not differences({"levels": ("c=1", "c=2", "c=4")}, {"levels": ("c=1", "c=2")}, ramps=True)
    assert differences({"levels": ("c=1", "c=2", "c=4")}, {"levels": ("c=2", "c=4")}, ramps=True)


def test_bounds_parse_as_percent_overall_and_per_metric():
    bounds = parse_bounds("10%")
    assert bounds["p95"] == pytest.approx(0.10) and bounds["error_rate"] == 0.0
    bounds = parse_bounds("p95=5%,throughput=3%", bounds)
    assert bounds["p95"] == pytest.approx(0.05) and bounds["throughput"] == pytest.approx(0.03)
    assert bounds["p50"] == pytest.approx(0.10)
    assert parse_bounds("error_rate=0.5%,p95_ms=2")["error_rate"] == pytest.approx(0.005)
    for bad in ("p42=5%", "ten%", "-3%"):
        with pytest.raises(ValueError):
            parse_bounds(bad)


def test_a_comparison_that_judged_nothing_is_unjudged_not_a_pass():
    short = level({"p50_ms": [2.0, 2.0]})
    comparison = Comparison(compare_sections({"": _section([short])}, {"": _section([short])}, default_bounds()))
    assert comparison.verdict == "UNJUDGED" and not comparison.judged


class _section:
    def __init__(self, levels, extras=None, kind="sleep"):
        self.levels, self.extras, self.identity = levels, extras or {}, {"target kind": kind}


def test_a_latency_rise_the_harness_lag_matches_is_the_machines_outside_the_workers_only():
    # The machine got busier: the workers' own timer woke 1.6 ms later at p99, and p99 rose 1.5 ms with it.
    base = level({"p99_ms": [3.0, 3.02, 2.98, 3.01, 3.0, 2.99], "harness_lag_p99_ms": [1.0] * 6})
    new = level({"p99_ms": [4.5, 4.52, 4.48, 4.51, 4.5, 4.49], "harness_lag_p99_ms": [2.6] * 6})
    bounds = default_bounds()
    [outside] = compare_sections({"": _section([base])}, {"": _section([new])}, bounds)
    p99 = outside.levels[0].metrics[2]
    assert p99.label == "p99" and p99.verdict == NO_CHANGE and p99.machine == pytest.approx(1.6 / 3.0, rel=0.01)
    assert "harness's own lag p99 rose 1.60 ms" in p99.note
    lag = outside.levels[0].metrics[-1]
    assert lag.label == "harness lag p99" and lag.verdict == SLOWER and not lag.regressed and not lag.gated
    # SQLite runs in the workers: its own CPU makes lag, so the same seconds are a regression there.
    [inside] = compare_sections({"": _section([base], kind="sqlite")}, {"": _section([new], kind="sqlite")}, bounds)
    assert inside.levels[0].metrics[2].verdict == SLOWER and inside.levels[0].metrics[2].regressed


# ---------------------------------------------------------------- run directories read back


def test_a_run_directory_reads_levels_by_level_id_and_leaves_out_stalls_pauses_and_the_stop(tmp_path):
    path = write_run(tmp_path / "run", seconds=6, levels=((4, 0), (8, 1)))
    lines = [json.loads(line) for line in (path / "intervals.jsonl").read_text().splitlines()]
    lines[2]["harness_stall_ms"] = 120.0
    lines[3]["paused"] = True
    lines[7]["level_id"] = None  # a second that mixed two levels
    (path / "intervals.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    record = read_run_dir(path)
    assert record.kind == "run" and [level.label for level in record.levels] == ["c=4", "c=8"]
    first, second = record.levels
    assert len(first.series["p50_ms"]) == 4  # 6 seconds less a stall and a pause
    assert len(second.series["p50_ms"]) == 5  # 6 less the mixed second; the stop line is not one of them
    assert max(first.series["p50_ms"]) < 5  # nor the start's cold second
    assert first.figures["p95_ms"] == pytest.approx(2.3, rel=0.05)
    assert first.figures["error_rate"] == 0.0
    assert record.identity["levels"] == ("c=4", "c=8") and record.identity["target kind"] == "sleep"


def test_without_level_id_seconds_are_matched_by_mode_and_level(tmp_path):
    record = read_run_dir(write_run(tmp_path / "run", seconds=6, levels=((4, 0), (8, 1)), with_level_id=False))
    assert [len(level.series["p95_ms"]) for level in record.levels] == [6, 6]
    assert any("no level_id" in note for note in record.notes)


def test_a_cut_last_line_is_dropped_and_a_bad_line_elsewhere_is_one_line(tmp_path, capsys):
    path = write_run(tmp_path / "run", seconds=6)
    with (path / "intervals.jsonl").open("a") as handle:
        handle.write('{"t": 8.0, "mode": "clo')
    assert len(read_run_dir(path).levels[0].series["p50_ms"]) == 6
    text = (path / "intervals.jsonl").read_text().splitlines()
    (path / "intervals.jsonl").write_text("\n".join(["not json", *text]) + "\n")
    code, _, err = run_cli(capsys, "compare", str(path), str(path), "--out", str(tmp_path / "out"))
    assert_one_line_error(code, err, "line 1 is not JSON")


# ---------------------------------------------------------------- the command and its exit codes


def test_the_same_run_against_itself_is_no_change_exit_0_with_every_file(tmp_path, capsys):
    base = write_run(tmp_path / "base", seed=1)
    new = write_run(tmp_path / "new", seed=2)
    code, out, err = run_cli(capsys, "compare", str(base), str(new), "--out", str(tmp_path / "out"))
    assert code == 0, err
    document = json.loads((tmp_path / "out" / "compare.json").read_text())
    assert document["schema"] == "mlstress.compare/1" and document["verdict"] == "PASS"
    verdicts = [m["verdict"] for m in document["sections"][0]["levels"][0]["metrics"] if m["gated"]]
    assert verdicts == [NO_CHANGE] * 6
    assert "compare PASS" in out and "c=4" in out
    assert "4.0 µs" in out  # a pool wait of microseconds reads as microseconds, not "0.00 ms"
    suite = ET.parse(tmp_path / "out" / "junit.xml").getroot().find("testsuite")
    assert suite.get("tests") == "6" and suite.get("failures") == "0"
    assert "# Compare PASS" in (tmp_path / "out" / "compare.md").read_text()


def test_a_slower_run_is_a_regression_named_by_metric_exit_1(tmp_path, capsys):
    base = write_run(tmp_path / "base", seed=1)
    new = write_run(tmp_path / "new", seed=2, scale=1.3, label="sleep:2.6ms")
    code, out, err = run_cli(capsys, "compare", str(base), str(new), "--out", str(tmp_path / "out"))
    assert code == 1, err
    regressed = {r["metric"] for r in json.loads((tmp_path / "out" / "compare.json").read_text())["regressions"]}
    assert {"p50_ms", "p95_ms", "p99_ms", "throughput_rps"} <= regressed
    verdict_line = out.strip().splitlines()[-2]
    assert verdict_line.startswith("compare REGRESSION:") and "p95 +" in verdict_line and "at c=4" in verdict_line
    failures = ET.parse(tmp_path / "out" / "junit.xml").getroot().find("testsuite").findall("testcase/failure")
    assert len(failures) == len(regressed)
    # A bound above the change lets it through, though the verdict still says slower.
    code, out, _ = run_cli(capsys, "compare", str(base), str(new), "--max-regression", "40%",
                           "--out", str(tmp_path / "out2"))
    assert code == 0 and "slower" in out and "within 40%" in out


@pytest.mark.slow
def test_compare_pushes_its_verdict_and_each_gated_change_to_a_real_pushgateway(pushgateway, tmp_path, capsys):
    from prometheus_client.parser import text_string_to_metric_families

    base = write_run(tmp_path / "base", seed=1, extra_summary={"label": "build 6"})
    new = write_run(tmp_path / "new", seed=2, scale=1.3, label="sleep:2.6ms", extra_summary={"label": "build 7"})
    code, out, err = run_cli(capsys, "compare", str(base), str(new), "--out", str(tmp_path / "out"),
                             "--pushgateway", pushgateway)
    assert code == 1, err
    assert f"pushed to the Pushgateway at {pushgateway} (job mlstress_compare)" in out
    series: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(scrape(f"{pushgateway}/metrics")):
        for sample in family.samples:
            if sample.name.startswith("mlstress_gate") and sample.labels.get("job") == "mlstress_compare":
                assert (sample.labels["label"], sample.labels["target"]) == ("build 7", "sleep")
                key = tuple(sample.labels.get(name, "") for name in ("stage", "metric", "verdict"))
                series.setdefault(sample.name, {})[key] = sample.value
    assert series["mlstress_gate_verdict"] == {("", "", "REGRESSION"): 1.0, ("", "", "PASS"): 0.0,
                                               ("", "", "UNJUDGED"): 0.0}
    assert series["mlstress_gate_passed"] == {("", "", ""): 0.0}
    document = json.loads((tmp_path / "out" / "compare.json").read_text())
    p95 = next(metric for metric in document["sections"][0]["levels"][0]["metrics"] if metric["metric"] == "p95_ms")
    assert series["mlstress_gate_criterion_measured"][("c=4", "p95_ms", "")] == pytest.approx(p95["change"])
    assert series["mlstress_gate_criterion_threshold"][("c=4", "p95_ms", "")] == pytest.approx(0.10)
    assert series["mlstress_gate_criterion_passed"][("c=4", "p95_ms", "")] == 0.0


def test_compare_with_a_pushgateway_where_nothing_answers_is_one_line_before_it_compares(tmp_path, capsys):
    from http_fixtures import free_port

    base = write_run(tmp_path / "base", seed=1)
    code, _, err = run_cli(capsys, "compare", str(base), str(base), "--out", str(tmp_path / "out"),
                           "--pushgateway", f"http://ci:s3cret@127.0.0.1:{free_port()}")
    assert_one_line_error(code, err, "nothing answers at --pushgateway http://127.0.0.1:")
    assert "s3cret" not in err and not (tmp_path / "out").exists()


def test_a_directory_with_no_run_is_exit_2_in_one_line(tmp_path, capsys):
    base = write_run(tmp_path / "base")
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(capsys, "compare", str(base), str(tmp_path / "empty"))
    assert_one_line_error(code, err, "holds no run")
    code, _, err = run_cli(capsys, "compare", str(tmp_path / "nowhere"), str(base))
    assert_one_line_error(code, err, "is not a directory")
    (tmp_path / "killed").mkdir()
    (tmp_path / "killed" / "intervals.jsonl").write_text("{}\n")
    code, _, err = run_cli(capsys, "compare", str(base), str(tmp_path / "killed"))
    assert_one_line_error(code, err, "no finished run")


def test_runs_of_different_targets_or_load_shapes_are_refused_in_one_line_unless_forced(tmp_path, capsys):
    base = write_run(tmp_path / "base", database={"users": 100000, "events": 4500000, "seed": 42})
    other = write_run(tmp_path / "other", target_kind="sqlite", levels=((8, 0),),
                      database={"users": 2000, "events": 40000, "seed": 7})
    code, out, err = run_cli(capsys, "compare", str(base), str(other), "--out", str(tmp_path / "out"))
    assert_one_line_error(code, err, "not comparable", "different targets", "target kind sleep vs sqlite",
                          "different load shapes", "--force")
    assert "database users" in out and "refuses" in out  # the differences, one table
    assert not (tmp_path / "out").exists()
    code, out, err = run_cli(capsys, "compare", str(base), str(other), "--force", "--out", str(tmp_path / "out"))
    assert code == 2 and "compared anyway" in err  # forced, but the two share no level to judge
    assert "only in base" in out and "only in new" in out
    document = json.loads((tmp_path / "out" / "compare.json").read_text())
    assert document["forced"] is True and document["verdict"] == "UNJUDGED"


def test_a_tool_version_or_preset_that_differs_refuses(tmp_path, capsys):
    base = write_run(tmp_path / "base", extra_summary={"tool": {"version": "0.1.0"}, "preset": "smoke"})
    new = write_run(tmp_path / "new", extra_summary={"tool": {"version": "0.2.0"}, "preset": "smoke"})
    code, _, err = run_cli(capsys, "compare", str(base), str(new))
    assert_one_line_error(code, err, "different tool versions (tool version 0.1.0 vs 0.2.0)")


@pytest.mark.slow
def test_a_summary_from_before_levels_is_one_level_from_its_totals(tmp_path, capsys):
    base = write_run(tmp_path / "base", drop=("levels",),
                     extra_summary={"latency_ms": {"p50": 2.0, "p95": 2.3, "p99": 3.0}, "throughput_rps": 1800.0,
                                    "errors": 0, "duration_s": 10.0})
    record = read_run_dir(base)
    assert [level.label for level in record.levels] == ["c=4"]
    assert record.levels[0].figures["p95_ms"] == 2.3 and len(record.levels[0].series["p95_ms"]) == 10
    broken = write_run(tmp_path / "broken", extra_summary={"levels": "many"})
    code, _, err = run_cli(capsys, "compare", str(base), str(broken))
    assert_one_line_error(code, err, "levels is not a list")


def test_bad_max_regression_is_one_line(tmp_path, capsys):
    base = write_run(tmp_path / "base")
    code, _, err = run_cli(capsys, "compare", str(base), str(base), "--max-regression", "p42=5%")
    assert_one_line_error(code, err, "--max-regression", "unknown metric 'p42'")


def test_accept_reports_compare_stage_by_stage_with_ramp_and_heavy_user_figures(tmp_path, capsys):
    def report(root: Path, seed: int, knee: float, breach: float | None) -> Path:
        root.mkdir()
        write_run(root / "steady", seed=seed)
        write_run(root / "cliff", seed=seed, levels=((1, 0), (2, 1), (4, 2)))
        (root / "cliff" / "ramp.json").write_text(json.dumps(
            {"schema": "mlstress.ramp/1", "mode": "closed", "knee_concurrency": knee, "safe_concurrency": knee,
             "usl": {"peak_concurrency": 6.5}, "steps": []}))
        write_run(root / "heavy", seed=seed, levels=((1, 0),))
        (root / "heavy" / "outliers.json").write_text(json.dumps(
            {"schema": "mlstress.outliers/1", "judged": True, "breach_event_count": breach,
             "strata": [{"name": "1-10", "p95_ms": 1.0}, {"name": "top 1%", "p95_ms": 40.0}]}))
        stages = [{"name": name, "kind": kind, "ran": True, "metrics": {}, "summary": {"run_dir": name}}
                  for name, kind in (("steady", "load"), ("cliff", "ramp"), ("heavy", "outliers"))]
        stages.append({"name": "edge", "kind": "edge", "ran": False, "metrics": {}, "summary": None})
        (root / "report.json").write_text(json.dumps(
            {"schema": "mlstress.report/1", "verdict": "PASS", "preset": "fast", "stages": stages,
             "target": {"kind": "sleep", "label": "sleep:2ms"}, "database": {}, "seed": 42}))
        return root

    base = report(tmp_path / "base", 1, 4.0, None)
    new = report(tmp_path / "new", 2, 2.0, 3000.0)
    code, out, err = run_cli(capsys, "compare", str(base), str(new), "--out", str(tmp_path / "out"))
    assert code == 0, err
    document = json.loads((tmp_path / "out" / "compare.json").read_text())
    sections = {section["name"]: section for section in document["sections"]}
    assert list(sections) == ["steady", "cliff", "heavy", "edge"]
    assert [level["level"] for level in sections["cliff"]["levels"]] == ["c=1", "c=2", "c=4"]
    singles = {single["name"]: single for single in sections["cliff"]["singles"]}
    assert singles["knee_concurrency"]["verdict"] == "worse" and singles["usl_peak_concurrency"]["verdict"] == "same"
    heavy = {single["name"]: single for single in sections["heavy"]["singles"]}
    assert heavy["breach_event_count"]["base"] == "inf" and heavy["breach_event_count"]["verdict"] == "worse"
    assert "stratum_p95_ms:top 1%" in heavy and "stratum_p95_ms:1-10" not in heavy
    assert sections["edge"]["note"] == "did not run in base"
    assert "stage cliff" in out and "knee" in out and "not gated" in out
    code, _, err = run_cli(capsys, "compare", str(base), str(base / "steady"))
    assert_one_line_error(code, err, "accept report", "a run with a run")


# ---------------------------------------------------------------- real runs


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory) -> dict[str, Path]:
    """`sleep:2ms` twice and `sleep:2.6ms` once, 10 s each at 4 users, run side by side (they share the machine's mood)."""
    root = tmp_path_factory.mktemp("compare-runs")
    env = {**os.environ, "MLSTRESS_CACHE_DIR": str(root / "cache")}
    runs = {"base": "sleep:2ms", "same": "sleep:2ms", "slower": "sleep:2.6ms"}
    processes = [subprocess.Popen([sys.executable, "-m", "mlstress_tui", "run", "--headless", "--target", target,
                                   "--concurrency", "4", "--duration", "10", "--out", str(root / name)],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for name, target in runs.items()]
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err.decode()
    return {name: root / name for name in runs}


@pytest.mark.slow
def test_real_runs_the_same_run_twice_is_no_change_and_30_percent_slower_is_a_regression(real_runs, tmp_path, capsys):
    code, out, err = run_cli(capsys, "compare", str(real_runs["base"]), str(real_runs["same"]),
                             "--out", str(tmp_path / "same"))
    assert code == 0, out + err
    [section] = json.loads((tmp_path / "same" / "compare.json").read_text())["sections"]
    [level] = section["levels"]
    assert level["level"] == "c=4"
    assert [m["verdict"] for m in level["metrics"] if m["gated"]] == [NO_CHANGE] * 6, out

    code, out, err = run_cli(capsys, "compare", str(real_runs["base"]), str(real_runs["slower"]),
                             "--out", str(tmp_path / "slower"))
    assert code == 1, out + err
    document = json.loads((tmp_path / "slower" / "compare.json").read_text())
    regressed = {r["metric"] for r in document["regressions"]}
    assert "p50_ms" in regressed, out  # the median moves 2.1 -> 2.7 ms, far outside its 1% noise
    assert "compare REGRESSION: p50 +" in out
    assert "target" in out and "sleep:2.6ms" in out  # the target label differs: noted, not refused
