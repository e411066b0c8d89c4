"""Pilot tests of what the operator sees and presses: keys from overlays, `m`'s rate and its queue, `r` from an
overloaded level, the footer and help at 80×24, screenshots without messages in them."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets._footer import FooterKey

from mlstress_tui.results.interval_stats import IntervalStats
from mlstress_tui.tui.app import DashboardApp
from mlstress_tui.tui.keys import DASHBOARD_KEYS
from mlstress_tui.tui.screens.acceptance_screen import AcceptanceScreen
from mlstress_tui.tui.screens.help_screen import HelpScreen
from mlstress_tui.tui.screens.overlay import Overlay
from mlstress_tui.tui.screens.run_log_screen import RunLogScreen
from tui_fakes import HISTORY, FakeEngine, fake_session, until

NARROW = (80, 24)
WIDE = (120, 40)


def load_calls(engine: FakeEngine) -> list[tuple[str, object]]:
    return [call for call in engine.calls if call[0] not in ("start", "finish")]


@pytest.fixture
def engine(tmp_path: Path) -> FakeEngine:
    return FakeEngine(tmp_path / "run", script=HISTORY, concurrency=16)


# -- keys from overlays ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay_key", ["question_mark", "a", "l"])
async def test_a_level_key_from_an_overlay_closes_it_and_acts(engine: FakeEngine, overlay_key: str) -> None:
    app = DashboardApp(fake_session(engine))
    async with app.run_test(size=NARROW) as pilot:
        await pilot.pause()
        await pilot.press(overlay_key)
        await until(pilot, lambda: isinstance(app.screen, Overlay))
        await pilot.press("]")
        await until(pilot, lambda: not isinstance(app.screen, Overlay) and engine.concurrency == 32)
    assert load_calls(engine) == [("set_concurrency", 32)]


async def test_keys_from_help_open_the_other_overlays_and_start_the_ramp(engine: FakeEngine) -> None:
    session = fake_session(engine)
    app = DashboardApp(session)
    async with app.run_test(size=NARROW) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, AcceptanceScreen))
        assert len(app.screen_stack) == 2  # help closed, not stacked under it
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, RunLogScreen))
        await pilot.press("o")
        await until(pilot, lambda: app.screen is app.dashboard and app.show_heavy_users)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("r")
        await until(pilot, lambda: app.screen is app.dashboard and session.ramp is not None and session.ramp.active)


async def test_s_and_t_act_in_place_over_an_overlay_and_the_shot_has_no_toast(engine: FakeEngine) -> None:
    app = DashboardApp(fake_session(engine))
    seen: list[int] = []
    save = app.save_screenshot

    def save_and_count(*args, **kwargs):
        seen.append(len(app._notifications))
        return save(*args, **kwargs)

    app.save_screenshot = save_and_count  # type: ignore[method-assign]
    said: list[str] = []
    notify = app.notify

    def notify_and_keep(message, *args, **kwargs):
        said.append(str(message))
        return notify(message, *args, **kwargs)

    app.notify = notify_and_keep  # type: ignore[method-assign]
    async with app.run_test(size=NARROW) as pilot:
        await pilot.pause()
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, AcceptanceScreen))
        theme = app.theme
        await pilot.press("t")
        assert app.theme != theme and isinstance(app.screen, AcceptanceScreen)
        assert any(text.startswith("theme") for text in said)  # over an overlay that stays, the theme's name is a toast
        await pilot.press("s")
        await until(pilot, lambda: bool(list(engine.run_dir.glob("*.svg"))))
        assert isinstance(app.screen, AcceptanceScreen)
    assert seen == [0]  # the toast was gone when the shot was taken
    text = next(engine.run_dir.glob("*.svg")).read_text(encoding="utf-8")
    assert "criteria" in text and "passed" in text


@pytest.mark.parametrize("size", [NARROW, WIDE])
@pytest.mark.parametrize("overlay_key", ["question_mark", "a", "l"])
async def test_every_overlay_says_how_to_close_it_on_its_border(engine: FakeEngine, size, overlay_key: str) -> None:
    app = DashboardApp(fake_session(engine))
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await pilot.press(overlay_key)
        await until(pilot, lambda: isinstance(app.screen, Overlay))
        body = app.screen.query_one("#overlay-body")
        assert body.border_subtitle.startswith("esc or ")
        # The box, and so its bottom edge with the hint, is inside the screen.
        assert body.region.bottom <= size[1] and body.region.right <= size[0]
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.dashboard)


# -- the footer and help at 80×24 ----------------------------------------------------------------------------------


async def test_the_footer_holds_every_key_at_80_columns(engine: FakeEngine) -> None:
    app = DashboardApp(fake_session(engine))
    async with app.run_test(size=NARROW) as pilot:
        shown = {binding.key.split(",")[0] for binding in DASHBOARD_KEYS if binding.show}
        # The footer recomposes after each change of the bindings' state: wait for it to settle on them.
        await until(pilot, lambda: {key.key for key in app.dashboard.query(FooterKey)} == shown)
        await pilot.pause()
        keys = list(app.dashboard.query(FooterKey))
        assert {key.key for key in keys} == shown
        assert all(key.region.width > 0 for key in keys)
        # A key's region is not clipped to the screen: one pushed past the edge ends past column 80.
        assert max(key.region.right for key in keys) <= NARROW[0]


async def test_help_lists_every_key_and_fits_80_by_24(engine: FakeEngine) -> None:
    app = DashboardApp(fake_session(engine))
    async with app.run_test(size=NARROW) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        lines = str(app.screen.query_one("#overlay-text").render()).splitlines()
        listed = {line.split()[0] for line in lines if line and not line.startswith(" ")}
        for binding in DASHBOARD_KEYS:
            if not binding.priority:
                assert (binding.key_display or binding.key) in listed
        assert max(len(line) for line in lines) <= app.screen.query_one("#overlay-text").size.width


# -- m: the open loop's start rate, and whether its queue drains --------------------------------------------------


def one_fast_second(engine: FakeEngine, first: int) -> None:
    """Four consecutive ticks (one second) serving three times as many requests as the rest."""
    for tick in engine._pending[first:first + 4]:
        tick.requests *= 3
        tick.ok *= 3


async def test_m_starts_from_the_median_second_not_one_fast_second(tmp_path: Path) -> None:
    engine = FakeEngine(tmp_path / "run", script=[(16, 24)], concurrency=16)
    one_fast_second(engine, 12)
    session = fake_session(engine)
    app = DashboardApp(session)
    async with app.run_test(size=WIDE) as pilot:
        await until(pilot, lambda: session.totals.ticks == 24)
        series = sorted(session.ledger.current().settled().tick_throughputs)
        steady, mean = series[len(series) // 2], sum(series) / len(series)
        assert max(series) > 2.5 * steady and mean > 1.2 * steady  # the fast second is in the level
        await pilot.press("m")
        assert engine.mode == "open"
        assert engine.rate == pytest.approx(round(0.8 * steady, 1))
        assert engine.rate < 0.8 * mean  # the fast second did not lift it
        said = app.said[-1][1]
        assert said.startswith(f"open loop at {engine.rate:,.0f} req/s: 80% of") and "median second" in said


async def test_an_open_loop_whose_queue_does_not_drain_is_said_where_the_operator_looks(tmp_path: Path) -> None:
    # 9,000 req/s offered to a fake that serves 6,000: every second starts a third of its arrivals late, and its
    # median latency (about 4.5 ms, steady in the fake) stays past an SLA of 2 ms.
    engine = FakeEngine(tmp_path / "run", mode="open", rate=9_000.0, ticks_per_poll=4)
    session = fake_session(engine, sla_p95_ms=2.0)
    app = DashboardApp(session, refresh_hz=20)
    async with app.run_test(size=NARROW) as pilot:
        await until(pilot, lambda: session.snapshot.backlog is not None, tries=400)
        await pilot.pause(0.2)
        line = session.snapshot.backlog
        assert line.startswith("the queue is not draining: after ") and "lower the rate" in line
        assert "the queue is not draining" in str(app.dashboard.errors.render())
        assert any(message.startswith("the queue is not draining") for _, message, warning in app.said if warning)


async def test_an_open_loop_the_target_keeps_up_with_has_no_backlog_line(tmp_path: Path) -> None:
    engine = FakeEngine(tmp_path / "run", mode="open", rate=3_000.0, ticks_per_poll=4)
    session = fake_session(engine, sla_p95_ms=2.0)
    app = DashboardApp(session, refresh_hz=20)
    async with app.run_test(size=NARROW) as pilot:
        await until(pilot, lambda: session.ledger.current() is not None and session.ledger.current().held_s >= 6,
                    tries=400)
        assert session.snapshot.backlog is None


# -- r from an overloaded level ---------------------------------------------------------------------------------


async def test_r_from_a_level_past_the_sla_goes_down_until_one_holds_it(tmp_path: Path) -> None:
    # p95 at 16 users is about 5 ms, at 8 about 3 ms: an SLA of 4 ms breaks at 16 and holds at 8.
    engine = FakeEngine(tmp_path / "run", script=[(16, 8)], concurrency=16, ticks_per_poll=4)
    session = fake_session(engine, sla_p95_ms=4.0)
    app = DashboardApp(session, refresh_hz=20)
    async with app.run_test(size=NARROW) as pilot:
        await until(pilot, lambda: session.totals.ticks >= 8)
        await pilot.press("r")
        await until(pilot, lambda: session.ramp is not None and not session.ramp.active, tries=500)
        await pilot.pause(0.1)
        ramp = session.ramp
        assert ramp.stopped_because == "16 users broke the SLA; halved down to 8 users, which holds it"
        report = ramp.report()
        assert report["knee_concurrency"] == 8 and report["safe_concurrency"] == 8
        assert [step["level"] for step in report["steps"]] == [8, 16]
        assert engine.concurrency == 8
        assert any("The load stands at 8 users" in message for _, message, _ in app.said)
    assert load_calls(engine) == [("set_concurrency", 16), ("set_concurrency", 8)]


async def test_r_where_no_level_holds_the_sla_says_so_and_what_it_left_running(tmp_path: Path) -> None:
    engine = FakeEngine(tmp_path / "run", script=[(4, 8)], concurrency=4, ticks_per_poll=4)
    session = fake_session(engine, sla_p95_ms=0.5)
    app = DashboardApp(session, refresh_hz=20)
    async with app.run_test(size=NARROW) as pilot:
        await until(pilot, lambda: session.totals.ticks >= 8)
        await pilot.press("r")
        await until(pilot, lambda: session.ramp is not None and not session.ramp.active, tries=800)
        ramp = session.ramp
        assert ramp.stopped_because == ("no level holds the SLA: halved down from 4 users to 1 user, which still "
                                        "breaks it; the load was left at 1 user")
        assert ramp.report()["knee_concurrency"] is None
        assert engine.concurrency == 1
    assert load_calls(engine) == [("set_concurrency", 4), ("set_concurrency", 2), ("set_concurrency", 1)]


# -- the first frame ---------------------------------------------------------------------------------------------


async def test_the_first_frame_has_its_header_and_says_warming_up_not_no_requests(tmp_path: Path) -> None:
    engine = FakeEngine(tmp_path / "run", concurrency=4, elapsed_s=0.9)
    # One second of requests whose level the workers had not all applied yet: counted, at no level.
    engine._pending = [IntervalStats(index=i, t_start=i * 0.25, t_end=(i + 1) * 0.25, concurrency=4, requests=1000,
                                     ok=1000, level_id=None) for i in range(4)]
    app = DashboardApp(fake_session(engine))
    async with app.run_test(size=NARROW) as pilot:
        header = str(app.dashboard.header.render())
        assert "default.sqlite" in header  # drawn as the screen mounted, before any clock tick
        await until(pilot, lambda: app.session.totals.ticks == 4)
        await pilot.pause(0.8)
        header = str(app.dashboard.header.render())
        assert "elapsed 0.9 s" in header
        assert "4,000" in str(app.dashboard.stats.render())
        assert app.dashboard.histogram.border_title == "latency · this level"


async def test_r_in_an_overloaded_open_loop_drops_the_queue_at_each_step_down(tmp_path: Path) -> None:
    # 9,000 req/s to a fake that serves 6,000 (p95 about 7 ms) against an SLA of 4 ms; 4,500 req/s holds it.
    engine = FakeEngine(tmp_path / "run", mode="open", rate=9_000.0, ticks_per_poll=4)
    session = fake_session(engine, sla_p95_ms=4.0)
    app = DashboardApp(session, refresh_hz=20)
    async with app.run_test(size=NARROW) as pilot:
        await until(pilot, lambda: session.totals.ticks >= 8)
        await pilot.press("r")
        await until(pilot, lambda: session.ramp is not None and not session.ramp.active, tries=500)
        assert session.ramp.stopped_because == "9,000 req/s broke the SLA; halved down to 4,500 req/s, which holds it"
        assert engine.rate == 4_500.0 and engine.state == "running"
    # The step down started from an empty queue: paused (what 9,000 req/s owed is unsent), the rate, resumed.
    assert load_calls(engine) == [("set_rate", 9_000.0), ("pause", None), ("set_rate", 4_500.0), ("resume", None)]
