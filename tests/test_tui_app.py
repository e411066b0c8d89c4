"""Pilot tests of the dashboard against the deterministic fake engine: keys reach the engine."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlstress_tui.tui import app as app_module
from mlstress_tui.tui.app import DashboardApp
from textual.widgets._footer import FooterKey

from mlstress_tui.tui.keys import DASHBOARD_KEYS
from mlstress_tui.tui.screens.help_screen import HelpScreen
from mlstress_tui.tui.themes import load_themes
from mlstress_tui.tui.widgets.final_banner import FinalBanner
from tui_fakes import HISTORY, FakeEngine, fake_session, until

pytestmark = pytest.mark.slow  # Pilot drives the whole app: a second or more each

SIZE = (120, 40)


@pytest.fixture
def engine(tmp_path: Path) -> FakeEngine:
    return FakeEngine(tmp_path / "run", script=HISTORY, concurrency=16)


def load_calls(engine: FakeEngine) -> list[tuple[str, object]]:
    return [call for call in engine.calls if call[0] not in ("start", "finish")]


async def press_applied(pilot, *keys: str) -> None:
    """Press each key and wait until the dashboard has sent it to the engine (level keys are coalesced per clock tick)."""
    for key in keys:
        await pilot.press(key)
        for _ in range(100):
            if not pilot.app.controls_pending:
                break
            await pilot.pause(0.02)


async def test_plus_adds_one_user(engine: FakeEngine) -> None:
    app = DashboardApp(fake_session(engine))
    async with app.run_test(size=SIZE) as pilot:
        await press_applied(pilot, "+", "+")
    assert load_calls(engine) == [("set_concurrency", 17), ("set_concurrency", 18)]
    assert engine.concurrency == 18


async def test_a_burst_of_level_keys_is_one_change_a_clock_tick(engine: FakeEngine) -> None:
    app = DashboardApp(fake_session(engine))
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(200):  # as a terminal delivers a held key: back to back, no frame between
            app.action_more()
        while app.controls_pending:
            await pilot.pause(0.02)
    # The first press at once, the other 199 as one change: the screen never stalls on them.
    assert load_calls(engine) == [("set_concurrency", 17), ("set_concurrency", 216)]


async def test_minus_and_brackets_change_concurrency(engine: FakeEngine) -> None:
    app = DashboardApp(fake_session(engine))
    async with app.run_test(size=SIZE) as pilot:
        await press_applied(pilot, "]")
        assert engine.concurrency == 32
        await press_applied(pilot, "-")
        assert engine.concurrency == 31
        await press_applied(pilot, "[")
    assert load_calls(engine) == [("set_concurrency", 32), ("set_concurrency", 31), ("set_concurrency", 16)]


async def test_minus_is_dimmed_at_one_user(tmp_path: Path) -> None:
    engine = FakeEngine(tmp_path / "run", script=HISTORY, concurrency=1)
    app = DashboardApp(fake_session(engine))
    async with app.run_test(size=SIZE) as pilot:
        assert app.check_action("fewer", ()) is None
        assert app.check_action("halve", ()) is None
        assert app.check_action("more", ()) is True
        await pilot.press("-", "[")
    assert load_calls(engine) == []


async def test_open_loop_keys_change_the_rate_by_ten_percent(tmp_path: Path) -> None:
    engine = FakeEngine(tmp_path / "run", script=HISTORY, mode="open", rate=100.0)
    app = DashboardApp(fake_session(engine))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("+")
        assert engine.rate == pytest.approx(110.0)
        await press_applied(pilot, "-", "]")
    assert load_calls(engine) == [("set_rate", 110.0), ("set_rate", 100.0), ("set_rate", 200.0)]


async def test_p_pauses_then_resumes(engine: FakeEngine) -> None:
    app = DashboardApp(fake_session(engine))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("p")
        assert engine.state == "paused"
        await pilot.pause()
        assert app.run_state == "paused"
        assert app.check_action("toggle_ramp", ()) is None
        await pilot.press("p")
        assert engine.state == "running"
    assert load_calls(engine) == [("pause", None), ("resume", None)]


async def test_m_switches_to_open_loop_and_plus_then_moves_the_rate(engine: FakeEngine) -> None:
    app = DashboardApp(fake_session(engine))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("m")
        assert engine.mode == "open"
        rate = engine.rate
        await pilot.pause()
        await pilot.press("+")
        assert engine.rate == pytest.approx(round(rate * 1.1, 1))
    assert load_calls(engine)[0] == ("set_mode", "open")
    assert load_calls(engine)[1][0] == "set_rate"


async def test_r_runs_the_ramp_controller_which_owns_the_level_until_r_again(engine: FakeEngine) -> None:
    session = fake_session(engine)
    app = DashboardApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await pilot.pause(0.3)
        assert app.run_state == "ramping"
        assert session.ramp is not None and session.ramp.active
        assert session.ramp.plan.start == 16 and session.ramp.plan.factor == 2
        assert app.check_action("more", ()) is None
        await pilot.press("+")
        await pilot.press("r")
        assert not session.ramp.active
        assert session.ramp.stopped_because == "stopped by the operator"
    # The ramp turned the same knob a key does; the dimmed + never reached the engine.
    assert load_calls(engine) == [("set_concurrency", 16)]
    assert ("ramp_end", ) == engine.notes[-1][:1]


async def test_s_writes_an_svg_into_the_run_dir(engine: FakeEngine) -> None:
    app = DashboardApp(fake_session(engine))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")
        await pilot.pause()
    shots = list(engine.run_dir.glob("*.svg"))
    assert len(shots) == 1
    text = shots[0].read_text(encoding="utf-8")
    assert text.lstrip().startswith("<svg")
    assert "live" in text and "stats" in text


async def test_q_finishes_the_engine_writes_the_summary_and_exits(engine: FakeEngine) -> None:
    app = DashboardApp(fake_session(engine))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        await app.workers.wait_for_complete()
        await pilot.pause()
    assert engine.finish_calls == 1
    assert (engine.run_dir / "summary.json").is_file()
    assert app.return_code == 0
    assert not app.is_running


async def test_ctrl_c_finishes_and_exits_with_130(engine: FakeEngine) -> None:
    app = DashboardApp(fake_session(engine))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+c")
        await app.workers.wait_for_complete()
        await pilot.pause()
    assert engine.finish_calls == 1
    assert app.return_code == 130


async def test_a_bounded_run_shows_its_final_state_and_waits_for_q(engine: FakeEngine) -> None:
    app = DashboardApp(fake_session(engine))
    async with app.run_test(size=SIZE) as pilot:
        engine.finish_on_next_poll()
        # Until the app's clock has polled the end and its finishing worker is done (a slow box takes longer).
        for _ in range(100):
            await pilot.pause(0.05)
            await app.workers.wait_for_complete()
            if app.run_state == "finished":
                break
        await pilot.pause()
        assert app.is_running
        assert app.run_state == "finished"
        banner = app.query_one(FinalBanner)
        assert banner.has_class("-visible")
        assert str(engine.run_dir / "summary.json") in str(banner.render())
        for action in ("more", "fewer", "double", "halve", "toggle_mode", "toggle_ramp", "toggle_pause"):
            assert app.check_action(action, ()) is None
        for action in ("quit", "save_svg", "next_theme", "help"):
            assert app.check_action(action, ()) is True
        await pilot.press("+", "p")
        await pilot.press("q")
        await pilot.pause()
    assert load_calls(engine) == []
    assert engine.finish_calls == 1
    assert app.return_code == 0


async def test_t_cycles_the_shipped_themes(engine: FakeEngine) -> None:
    app = DashboardApp(fake_session(engine))
    names = [theme.name for theme in load_themes().themes]
    async with app.run_test(size=SIZE) as pilot:
        assert app.theme == names[0]
        await pilot.press("t")
        assert app.theme == names[1]
        for _ in names[1:]:
            await pilot.press("t")
        assert app.theme == names[0]


async def test_theme_from_the_constructor(engine: FakeEngine) -> None:
    app = DashboardApp(fake_session(engine), theme="mlstress-day")
    async with app.run_test(size=SIZE):
        assert app.theme == "mlstress-day"
        assert not app.current_theme.dark


async def test_a_broken_theme_file_is_reported_and_skipped(engine: FakeEngine, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    themes = tmp_path / "themes"
    themes.mkdir()
    (themes / "good.toml").write_text('name = "good"\nprimary = "#336699"\n', encoding="utf-8")
    (themes / "broken.toml").write_text('name = "broken"\nprimary = "not a colour"\n', encoding="utf-8")
    (themes / "garbled.toml").write_text('name = "garbled\n', encoding="utf-8")
    monkeypatch.setattr(app_module, "load_themes", lambda: load_themes(themes))
    app = DashboardApp(fake_session(engine), theme="broken")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        messages = [message for _, message, _ in app.said]
        assert app.theme == "good"
        assert any("broken.toml" in message for message in messages)
        assert any("garbled.toml" in message for message in messages)
        assert any("unknown theme 'broken'" in message for message in messages)


async def test_help_lists_the_keys_and_closes(engine: FakeEngine) -> None:
    app = DashboardApp(fake_session(engine))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        engine.finish_on_next_poll()
        # The clock keeps updating the dashboard underneath the overlay.
        await until(pilot, lambda: app.run_state == "finished")
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_the_command_palette_offers_the_keys(engine: FakeEngine) -> None:
    app = DashboardApp(fake_session(engine))
    async with app.run_test(size=SIZE):
        titles = [command.title for command in app.get_system_commands(app.screen)]
    for title in ("More (+)", "Pause (p)", "Shot (s)", "Quit (q)"):
        assert title in titles
    assert "Screenshot" not in titles


async def test_the_screen_shows_what_the_engine_reported(engine: FakeEngine) -> None:
    app = DashboardApp(fake_session(engine, sla_p95_ms=5.0))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        header = str(app.query_one("#run-header").render())
        assert "default.sqlite" in header and "100,000 users" in header and "seed 42" in header
        assert "16 users" in header and "RUNNING" in header
        assert app.query_one("#sla").has_class("-breach")
        assert "missing_user" in str(app.query_one("#errors").render())


def test_the_stylesheet_uses_theme_variables_not_hex_colours() -> None:
    css = (Path(app_module.__file__).parent / "app.tcss").read_text(encoding="utf-8")
    assert not re.search(r":[^;{}]*#[0-9a-fA-F]{3,8}\b", css)


async def test_an_empty_second_with_users_stuck_is_a_breach_not_good_news(tmp_path: Path) -> None:
    from mlstress_tui.results.interval_stats import IntervalStats

    engine = FakeEngine(tmp_path / "run", script=[(8, 4)], concurrency=8)
    stuck = [IntervalStats(index=4 + i, t_start=1.0 + i * 0.25, t_end=1.25 + i * 0.25, concurrency=8,
                           stuck_users=8, level_id=0) for i in range(4)]
    engine._pending.extend(stuck)
    app = DashboardApp(fake_session(engine))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        sla = app.query_one("#sla")
        assert sla.has_class("-breach")
        assert "8 users stuck" in str(sla.render())
        assert "8 users stuck in the target" in str(app.query_one("#errors").render())


async def test_o_shows_the_heavy_users_table_and_the_breach_on_the_scatter(engine: FakeEngine) -> None:
    app = DashboardApp(fake_session(engine), refresh_hz=20)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("o")
        await pilot.pause(0.3)
        panel = app.query_one("#strata")
        assert panel.display and not app.query_one("#errors").display
        text = str(panel.render())
        assert "heaviest" in text and "p95" in text
        await pilot.press("o")
        assert app.query_one("#errors").display


async def test_a_shows_the_whole_run_against_its_sla(engine: FakeEngine) -> None:
    from mlstress_tui.tui.screens.acceptance_screen import AcceptanceScreen

    app = DashboardApp(fake_session(engine, sla_p95_ms=200.0))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, AcceptanceScreen)
        text = app.screen.query_one("#acceptance-panel").text()
        # The fake run's p95 (about 15 ms) is far inside 200 ms and its errors (0.01%) under 1%: exactly PASS.
        assert text.splitlines()[0].split()[:2] == ["PASS", "2"]
        assert re.search(r"PASS\s+run\s+p95_ms", text) and re.search(r"PASS\s+run\s+error_rate", text)
        assert "FAIL" not in text and "vouched for: every stage that ran" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, AcceptanceScreen)


async def test_m_starts_the_open_loop_below_the_throughput_just_measured(engine: FakeEngine) -> None:
    app = DashboardApp(fake_session(engine))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.5)
        series = sorted(app.session.ledger.current().settled().tick_throughputs)
        assert series
        steady = series[len(series) // 2]
        await pilot.press("m")
        assert engine.rate == pytest.approx(round(steady * 0.8, 1), rel=0.02)


async def test_the_heavy_users_table_fits_an_80_column_screen(engine: FakeEngine) -> None:
    app = DashboardApp(fake_session(engine), refresh_hz=20)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("o")
        await pilot.pause(0.5)
        panel = app.query_one("#strata")
        lines = str(panel.render()).splitlines()
        assert lines[0].split() == ["events", "req", "p95", "err"]
        assert max(len(line) for line in lines[:-1]) <= panel.size.width


NODES = [
    {"node": "10.0.0.1/a1b2c3", "actors": 1, "actors_alive": 1, "rate": 200.0, "requests": 800, "errors": 0,
     "throughput_rps": 199.5, "p99_ms": 4.2, "harness_verdict": "ok", "clock_offset_ms": 0.012, "lost": []},
    {"node": "10.0.0.2/d4e5f6", "actors": 1, "actors_alive": 0, "rate": 0.0, "requests": 300, "errors": 0,
     "throughput_rps": 75.0, "p99_ms": 3.9, "harness_verdict": "lost", "clock_offset_ms": -1.6,
     "lost": [{"worker": 1, "carried": "100 req/s", "how": "actor lost on node 10.0.0.2/d4e5f6"}]},
]


class RayFakeEngine(FakeEngine):
    def node_report(self) -> list[dict]:
        return NODES


async def test_n_shows_each_node_in_a_ray_run(tmp_path: Path) -> None:
    from mlstress_tui.tui.screens.nodes_screen import NodesScreen

    app = DashboardApp(fake_session(RayFakeEngine(tmp_path / "run", script=HISTORY)))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.check_action("nodes", ()) is True
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, NodesScreen)
        text = str(app.screen.query_one("#overlay-text").render())
        assert "10.0.0.1/a1b2c3" in text and "lost" in text and "100 req/s" in text and "-1.600 ms" in text
        await pilot.press("n")
        await pilot.pause()
        assert not isinstance(app.screen, NodesScreen)


async def test_n_without_ray_says_why_and_help_lists_it_dimmed(engine: FakeEngine) -> None:
    app = DashboardApp(fake_session(engine))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("n")
        await pilot.pause()
        assert app.screen is app.screen_stack[0]
        assert "for a --ray run" in app.said[-1][1]
        assert "for a --ray run" in str(app.dashboard.message.render())
        rows = {row.key: row for row in app.help_rows()}
        assert not rows["n"].enabled and "--ray" in rows["n"].why
        footer_keys = {key.key for key in app.dashboard.query(FooterKey)}
        assert "n" not in footer_keys
