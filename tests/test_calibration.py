"""The calibration's parts: turns that alternate as said, bare sleepers that measure only while they run, selfcheck."""

import time

import pytest

from mlstress_tui.cli import main
from mlstress_tui.commands.calibration import BareSleepers, engine_in_turns, take_turns


def test_turns_alternate_and_each_side_runs_its_share():
    said: list[str] = []
    pumps: list[float] = []
    sides = [(lambda: said.append("a run"), lambda: said.append("a hold")),
             (lambda: said.append("b run"), lambda: said.append("b hold"))]
    started = time.monotonic()
    take_turns(sides, seconds=0.2, turn_s=0.05, pump=lambda: pumps.append(time.monotonic()))
    assert said == ["a run", "a hold", "b run", "b hold"] * 4
    assert time.monotonic() - started >= 0.4  # four turns a side of 0.05 s
    assert len(pumps) >= 8  # at least once a turn


@pytest.mark.slow
def test_bare_sleepers_measure_only_while_they_run():
    held = BareSleepers(2, 1.0)
    time.sleep(0.3)
    assert held.close().count == 0
    running = BareSleepers(2, 1.0)
    running.run()
    time.sleep(0.3)
    running.hold()
    histogram = running.close()
    assert 20 <= histogram.count <= 700  # two loops of ~1 ms for 0.3 s (fewer on a starved box, never more)
    assert histogram.percentile_ms(50) >= 1.0


@pytest.mark.slow
def test_the_engine_in_turns_with_sleepers_measures_both_sides(tmp_path):
    turns = engine_in_turns(2.0, 4, 1.0, tmp_path / "run", turn_s=0.25)
    assert turns.engine["requests"] > 500 and turns.sleepers.count > 500
    assert turns.engine["latency_ms"]["p50"] >= 2.0 and turns.sleepers.percentile_ms(50) >= 2.0
    assert abs(turns.error("p50")) < 0.5  # the same sleep on both sides, whatever the machine's load
    assert (tmp_path / "run" / "summary.json").exists()


@pytest.mark.slow
def test_selfcheck_prints_both_sides_and_a_verdict(tmp_path, capsys):
    code = main(["selfcheck", "--seconds", "0.5", "--out", str(tmp_path / "check")])
    out = capsys.readouterr().out
    assert code in (0, 1)  # 1: this machine was too busy to vouch for the numbers, which it says
    assert "no-op requests/s" in out and "bare sleepers (no harness) p50" in out
    assert "through the engine, taking turns with them" in out
    assert ("verdict: OK" in out) == (code == 0) and ("NOT TRUSTWORTHY" in out) == (code == 1)
