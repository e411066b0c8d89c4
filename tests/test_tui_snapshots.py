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

pytestmark = pytest.mark.slow  # each snapshot runs the whole app to a settled frame

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


THEMES = ("mlstress-night", "mlstress-day")


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("size", SIZES.keys())
def test_running_screen(snap_compare, size: str, theme: str) -> None:
    app = DashboardApp(fake_session(fake_engine(finished=False), sla_p95_ms=20.0), theme=theme)
    assert snap_compare(app, terminal_size=SIZES[size], run_before=settle)


@pytest.mark.parametrize("size", SIZES.keys())
def test_finished_screen(snap_compare, size: str) -> None:
    app = DashboardApp(fake_session(fake_engine(finished=True), sla_p95_ms=20.0))
    assert snap_compare(app, terminal_size=SIZES[size], run_before=settle)


def test_heavy_users_beside_the_numbers_at_80x24(snap_compare) -> None:
    app = DashboardApp(fake_session(fake_engine(finished=False), sla_p95_ms=20.0))

    async def heavy(pilot: Pilot) -> None:
        await settle(pilot)
        await pilot.press("o")
        panel = pilot.app.query_one("#strata")
        for _ in range(200):  # until the table is drawn at the width the layout gave it
            if str(panel.render()).startswith("events"):
                break
            await pilot.pause(0.02)
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZES["80x24"], run_before=heavy)


def test_help_fits_80x24_with_its_close_hint(snap_compare) -> None:
    app = DashboardApp(fake_session(fake_engine(finished=False), sla_p95_ms=20.0))

    async def help_open(pilot: Pilot) -> None:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZES["80x24"], run_before=help_open)


ACCEPTANCE_REPORT = {
    "schema": "mlstress.report/1", "verdict": "FAIL", "preset": "acceptance", "passed": 5, "failed": 1,
    "criteria": [
        {"stage": "moderate", "metric": "p95_ms", "op": "<", "threshold": 100.0, "unit": "ms", "measured": 21.04,
         "passed": True, "note": ""},
        {"stage": "peak", "metric": "p95_ms", "op": "<", "threshold": 300.0, "unit": "ms", "measured": 412.5,
         "passed": False, "note": ""},
        {"stage": "peak", "metric": "error_rate", "op": "<", "threshold": 0.01, "unit": "share", "measured": 0.0004,
         "passed": True, "note": ""},
        {"stage": "heavy", "metric": "breach_rate", "op": "<", "threshold": 0.05, "unit": "share",
         "measured": 0.012, "passed": True, "note": ""},
        {"stage": "cliff", "metric": "safe_concurrency", "op": ">=", "threshold": 2, "unit": "users", "measured": 4,
         "passed": True, "note": ""},
        {"stage": "edge", "metric": "edge_errors", "op": "<=", "threshold": 0, "unit": "count", "measured": 0,
         "passed": True, "note": ""},
    ],
    "stages": [{"name": name, "kind": kind, "ran": True, "suspect": None, "metrics": {}, "summary": None}
               for name, kind in (("moderate", "load"), ("peak", "load"), ("heavy", "outliers"),
                                  ("cliff", "ramp"), ("edge", "edge"))],
    "knee_concurrency": 8, "safe_concurrency": 4, "breach_event_count": 12_345, "seed": 42,
    "database": {"users": 100_000, "events": 4_500_000, "seed": 42},
    "target": {"kind": "sqlite", "label": "default.sqlite"},
    "started_at": "2026-03-01T12:00:00.000+00:00", "duration_s": 58.2,
    "label": "build 2026.03.1 (a1b2c3d)", "tool_version": "0.1.0",
    "cliff": {"stage": "cliff", "mode": "closed", "sla_p95_ms": 100.0, "knee": 8.0,
              "steps": [{"level": level, "p95_ms": p95, "throughput_rps": rps, "error_rate": 0.0}
                        for level, p95, rps in ((1, 1.1, 880.0), (2, 1.2, 1_720.0), (4, 1.6, 3_300.0),
                                                (8, 4.9, 5_900.0), (16, 131.0, 6_050.0))]},
    "heavy_users": {"stage": "heavy", "threshold_ms": 500.0, "breach_event_count": 12_345, "users_above": 3,
                    "population_share_above": 0.00003, "failing": None,
                    "strata": [{"name": name, "min_events": low, "p95_ms": p95, "requests": 50, "errors": 0}
                               for name, low, p95 in (("0", 0, 0.4), ("1", 1, 0.5), ("2-4", 2, 0.6),
                                                      ("5-9", 5, 0.9), ("10-19", 10, 1.4), ("20-49", 20, 2.8),
                                                      ("50-99", 50, 6.1), ("100-199", 100, 12.0),
                                                      ("200-499", 200, 31.0), ("500-999", 500, 70.0),
                                                      ("1000-2154", 1000, 160.0), ("top 1%", 400, 95.0),
                                                      ("top 0.1%", 1500, 240.0), ("heaviest 10", 9000, 610.0))]},
}


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("size", SIZES.keys())
def test_acceptance_panel(snap_compare, size: str, theme: str) -> None:
    from mlstress_tui.tui.acceptance_view import AcceptanceApp

    assert snap_compare(AcceptanceApp(ACCEPTANCE_REPORT, theme), terminal_size=SIZES[size], run_before=settle)


def test_acceptance_panel_without_colour(snap_compare, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlstress_tui.tui.acceptance_view import AcceptanceApp

    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(AcceptanceApp(ACCEPTANCE_REPORT), terminal_size=SIZES["80x24"], run_before=settle)


def incomplete_report() -> dict:
    """The acceptance preset stopped by Ctrl-C in its peak stage, which the harness was also stopped in: INCOMPLETE."""
    from mlstress_tui.analysis.acceptance import evaluate
    from mlstress_tui.analysis.validity import Validity
    from mlstress_tui.presets import load_preset
    from mlstress_tui.report.acceptance_report import build_report
    from mlstress_tui.stages import COMPLETED, INTERRUPTED, StageEnd

    preset = load_preset("acceptance")
    measured = {"moderate": {"p95_ms": 21.04, "requests": 1000, "error_rate": 0.0},
                "peak": {"p95_ms": 3010.0, "requests": 412, "error_rate": 0.0}}
    said = {"moderate": Validity(True, "ok", "timer lag p99 0.21 ms, busiest worker 38% of a core"),
            "peak": Validity(False, "stopped", "the harness was stopped for 3.02 s at 1.5 s (Ctrl-Z, SIGSTOP or a VM "
                                               "pause): latencies then include the stop, not only the target's time")}
    ends = {"moderate": StageEnd(COMPLETED), "peak": StageEnd(INTERRUPTED, "interrupted after 4.2 s")}
    suspect = {name: v.suspect_reason for name, v in said.items()}
    results = evaluate(preset.criteria, measured, suspect, ends=ends)
    report = build_report(preset_name=preset.name, stages=preset.stages, results=results, measured=measured,
                          suspect=suspect, seed=42, database={"users": 100_000, "events": 4_500_000, "seed": 42},
                          started_at="2026-03-01T12:00:00.000+00:00", duration_s=9.7, ends=ends,
                          validity={name: v.to_json() for name, v in said.items()})
    report["target"] = {"kind": "sqlite", "label": "default.sqlite"}
    report["interrupted"] = True
    return report


def test_acceptance_panel_of_an_interrupted_suite(snap_compare) -> None:
    from mlstress_tui.tui.acceptance_view import AcceptanceApp

    report = incomplete_report()
    assert report["verdict"] == "INCOMPLETE"
    assert snap_compare(AcceptanceApp(report), terminal_size=(80, 24), run_before=settle)


# The same suite judged against an earlier build: each criterion's baseline figure beside its own.
BASELINE_VALUES = (19.5, 280.0, 0.0006, 0.010, 4, 0)
ACCEPTANCE_AGAINST_BASELINE = {
    **ACCEPTANCE_REPORT,
    "criteria": [{**criterion, "baseline": before} for criterion, before in
                 zip(ACCEPTANCE_REPORT["criteria"], BASELINE_VALUES, strict=True)],
    "baseline": {"dir": "reports/build-2026.02.4", "verdict": "PASS", "label": "build 2026.02.4 (9f8e7d6)",
                 "started_at": "2026-02-20T09:30:00.000+00:00", "preset": "acceptance", "target": "default.sqlite"},
}


@pytest.mark.parametrize("size", SIZES.keys())
def test_acceptance_panel_against_a_baseline(snap_compare, size: str) -> None:
    from mlstress_tui.tui.acceptance_view import AcceptanceApp

    assert snap_compare(AcceptanceApp(ACCEPTANCE_AGAINST_BASELINE), terminal_size=SIZES[size], run_before=settle)


@pytest.mark.parametrize("size", SIZES.keys())
def test_show_against_a_baseline(snap_compare, size: str) -> None:
    from tui_fakes import finished_run_dir

    from mlstress_tui.commands.show import against_baseline
    from mlstress_tui.tui.baseline_view import BaselineApp

    base = finished_run_dir(Path("runs/base"))
    new = finished_run_dir(Path("runs/new"), service_ms=2.6, seed=8)
    app = BaselineApp(*against_baseline(new, base, force=False))
    assert snap_compare(app, terminal_size=SIZES[size], run_before=settle)
