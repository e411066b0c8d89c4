"""The dashboard's pure parts: the last-second window, theme files, number formats."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlstress_tui.tui.format import fmt_ms
from mlstress_tui.tui.load_controls import why_not
from mlstress_tui.session.live_window import LiveWindow
from mlstress_tui.tui.themes import DEFAULT_THEME, load_theme_file, load_themes
from tui_fakes import make_tick


def test_the_interval_is_the_last_second_of_ticks() -> None:
    live = LiveWindow()
    ticks = [make_tick(i, mode="closed", concurrency=8, rate=None, pool_size=8) for i in range(10)]
    for tick in ticks:
        live.on_tick(tick)
    interval = live.interval()
    assert interval is not None
    assert interval.requests == sum(tick.requests for tick in ticks[-4:])
    assert interval.latency.count == interval.requests
    assert live.ticks_seen == 10


def test_the_shipped_themes_load_and_one_is_light() -> None:
    loaded = load_themes()
    assert loaded.problems == []
    assert len(loaded.themes) >= 3
    assert loaded.themes[0].name == DEFAULT_THEME
    assert any(not theme.dark for theme in loaded.themes)


def test_a_theme_with_unknown_keys_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "odd.toml"
    path.write_text('name = "odd"\nprimary = "#123456"\nsparkle = true\n', encoding="utf-8")
    try:
        load_theme_file(path)
    except ValueError as error:
        assert "sparkle" in str(error)
    else:
        raise AssertionError("a theme with an unknown key loaded")


def test_latency_formats_keep_three_significant_digits() -> None:
    assert fmt_ms(None) == "–"
    assert fmt_ms(0.0421) == "0.042"
    assert fmt_ms(2.345) == "2.35"
    assert fmt_ms(23.45) == "23.4"
    assert fmt_ms(234.5) == "234"
    assert fmt_ms(12_345.0) == "12.3 s"


def test_linear_ticks_are_round_even_and_read_like_the_stats_panel():
    from mlstress_tui.tui.widgets.dashboard_chart import linear_ticks

    positions, labels = linear_ticks(13576.2, max_ticks=6)
    assert labels == ["0", "5,000", "10,000", "15,000"]
    steps = {round(b - a, 9) for a, b in zip(positions, positions[1:])}
    assert len(steps) == 1 and positions[-1] >= 13576.2
    assert linear_ticks(0.63)[1] == ["0.0", "0.2", "0.4", "0.6", "0.8"]


@pytest.mark.parametrize("action, state, ended, mode, level, why", [
    ("more", "running", False, "closed", 4, ""),
    ("nodes", "finished", True, "closed", 4, ""),  # not a load key: always applies
    ("more", "running", True, "closed", 4, "the run has ended"),
    ("toggle_pause", "stopping", False, "closed", 4, "the run has ended"),
    ("more", "starting", False, "closed", 4, "the run is starting"),
    ("double", "ramping", False, "closed", 4, "the ramp sets the level: r stops it"),
    ("toggle_ramp", "ramping", False, "closed", 4, ""),  # r stops the ramp it started
    ("toggle_ramp", "paused", False, "closed", 4, "paused: p resumes first"),
    ("halve", "running", False, "closed", 1, "already at the lowest level"),
    ("fewer", "running", False, "open", 0.1, "already at the lowest level"),
    ("fewer", "running", False, "open", 1, ""),
])
def test_a_load_key_applies_or_says_why_not(action, state, ended, mode, level, why):
    assert why_not(action, state=state, ended=ended, mode=mode, level=level) == why
