"""The connection pool: bounded, fair, and honest about waiting."""

import queue
import threading

import pytest

from mlstress_tui.load.pool import SlotPool


def test_free_slots_are_taken_without_waiting():
    pool = SlotPool()
    pool.put("a")
    pool.put("b")
    assert {pool.get(timeout=0), pool.get(timeout=0)} == {"a", "b"}
    with pytest.raises(queue.Empty):
        pool.get(timeout=0.01)


def test_a_returned_slot_goes_to_the_longest_waiter():
    pool = SlotPool()
    order = []
    started = []

    def wait(name):
        started.append(name)
        order.append((name, pool.get(timeout=5)))

    threads = []
    for name in ("first", "second"):
        thread = threading.Thread(target=wait, args=(name,))
        thread.start()
        while len(pool._waiters) < len(threads) + 1:
            pass
        threads.append(thread)
    pool.put("slot-1")
    # The thread that returned the slot cannot take it back ahead of the waiters.
    with pytest.raises(queue.Empty):
        pool.get(timeout=0.01)
    pool.put("slot-2")
    for thread in threads:
        thread.join(5)
    assert order == [("first", "slot-1"), ("second", "slot-2")]


def test_a_waiter_that_times_out_leaves_the_queue():
    pool = SlotPool()
    with pytest.raises(queue.Empty):
        pool.get(timeout=0.01)
    assert not pool._waiters
    pool.put("slot")
    assert pool.get(timeout=0) == "slot"
