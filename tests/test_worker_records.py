"""A worker's records and its tick fold, in process: outcomes as integer rows, taken whole while users append."""

import threading

import numpy as np

from mlstress_tui.load.worker.records import FIELDS, NO_LABEL, Records
from mlstress_tui.load.worker.tick_builder import TickBuilder
from mlstress_tui.results.interval_stats import IntervalStats
from mlstress_tui.results.kinds import CLOSED, OPEN


def test_labels_code_each_name_once_and_none_as_zero():
    labels = Records().labels
    assert labels.code(None) == NO_LABEL
    timeout = labels.code("timeout")
    assert labels.code("pool_timeout") != timeout
    assert labels.code("timeout") == timeout
    assert labels.names[timeout] == "timeout"


def test_labels_from_many_threads_agree():
    labels = Records().labels
    names = [f"kind_{number}" for number in range(50)]
    seen: list[dict[str, int]] = []

    def learn() -> None:
        seen.append({name: labels.code(name) for name in names})

    threads = [threading.Thread(target=learn) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(codes == seen[0] for codes in seen)
    assert sorted(seen[0].values()) == list(range(1, 51))
    assert all(labels.names[code] == name for name, code in seen[0].items())


def test_take_while_users_append_loses_nothing_and_takes_nothing_twice():
    records = Records()
    threads, rows_each = 8, 20_000
    done = threading.Event()
    taken: list[np.ndarray] = []

    def user(number: int) -> None:
        for serial in range(rows_each):
            # Every column of a row derives from (user, serial): a torn row would not.
            records.record((number, serial, number * 3, serial * 2, 0, number, 0))

    def ticks() -> None:
        while not done.is_set():
            taken.append(records.take_outcomes())
        taken.append(records.take_outcomes())

    taker = threading.Thread(target=ticks)
    taker.start()
    users = [threading.Thread(target=user, args=(number,)) for number in range(threads)]
    for thread in users:
        thread.start()
    for thread in users:
        thread.join()
    done.set()
    taker.join()
    rows = np.concatenate(taken)
    assert rows.shape == (threads * rows_each, FIELDS)
    assert (rows[:, 2] == rows[:, 0] * 3).all() and (rows[:, 3] == rows[:, 1] * 2).all()
    for number in range(threads):
        mine = rows[rows[:, 0] == number, 1]
        assert (mine == np.arange(rows_each)).all()  # each user's rows once, in order
    assert len(records.take_outcomes()) == 0


def test_a_tick_folds_errors_paths_strata_and_edge_classes():
    records = Records()
    code = records.labels.code
    builder = TickBuilder(records, worker_id=0, seed=1, scatter_per_tick=3, strata_edges=(0, 10, 100),
                          edge_mix=True)
    ms = 1_000_000
    rows = [  # latency, service, wait, events, kind, group, path
        (2 * ms, 2 * ms, 0, 5, NO_LABEL, 0, code("db")),
        (3 * ms, 2 * ms, ms, 50, NO_LABEL, 1, code("cache")),
        (9 * ms, 9 * ms, 0, 500, code("timeout"), 1, code("db")),
        (4 * ms, 0, 4 * ms, 500, code("pool_timeout"), 2, NO_LABEL),
        (5 * ms, 1 * ms, 4 * ms, 7, NO_LABEL, -1, code("db")),
    ]
    for row in rows:
        records.record(row)
    records.failures.append(("timeout", "no answer 0.01 s after the send"))
    tick = builder.build(IntervalStats(index=0, t_start=0.0, t_end=0.25, mode=OPEN))
    assert (tick.requests, tick.ok) == (5, 3)
    assert tick.errors_by_kind == {"timeout": 1, "pool_timeout": 1}
    assert tick.last_error == {"timeout": "no answer 0.01 s after the send"}
    assert tick.latency.count == 5 and tick.latency.max_ns == 9 * ms
    assert tick.late_starts == 2  # started more than 1 ms after its due time, in the open loop
    assert tick.scatter.shape == (3, 2)
    assert {key: group.requests for key, group in tick.strata.items()} == {0: 2, 1: 1, 2: 2}
    assert tick.strata[2].errors_by_kind == {"timeout": 1, "pool_timeout": 1}
    assert tick.strata[2].failed_latency.count == 2 and tick.strata[0].failed_latency.count == 0
    assert {key: group.requests for key, group in tick.edge_classes.items()} == {0: 1, 1: 2, 2: 1}
    assert set(tick.paths) == {"db", "cache"}
    assert tick.paths["db"].requests == 3 and tick.paths["db"].errors_by_kind == {"timeout": 1}
    assert tick.paths["cache"].pool_wait.max_ns == ms


def test_a_tick_without_requests_or_paths_stays_empty():
    records = Records()
    builder = TickBuilder(records, worker_id=0, seed=1, scatter_per_tick=10, strata_edges=(), edge_mix=False)
    tick = builder.build(IntervalStats(index=0, t_start=0.0, t_end=0.25, mode=CLOSED))
    assert tick.requests == 0 and tick.errors_by_kind == {} and tick.paths == {}
    records.record((1_000, 1_000, 0, 0, NO_LABEL, -1, NO_LABEL))
    tick = builder.build(IntervalStats(index=1, t_start=0.25, t_end=0.5, mode=CLOSED))
    assert (tick.requests, tick.ok, tick.paths, tick.late_starts) == (1, 1, {}, 0)
