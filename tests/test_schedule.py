"""The open-loop arrival schedule: due times, rate changes, pauses."""

import math

import pytest

from mlstress_tui.load.schedule import ArrivalSchedule

SECOND = 1_000_000_000


def test_constant_rate_spaces_requests_evenly():
    schedule = ArrivalSchedule(rate=100.0, start_ns=0)
    due = [schedule.due_ns(schedule.claim()) for _ in range(5)]
    assert due == pytest.approx([0, 1e7, 2e7, 3e7, 4e7])


def test_rate_change_bends_the_curve_and_keeps_the_backlog():
    schedule = ArrivalSchedule(rate=10.0, start_ns=0)
    # At t=1 s, 10 requests were due; none was claimed yet (the system fell behind).
    schedule.set_rate(100.0, now_ns=SECOND)
    assert schedule.due_ns(5) == pytest.approx(0.5 * SECOND)  # backlog keeps its old due time
    assert schedule.due_ns(10) == pytest.approx(1.0 * SECOND)
    assert schedule.due_ns(20) == pytest.approx(1.1 * SECOND)


def test_pause_stops_arrivals_and_resume_forgives_the_backlog():
    schedule = ArrivalSchedule(rate=10.0, start_ns=0)
    for _ in range(3):
        schedule.claim()
    schedule.pause(now_ns=SECOND)
    assert math.isinf(schedule.due_ns(10))  # nothing new arrives while paused
    schedule.resume(10.0, now_ns=5 * SECOND)
    assert schedule.dropped == 7  # due by t=1 s but never sent
    assert schedule.due_ns(schedule.claim()) == pytest.approx(5 * SECOND)
