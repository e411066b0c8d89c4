"""A run drawn beside its baseline: the baseline read without UI, `show NEW --baseline BASE`, the dashboard's
--baseline, and the acceptance panel's before and after."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tui_fakes
from mlstress_tui.cli import main
from mlstress_tui.errors import UsageError
from mlstress_tui.report.acceptance_report import baseline_figures, report_markdown
from mlstress_tui.report.run_curve import read_run_curve
from mlstress_tui.report.summary import HISTOGRAM_FILE
from tui_fakes import FakeEngine, fake_session, finished_run_dir

def plain(markup: object) -> str:
    from textual.content import Content

    return Content.from_markup(str(markup)).plain


@pytest.fixture
def base_and_new(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.chdir(tmp_path)  # relative directories: what the view prints does not vary
    return finished_run_dir(Path("runs/base")), finished_run_dir(Path("runs/new"), service_ms=2.6, seed=8)


# -- reading a baseline, without UI -------------------------------------------------------------------------------

def test_a_baseline_is_read_as_the_run_wrote_it(base_and_new):
    base_dir, _ = base_and_new
    summary = json.loads((base_dir / "summary.json").read_text())
    curve = read_run_curve(base_dir)
    assert [point.level for point in curve.points] == [4, 8, 16, 32]
    # The level's own figures, as summary.json holds them: not recomputed from its seconds.
    assert [point.p95_ms for point in curve.points] == [level["latency_ms"]["p95"] for level in summary["levels"]]
    assert [point.throughput_rps for point in curve.points] == [level["throughput_rps"] for level in summary["levels"]]
    assert curve.curve("open") == ()
    # The histogram the run kept gives back the run's own percentiles.
    assert curve.histogram is not None
    assert curve.histogram.count == summary["requests"]
    assert curve.histogram.summary_ms() == summary["latency_ms"]


def test_a_run_from_before_the_histogram_file_has_its_curve_and_says_why_no_histogram(base_and_new):
    base_dir, _ = base_and_new
    (base_dir / HISTOGRAM_FILE).unlink()
    curve = read_run_curve(base_dir)
    assert curve.histogram is None and "no latency_histogram.json" in curve.histogram_note
    assert len(curve.points) == 4


def test_no_run_there_is_one_line(tmp_path):
    with pytest.raises(UsageError, match="holds no run"):
        read_run_curve(tmp_path)
    with pytest.raises(UsageError, match="is not a directory"):
        read_run_curve(tmp_path / "missing")


def test_before_and_after_of_a_criterion_come_from_one_place():
    criterion = {"stage": "peak", "metric": "p95_ms", "op": "<", "threshold": 110.0, "measured": 90.0,
                 "baseline": 100.0, "passed": True, "note": "", "stated": "p95_ms < baseline * 1.1"}
    assert baseline_figures(criterion) == ("100.0 ms", "90.0 ms", "-10.0%")
    assert baseline_figures({**criterion, "baseline": None})[2] == "n/a"
    report = {"verdict": "PASS", "preset": "p", "passed": 1, "criteria": [criterion], "stages": [],
              "started_at": "2026-03-01T12:00:00", "duration_s": 1.0, "seed": 42, "database": {},
              "knee_concurrency": None, "safe_concurrency": None, "breach_event_count": None,
              "baseline": {"dir": "base", "label": "v1"}}
    assert "| 100.0 ms | 90.0 ms | -10.0% |" in report_markdown(report)


# -- show NEW --baseline BASE ---------------------------------------------------------------------------------------

def test_show_against_a_baseline_prints_the_table_without_a_terminal(base_and_new, capsys):
    base_dir, new_dir = base_and_new
    assert main(["show", str(new_dir), "--baseline", str(base_dir)]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.strip().startswith("c=")]
    assert [row[0] for row in rows] == ["c=4", "c=4", "c=8", "c=8", "c=16", "c=16", "c=32", "c=32"]
    p95_at_4 = rows[0]
    assert p95_at_4[1] == "p95" and p95_at_4[-1] == "slower"  # a target 30% slower, judged outside the noise


@pytest.mark.slow
def test_show_against_no_run_or_another_load_shape_is_one_line_exit_2(base_and_new, tmp_path, capsys):
    base_dir, new_dir = base_and_new
    assert main(["show", str(new_dir), "--baseline", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a directory" in err[0]
    other = finished_run_dir(Path("runs/other"), target={**tui_fakes.SQLITE_TARGET, "kind": "postgres"})
    assert main(["show", str(new_dir), "--baseline", str(other)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not comparable: different targets (target kind postgres vs sqlite)" in err[0]
    assert main(["show", str(new_dir), "--baseline", str(other), "--force"]) == 0


def test_show_baseline_view_draws_both_runs(base_and_new):
    from mlstress_tui.commands.show import against_baseline
    from mlstress_tui.tui.baseline_view import BaselineApp
    from mlstress_tui.tui.widgets.latency_histogram_chart import LatencyHistogramChart
    from mlstress_tui.tui.widgets.level_latency_chart import LevelLatencyChart

    base_dir, new_dir = base_and_new
    base, new, document = against_baseline(new_dir, base_dir, force=False)

    async def drive() -> None:
        app = BaselineApp(base, new, document)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            await pilot.pause()
            chart = app.query_one(LevelLatencyChart)
            assert "◇base ●new" in plain(chart.border_subtitle)
            assert "◇base n=" in plain(app.query_one(LatencyHistogramChart).border_subtitle)
            table = str(app.query_one("#baseline-table").render())
            assert "c=32" in table and "slower" in table

    import asyncio

    asyncio.run(drive())


@pytest.mark.slow
def test_a_headless_run_works_as_baseline(tmp_path, capsys):
    base = tmp_path / "base"
    assert main(["run", "--headless", "--target", "sleep:2ms", "--concurrency", "4", "--duration", "4",
                 "--out", str(base)]) == 0
    capsys.readouterr()
    curve = read_run_curve(base)
    assert [(point.mode, point.level) for point in curve.points] == [("closed", 4.0)]
    assert curve.histogram is not None and curve.points[0].p95_ms is not None
    assert main(["show", str(base), "--baseline", str(base)]) == 0
    assert "c=4" in capsys.readouterr().out


# -- the dashboard's --baseline -------------------------------------------------------------------------------------

@pytest.mark.slow
def test_the_dashboard_draws_the_baseline_curve_on_the_level_charts(base_and_new, tmp_path):
    from mlstress_tui.tui.app import DashboardApp
    from mlstress_tui.tui.widgets.level_throughput_chart import LevelThroughputChart

    base_dir, _ = base_and_new
    base = read_run_curve(base_dir)
    engine = FakeEngine(tmp_path / "live", script=[(4, 8), (8, 8)], concurrency=8, live=True)
    session = fake_session(engine)

    async def drive() -> None:
        app = DashboardApp(session, baseline=base)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            app._draw_charts(force=True)
            await pilot.pause()
            for chart in (app.query_one("#level-latency"), app.query_one(LevelThroughputChart)):
                assert "◇base ●live" in plain(chart.border_subtitle)
            # The base curve is the base run's four levels, whatever this run has visited so far.
            signature = app.query_one(LevelThroughputChart)._signature
            assert tuple(level for level, _ in signature[0][-1]) == (4, 8, 16, 32)
            await pilot.press("q")
            await app.workers.wait_for_complete()

    import asyncio

    asyncio.run(drive())


def test_the_dashboard_refuses_a_baseline_of_another_target(base_and_new, tmp_path):
    from mlstress_tui.commands.run import check_baseline

    base = read_run_curve(base_and_new[0])
    engine = FakeEngine(tmp_path / "live", script=[(4, 8)], target_info={**tui_fakes.SQLITE_TARGET, "kind": "http"})
    session = fake_session(engine)
    with pytest.raises(UsageError, match=r"not comparable: different targets \(target kind sqlite vs http\)"):
        check_baseline(base, session)
    check_baseline(read_run_curve(base_and_new[1]), fake_session(FakeEngine(tmp_path / "ok", script=[(4, 8)])))
