"""One figure, one place: after scripted runs, every figure shown in two places agrees, to the printed precision.

The places: the dashboard's final state (driven by Pilot on a real engine), the
printed summary, summary.json, intervals.jsonl, ramp.json and report.md. Each
case is one of the disagreements seen before the run snapshot existed.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest

from mlstress_tui.cli import main
from mlstress_tui.load.engine import LoadEngine
from mlstress_tui.load.spec import LoadSpec
from mlstress_tui.load.targets import parse_target
from mlstress_tui.results.units import format_ms
from mlstress_tui.session import RunSession
from mlstress_tui.session.headless_printer import print_summary
from mlstress_tui.tui.app import DashboardApp
from mlstress_tui.tui.format import fmt_count, fmt_ms, fmt_rate

pytestmark = pytest.mark.slow


def files(run_dir: Path) -> tuple[dict, list[dict]]:
    summary = json.loads((run_dir / "summary.json").read_text())
    lines = [json.loads(line) for line in (run_dir / "intervals.jsonl").read_text().splitlines()]
    return summary, lines


def printed(session: RunSession) -> str:
    out = io.StringIO()
    assert session.final is not None
    print_summary(session.final, session.run_dir, out, session.write_errors)
    return out.getvalue()


def assert_agree(session: RunSession, screen: str | None = None) -> dict:
    """Every figure in two places agrees: files, printed summary, and (when given) the dashboard's final panel."""
    summary, lines = files(session.run_dir)
    text = printed(session)
    assert lines, "no interval written"
    # intervals.jsonl adds up to the summary: every request in one line, none twice.
    assert sum(line["requests"] for line in lines) == summary["requests"]
    assert sum(line["errors"] for line in lines) == summary["errors"]
    # Throughput is requests over load time, wherever it is shown.
    assert summary["throughput_rps"] == pytest.approx(summary["requests"] / summary["load_s"], rel=1e-3)
    assert f"requests {summary['requests']:,}" in text
    assert f"throughput {summary['throughput_rps']:,.1f} req/s" in text
    assert f"p95 {format_ms(summary['latency_ms']['p95'])}" in text
    # Each level: the printed table and summary.json from the same figures.
    if len(summary["levels"]) > 1:
        for level in summary["levels"]:
            assert f"{level['throughput_rps']:>10,.1f}" in text, level
            assert format_ms(level["latency_ms"]["p95"]) in text
    if summary.get("bottleneck"):
        assert summary["bottleneck"] in text
    if screen is not None:
        assert fmt_rate(summary["throughput_rps"]) in screen, screen
        assert fmt_count(summary["requests"]) in screen
        assert fmt_ms(summary["latency_ms"]["p95"]) in screen
    return summary


def engine_session(tmp_path: Path, target: str, **load: object) -> RunSession:
    engine = LoadEngine(parse_target(target), LoadSpec(workers=2, **load), run_dir=tmp_path)  # type: ignore[arg-type]
    return RunSession(engine, run_dir=tmp_path)


async def drive(session: RunSession, script: list[tuple[str, float]],
                pressed: list[tuple[float, float]] | None = None) -> str:
    """Start the session, run the dashboard on it, press each key and wait; q; the final stats panel's text.

    ``pressed`` collects the monotonic instants before and after each key press, so a
    test can hold the engine's clock to the test's own (a loaded machine stretches both
    the waits and the presses).
    """
    session.start()
    app = DashboardApp(session, refresh_hz=10)
    async with app.run_test(size=(120, 40)) as pilot:
        for key, wait in script:
            if key:
                before = time.monotonic()
                await pilot.press(key)
                if pressed is not None:
                    pressed.append((before, time.monotonic()))
            await pilot.pause(wait)
        await pilot.press("q")
        for _ in range(400):
            await pilot.pause(0.05)
            if app.summary is not None:
                break
        assert app.summary is not None
        await pilot.pause(0.2)
        screen = str(app.dashboard.stats.render()) + "\n" + str(app.dashboard.header.render())
    return screen


async def test_closed_loop_with_plus_and_double(tmp_path):
    session = engine_session(tmp_path, "sleep:2ms", concurrency=2)
    screen = await drive(session, [("", 1.2), ("+", 1.2), ("right_square_bracket", 1.2)])
    summary = assert_agree(session, screen)
    assert [level["level"] for level in summary["levels"]] == [2.0, 3.0, 6.0]
    assert "6 users" in screen and "pool 6" in screen  # the header's level and pool are the final ones


async def test_open_loop_with_pause_and_resume(tmp_path):
    session = engine_session(tmp_path, "sleep:2ms", mode="open", rate=300.0)
    pressed: list[tuple[float, float]] = []
    screen = await drive(session, [("", 1.0), ("p", 1.0), ("p", 1.5)], pressed)
    summary = assert_agree(session, screen)
    # The pause as the test held it: it began during the first press and ended during the second (a loaded box
    # stretches both beyond the 1.0 s asked).
    (pause_began, pause_pressed), (resume_began, resume_pressed) = pressed
    assert resume_began - pause_pressed - 0.1 <= summary["paused_s"] <= resume_pressed - pause_began + 0.1
    assert summary["load_s"] == pytest.approx(summary["duration_s"] - summary["paused_s"], abs=0.01)
    _, lines = files(tmp_path)
    assert all(line["concurrency"] is None for line in lines)  # an open-loop line carries no stale user count


async def test_m_switches_to_the_open_loop(tmp_path):
    session = engine_session(tmp_path, "sleep:2ms", concurrency=2)
    screen = await drive(session, [("", 1.5), ("m", 1.5)])
    summary = assert_agree(session, screen)
    modes = [level["mode"] for level in summary["levels"]]
    assert modes == ["closed", "open"]
    assert "open loop" in screen


def test_a_ramp_s_steps_are_its_levels(tmp_path, capsys):
    code = main(["ramp", "--headless", "--target", "sleep:5ms", "--pool-size", "4", "--max", "8",
                 "--step-duration", "1", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    summary, lines = files(tmp_path)
    ramp = json.loads((tmp_path / "ramp.json").read_text())
    steps = ramp["steps"]
    assert steps, "no ramp step"
    levels = {level["level"]: level for level in summary["levels"]}
    for step in steps:
        level = levels[step["level"]]
        # The same level's figures in ramp.json and summary.json: one computation, shown twice.
        assert step["throughput_rps"] == pytest.approx(level["throughput_rps"], abs=0.01)
        assert step["p95_ms"] == pytest.approx(level["latency_ms"]["p95"], abs=0.001)
        assert step["warmup_s"] == level["warmup_s"]
        assert f"{step['throughput_rps']:,.0f}" in out
    assert summary["ramp"]["knee_concurrency"] == ramp["knee_concurrency"]
    knee = ramp["knee_concurrency"]
    assert f"knee: {knee:g} users" in out
    assert sum(line["requests"] for line in lines) == summary["requests"]


def test_accept_s_report_shows_each_stage_s_own_figures(tmp_path, small_db, capsys):
    from test_accept_cli import suite

    reports = tmp_path / "reports"
    main(["accept", "--db", str(small_db), "--preset", str(suite(tmp_path, "1000")), "--report-dir", str(reports)])
    report = json.loads((reports / "report.json").read_text())
    markdown = (reports / "report.md").read_text()
    from mlstress_tui.stages import format_metric

    checked = 0
    for stage in report["stages"]:
        summary = json.loads((reports / stage["summary"]["run_dir"] / "summary.json").read_text())
        assert stage["metrics"]["requests"] == summary["requests"]
        assert stage["metrics"]["throughput_rps"] == pytest.approx(summary["throughput_rps"])
        assert format_metric("throughput_rps", summary["throughput_rps"]) in markdown
        assert format_metric("p95_ms", summary["latency_ms"]["p95"]) in markdown
        checked += 1
    assert checked == len(report["stages"]) == 4
