"""The open-loop arrival schedule: due times, rate changes, pauses."""

import math

import pytest

from mlstress_tui.load.schedule import ArrivalSchedule

SECOND = 1_000_000_000


def due(schedule: ArrivalSchedule) -> float:
    position, _ = schedule.claim()
    return schedule.due_ns(position)


def test_constant_rate_spaces_requests_evenly():
    schedule = ArrivalSchedule(rate=100.0, start_ns=0)
    assert [due(schedule) for _ in range(5)] == pytest.approx([0, 1e7, 2e7, 3e7, 4e7])


def test_rate_change_bends_the_curve_and_keeps_the_backlog():
    schedule = ArrivalSchedule(rate=10.0, start_ns=0)
    # At t=1 s, 10 requests were due; none was claimed yet (the system fell behind).
    schedule.set_rate(100.0, now_ns=SECOND)
    assert schedule.due_ns(5) == pytest.approx(0.5 * SECOND)  # backlog keeps its old due time
    assert schedule.due_ns(10) == pytest.approx(1.0 * SECOND)
    assert schedule.due_ns(20) == pytest.approx(1.1 * SECOND)


def test_a_pause_drops_the_backlog_and_a_resume_starts_from_the_resume_instant():
    schedule = ArrivalSchedule(rate=10.0, start_ns=0)
    for _ in range(3):
        schedule.claim()
    backlog, waits = schedule.pause(now_ns=SECOND)
    assert backlog == 7  # due before t=1 s and never sent: unsent, counted at the pause
    assert waits.count == 7 and waits.max_ns == pytest.approx(0.7 * SECOND, rel=0.01)
    assert math.isinf(schedule.due_ns(10))  # nothing arrives while paused
    assert schedule.owed_at(3 * SECOND)[0] == 0  # a pause owes nothing
    paused = schedule.resume(10.0, now_ns=5 * SECOND)
    assert paused == 40  # 4 s of arrivals at 10/s fell in the pause: not owed, but counted
    assert [due(schedule) for _ in range(3)] == pytest.approx([5 * SECOND, 5.1 * SECOND, 5.2 * SECOND])
    # After the resume nothing is late: the curve owes exactly what fell due since then.
    assert schedule.owed_at(int(5.25 * SECOND))[0] == 0
    assert schedule.owed_at(int(5.45 * SECOND))[0] == 2


def test_a_claim_not_yet_due_at_a_pause_is_void():
    schedule = ArrivalSchedule(rate=10.0, start_ns=0)
    position, epoch = schedule.claim()
    early, _ = schedule.claim()
    assert schedule.due_ns(early) == pytest.approx(0.1 * SECOND)
    schedule.pause(now_ns=int(0.05 * SECOND))
    assert schedule.epoch != epoch  # its user sees the pause and drops it: not owed
    schedule.unclaim(early, epoch)  # a void claim returned is not owed either
    schedule.resume(10.0, now_ns=SECOND)
    assert schedule.owed_at(int(1.05 * SECOND))[0] == 1  # only the arrival due at the resume instant


def test_a_rate_change_while_paused_is_taken_up_at_the_resume():
    schedule = ArrivalSchedule(rate=10.0, start_ns=0)
    schedule.pause(now_ns=SECOND)
    schedule.set_rate(100.0, now_ns=2 * SECOND)
    schedule.resume(schedule.rate, now_ns=3 * SECOND)
    assert schedule.rate == 100.0
    first, second = due(schedule), due(schedule)
    assert second - first == pytest.approx(0.01 * SECOND)
