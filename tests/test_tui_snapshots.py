"""SVG snapshots of the dashboard, running and finished, at 80×24 and 120×40, on a seeded fake run.

Regenerate after a deliberate change with `pytest tests/test_tui_snapshots.py --snapshot-update`
and look at the SVGs before committing them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot

from mlstress_tui.tui.app import DashboardApp
from tui_fakes import HISTORY, FakeEngine, fake_session

# A relative, fixed run directory: the finished screen prints it, so it must not vary between runs.
RUN_DIR = Path("mlstress-runs/20260301T120000Z")
SIZES = {"80x24": (80, 24), "120x40": (120, 40)}


def fake_engine(*, finished: bool) -> FakeEngine:
    return FakeEngine(RUN_DIR, script=HISTORY, concurrency=16, elapsed_s=83.5, finished=finished,
                      duration_s=300.0 if finished else None)


@pytest.fixture(autouse=True)
def in_a_scratch_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The session writes its run directory (relative, so the screen shows a fixed path) under tmp_path.
    monkeypatch.chdir(tmp_path)


async def settle(pilot: Pilot) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()


@pytest.mark.parametrize("size", SIZES.keys())
def test_running_screen(snap_compare, size: str) -> None:
    app = DashboardApp(fake_session(fake_engine(finished=False), sla_p95_ms=20.0))
    assert snap_compare(app, terminal_size=SIZES[size], run_before=settle)


@pytest.mark.parametrize("size", SIZES.keys())
def test_finished_screen(snap_compare, size: str) -> None:
    app = DashboardApp(fake_session(fake_engine(finished=True), sla_p95_ms=20.0))
    assert snap_compare(app, terminal_size=SIZES[size], run_before=settle)


def test_light_theme(snap_compare) -> None:
    app = DashboardApp(fake_session(fake_engine(finished=False), sla_p95_ms=20.0), theme="mlstress-day")
    assert snap_compare(app, terminal_size=(120, 40), run_before=settle)
