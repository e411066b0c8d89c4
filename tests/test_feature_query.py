"""The feature query's semantics on hand-made rows, and the SQLite target on a generated database."""

from __future__ import annotations

import sqlite3
import time

import pytest

from mlstress_tui.errors import UsageError
from mlstress_tui.load.engine import LoadEngine
from mlstress_tui.load.spec import LoadSpec
from mlstress_tui.session import RunSession
from mlstress_tui.load.targets import RequestTimeout
from mlstress_tui.load.targets.sqlite import SQLiteTarget, open_read_only
from mlstress_tui.load.users import UserSampler, UserSource
from mlstress_tui.pipeline.feature_query import FEATURE_QUERY, MissingUser, fetch_features

SCHEMA = """
CREATE TABLE users(user_id TEXT PRIMARY KEY, signup_date TEXT, segment TEXT, country TEXT, device_type TEXT,
                   name TEXT, email TEXT, city TEXT);
CREATE TABLE events(event_id TEXT, user_id TEXT, event_type TEXT, event_timestamp TEXT, item_id TEXT,
                    session_duration_seconds INTEGER, amount REAL);
CREATE INDEX events_user ON events(user_id);
CREATE TABLE mlstress_user_stats(user_id TEXT PRIMARY KEY, event_count INTEGER NOT NULL);
"""


@pytest.fixture
def hand_made(tmp_path):
    path = tmp_path / "hand.sqlite"
    connection = sqlite3.connect(path)
    connection.executescript(SCHEMA)
    connection.executemany("INSERT INTO users VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [
        ("USR00000001", "2025-03-01", "premium", "IN", "mobile", "A", "a@x", "Pune"),
        ("USR00000002", "2026-01-30", "free", "US", None, "B", None, None),
    ])
    connection.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)", [
        # Stored in time order, interleaved, as production appends them.
        ("EVT1", "USR00000001", "view", "2025-12-01 10:00:00", "ITEM000001", 100, 0.0),
        ("EVT2", "USR00000001", "purchase", "2026-02-10 08:30:00", "ITEM000002", 200, 25.5),
        ("EVT3", "USR00000001", "purchase", "2026-02-27 12:00:00", "ITEM000003", 300, 10.0),
        # After the reference date: must not count, must not be "the latest event".
        ("EVT4", "USR00000001", "purchase", "2026-03-05 09:00:00", "ITEM000004", 999, 1000.0),
    ])
    connection.executemany("INSERT INTO mlstress_user_stats VALUES (?, ?)", [("USR00000001", 4), ("USR00000002", 0)])
    connection.commit()
    connection.close()
    return path


def test_features_count_only_events_up_to_the_reference_date(hand_made):
    connection = open_read_only(hand_made)
    features = fetch_features(connection, FEATURE_QUERY, "USR00000001")
    assert features["total_events"] == 3
    assert features["purchases"] == 2
    assert features["total_spend"] == pytest.approx(35.5)
    assert features["mean_session_duration_s"] == pytest.approx(200)
    assert features["events_last_30d"] == 2  # 2026-02-10 and 2026-02-27
    assert features["account_age_days"] == 365
    # Days since the *latest* event before the reference date: 2026-02-27 12:00 -> 1.5 days.
    assert features["days_since_last_event"] == pytest.approx(1.5)
    assert (features["segment"], features["device_type"], features["country"]) == ("premium", "mobile", "IN")


def test_a_user_without_events_gets_zeros_and_explicit_nulls(hand_made):
    features = fetch_features(open_read_only(hand_made), FEATURE_QUERY, "USR00000002")
    assert features["total_events"] == features["purchases"] == features["events_last_30d"] == 0
    assert features["total_spend"] == 0.0
    assert features["mean_session_duration_s"] is None
    assert features["days_since_last_event"] is None
    assert features["device_type"] is None


def test_a_user_that_does_not_exist_is_its_own_error(hand_made):
    with pytest.raises(MissingUser):
        fetch_features(open_read_only(hand_made), FEATURE_QUERY, "USR99999999")


def test_the_database_is_opened_read_only(hand_made):
    connection = open_read_only(hand_made)
    with pytest.raises(sqlite3.OperationalError):
        connection.execute("DELETE FROM users")


def test_a_query_past_its_deadline_is_a_timeout(hand_made):
    target = SQLiteTarget(hand_made, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
                                     "SELECT max(i), :user_id FROM (SELECT i FROM n LIMIT 100000000)").open(5.0)
    slot = target.connect()
    started = time.perf_counter_ns()
    with pytest.raises(RequestTimeout):
        target.request(slot, "USR00000001", started + 20_000_000)
    assert time.perf_counter_ns() - started < 2_000_000_000


def test_sqlite_target_rejects_a_database_without_the_schema(tmp_path):
    path = tmp_path / "other.sqlite"
    sqlite3.connect(path).execute("CREATE TABLE users (user_id)").connection.close()
    with pytest.raises(UsageError, match="lacks table"):
        SQLiteTarget(path).check()


def test_user_mixes_sample_from_user_stats_reproducibly(small_db):
    source = UserSource(db_path=small_db, mix="uniform", seed=3)
    first = [next(stream) for stream in [UserSampler.from_source(source).stream(0, 0)] for _ in range(500)]
    again = [next(stream) for stream in [UserSampler.from_source(source).stream(0, 0)] for _ in range(500)]
    assert first == again
    uniform = UserSampler.from_source(source)
    weighted = UserSampler.from_source(UserSource(db_path=small_db, mix="weighted", seed=3))
    heavy = UserSampler.from_source(UserSource(db_path=small_db, mix="heavy", seed=3))
    mean = {name: sum(count for _, (__, count, ___) in zip(range(4000), sampler.stream(1))) / 4000
            for name, sampler in (("uniform", uniform), ("weighted", weighted), ("heavy", heavy))}
    # Activity weighting favours heavy users; "heavy" keeps only them.
    assert mean["uniform"] * 3 < mean["weighted"]
    assert mean["uniform"] * 3 < mean["heavy"]
    top = sorted(uniform.event_counts.tolist())[-len(heavy.event_counts):]
    assert sorted(heavy.event_counts.tolist()) == top


@pytest.mark.slow
def test_every_request_carries_its_users_event_count(tmp_path, small_db):
    engine = LoadEngine(SQLiteTarget(small_db), LoadSpec(concurrency=2, requests=400),
                        run_dir=tmp_path)
    session = RunSession(engine, run_dir=tmp_path)
    session.start()
    while not session.finished:
        time.sleep(0.05)
    ticks = session.pump()
    summary = session.finish()
    assert summary["requests"] == summary["ok"] == 400
    known = set(UserSampler.from_source(UserSource(db_path=small_db)).event_counts.tolist())
    pairs = [pair for tick in ticks for pair in tick.scatter.tolist()]
    assert len(pairs) >= 200
    assert {int(count) for count, _ in pairs} <= known
    assert all(latency > 0 for _, latency in pairs)
