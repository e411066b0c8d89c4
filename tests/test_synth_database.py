"""A generated database: the reference schema, the mixes, and every realism rule of design.md."""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
from datetime import datetime

import numpy as np
import pytest

from mlstress_tui.errors import UsageError
from mlstress_tui.synth import GenerateParams, GenerateResult, generate_sqlite, generator, read_meta, timeline

USERS, MEAN = 10_000, 20.0


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[GenerateResult, sqlite3.Connection]:
    path = tmp_path_factory.mktemp("synth") / "db.sqlite"
    result = generate_sqlite(GenerateParams(users=USERS, mean_events=MEAN, seed=11), path)
    conn = sqlite3.connect(path)
    yield result, conn
    conn.close()


@pytest.fixture(scope="module")
def conn(generated) -> sqlite3.Connection:
    return generated[1]


def scalar(conn: sqlite3.Connection, sql: str, *params):
    return conn.execute(sql, params).fetchone()[0]


@pytest.mark.slow
def test_schema_and_indexes(conn):
    columns = {
        table: [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
        for table in ("users", "events", "mlstress_meta", "mlstress_user_stats")
    }
    assert columns["users"] == ["user_id", "signup_date", "segment", "country", "device_type", "name", "email", "city"]
    assert columns["events"] == [
        "event_id", "user_id", "event_type", "event_timestamp", "item_id", "session_duration_seconds", "amount",
    ]
    assert columns["mlstress_meta"] == ["key", "value"]
    assert columns["mlstress_user_stats"] == ["user_id", "event_count"]
    indexed = {row[0] for row in conn.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}
    assert any("events(user_id)" in sql for sql in indexed)
    assert any("events(event_timestamp)" in sql for sql in indexed)


def test_formats(conn):
    patterns = {
        "SELECT user_id FROM users": r"USR\d{8}",
        "SELECT signup_date FROM users": r"\d{4}-\d{2}-\d{2}",
        "SELECT event_id FROM events": r"EVT\d{9}",
        "SELECT event_timestamp FROM events": r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}",
        "SELECT item_id FROM events": r"ITEM\d{6}",
    }
    for sql, pattern in patterns.items():
        values = [row[0] for row in conn.execute(sql + " LIMIT 5000")]
        assert all(re.fullmatch(pattern, value) for value in values), sql
    assert scalar(conn, "SELECT min(user_id) FROM users") == "USR00000001"
    assert scalar(conn, "SELECT max(user_id) FROM users") == f"USR{USERS:08d}"
    assert scalar(conn, "SELECT min(item_id) FROM events") >= "ITEM000001"
    assert scalar(conn, "SELECT max(item_id) FROM events") <= "ITEM050000"
    assert scalar(conn, "SELECT min(signup_date) FROM users") >= "2023-01-01"
    assert scalar(conn, "SELECT max(signup_date) FROM users") <= "2026-01-01"
    types = set(conn.execute("SELECT DISTINCT typeof(session_duration_seconds), typeof(amount) FROM events"))
    assert types == {("integer", "real")}


@pytest.mark.slow
def test_mean_events_per_user_is_the_one_asked_for(generated, conn):
    result, _ = generated
    events = scalar(conn, "SELECT count(*) FROM events")
    assert events == result.events
    assert abs(events / USERS - MEAN) <= 0.03 * MEAN


def test_heaviest_users_reach_ten_times_the_mean(conn):
    counts = np.array([row[0] for row in conn.execute("SELECT count(*) FROM events GROUP BY user_id")])
    heaviest = np.sort(counts)[-USERS // 1000 :]
    assert heaviest.min() >= 10 * MEAN


@pytest.mark.slow
def test_user_stats_match_events_one_row_per_user_in_user_order(conn):
    stats = conn.execute("SELECT rowid, user_id, event_count FROM mlstress_user_stats ORDER BY rowid").fetchall()
    assert [row[0] for row in stats] == list(range(1, USERS + 1))
    assert [row[1] for row in stats] == [f"USR{n:08d}" for n in range(1, USERS + 1)]
    actual = dict(conn.execute("SELECT user_id, count(*) FROM events GROUP BY user_id"))
    assert all(count == actual.get(user_id, 0) for _, user_id, count in stats)


@pytest.mark.slow
def test_no_event_before_signup_and_none_after_the_reference_date(conn):
    before_signup = scalar(
        conn,
        "SELECT count(*) FROM events e JOIN users u USING (user_id) "
        "WHERE julianday(e.event_timestamp) < julianday(u.signup_date)",
    )
    assert before_signup == 0
    assert scalar(conn, "SELECT count(*) FROM events WHERE event_timestamp > '2026-03-01'") == 0
    assert scalar(conn, "SELECT count(*) FROM events WHERE event_timestamp <= '2026-03-01'") == scalar(
        conn, "SELECT count(*) FROM events"
    )
    assert scalar(conn, "SELECT count(*) FROM events WHERE julianday(event_timestamp) IS NULL") == 0


def test_amount_is_positive_on_purchases_only(conn):
    assert scalar(conn, "SELECT count(*) FROM events WHERE event_type = 'purchase' AND NOT amount > 0") == 0
    assert scalar(conn, "SELECT count(*) FROM events WHERE event_type != 'purchase' AND amount != 0") == 0
    assert scalar(conn, "SELECT count(*) FROM events WHERE event_type = 'purchase'") > 0


@pytest.mark.slow
def test_events_are_stored_in_timestamp_order_users_scattered(conn):
    out_of_order = scalar(
        conn,
        "SELECT count(*) FROM events a JOIN events b ON b.rowid = a.rowid + 1 "
        "WHERE b.event_timestamp < a.event_timestamp",
    )
    assert out_of_order == 0
    ids = [row[0] for row in conn.execute("SELECT event_id FROM events ORDER BY rowid")]
    assert ids == sorted(ids)
    # Grouped by user, nearly every row would follow one of the same user.
    same_user_neighbours = scalar(
        conn, "SELECT count(*) FROM events a JOIN events b ON b.rowid = a.rowid + 1 WHERE a.user_id = b.user_id"
    )
    assert same_user_neighbours / scalar(conn, "SELECT count(*) FROM events") < 0.05
    heaviest = scalar(conn, "SELECT user_id FROM mlstress_user_stats ORDER BY event_count DESC LIMIT 1")
    first, last, total = conn.execute(
        "SELECT min(rowid), max(rowid), (SELECT count(*) FROM events) FROM events WHERE user_id = ?", (heaviest,)
    ).fetchone()
    assert (last - first) / total > 0.3


@pytest.mark.slow
def test_timestamps_have_a_time_of_day(conn):
    hours = {row[0] for row in conn.execute("SELECT DISTINCT substr(event_timestamp, 12, 2) FROM events")}
    assert hours == {f"{hour:02d}" for hour in range(24)}
    midnight = scalar(conn, "SELECT count(*) FROM events WHERE event_timestamp LIKE '% 00:00:00'")
    assert midnight / scalar(conn, "SELECT count(*) FROM events") < 0.001


@pytest.mark.slow
def test_item_popularity_is_skewed(conn):
    per_item = sorted((row[0] for row in conn.execute("SELECT count(*) FROM events GROUP BY item_id")), reverse=True)
    assert sum(per_item[:500]) / sum(per_item) > 0.4


def test_mixes_match_design(conn):
    def shares(sql):
        rows = conn.execute(sql).fetchall()
        total = sum(count for _, count in rows)
        return {value: count / total for value, count in rows}

    segment = shares("SELECT segment, count(*) FROM users GROUP BY 1")
    assert segment == pytest.approx({"free": 0.55, "standard": 0.35, "premium": 0.10}, abs=0.02)
    country = shares("SELECT country, count(*) FROM users GROUP BY 1")
    assert country == pytest.approx({"IN": 0.40, "US": 0.25, "GB": 0.15, "DE": 0.10, "SG": 0.10}, abs=0.02)
    device = shares("SELECT device_type, count(*) FROM users WHERE device_type IS NOT NULL GROUP BY 1")
    assert device == pytest.approx({"mobile": 0.65, "desktop": 0.28, "tablet": 0.07}, abs=0.02)
    kinds = shares("SELECT event_type, count(*) FROM events GROUP BY 1")
    expected = {"view": 0.45, "click": 0.25, "purchase": 0.10, "add_to_cart": 0.12, "search": 0.08}
    assert kinds == pytest.approx(expected, abs=0.01)
    mean_session = scalar(conn, "SELECT avg(session_duration_seconds) FROM events")
    assert mean_session == pytest.approx(180, rel=0.03)


def test_edge_cases_are_in_the_data_and_in_meta(generated, conn):
    result, _ = generated
    meta = read_meta(conn)
    edge = meta["edge_cases"]
    assert edge == result.edge_cases
    without_events = scalar(
        conn, "SELECT count(*) FROM users u LEFT JOIN events e USING (user_id) WHERE e.user_id IS NULL"
    )
    assert without_events == edge["zero_event_users"] > 0
    for column in ("email", "city", "device_type"):
        assert scalar(conn, f"SELECT count(*) FROM users WHERE {column} IS NULL") == edge["null_fields"][column] > 0
    for column in ("user_id", "signup_date", "segment", "country", "name"):
        assert scalar(conn, f"SELECT count(*) FROM users WHERE {column} IS NULL") == 0
    extremes = edge["extreme_user_events"]
    assert len(extremes) == edge["extreme_users"] >= 1
    stats = dict(conn.execute("SELECT user_id, event_count FROM mlstress_user_stats"))
    assert all(stats[user_id] == count for user_id, count in extremes.items())
    regular = [count for user_id, count in stats.items() if user_id not in extremes]
    assert min(extremes.values()) > np.percentile(regular, 99.9)
    assert min(extremes.values()) >= 50 * MEAN


def test_meta_holds_the_generation_parameters(generated, conn):
    result, _ = generated
    meta = read_meta(conn)
    assert meta["users"] == USERS
    assert meta["events"] == result.events
    assert meta["seed"] == 11
    assert meta["mean_events"] == MEAN
    assert meta["max_events"] == 1000 * MEAN
    assert meta["locale"] == "en_IN"
    assert meta["generator_version"]
    assert datetime.fromisoformat(meta["created_at"]).utcoffset().total_seconds() == 0
    assert meta["events_per_user"] == result.events_per_user
    assert set(result.events_per_user) == {"mean", "p50", "p99", "max"}
    raw = dict(conn.execute("SELECT key, value FROM mlstress_meta"))
    assert raw["seed"] == "11"


def checksum(path, unpinned: tuple[str, ...] = ("created_at",)) -> str:
    """Every row in table order and the metadata but the `unpinned` keys."""
    digest = hashlib.sha256()
    conn = sqlite3.connect(path)
    for table in ("users", "events", "mlstress_user_stats"):
        for row in conn.execute(f"SELECT * FROM {table} ORDER BY rowid"):
            digest.update(repr(row).encode())
    meta = read_meta(conn)
    conn.close()
    for key in unpinned:
        meta.pop(key)
    digest.update(repr(sorted(meta.items())).encode())
    return digest.hexdigest()


@pytest.mark.slow
def test_same_seed_same_database_different_seed_different(tmp_path):
    paths = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        paths[name] = tmp_path / f"{name}.sqlite"
        generate_sqlite(GenerateParams(users=1_500, mean_events=10, seed=seed), paths[name])
    assert checksum(paths["a"]) == checksum(paths["b"])
    assert checksum(paths["a"]) != checksum(paths["c"])


# Seed 7, 3,000 users at a mean of 50 (150,000 events: two timeline windows, two event draws), as written by
# the generator before any of its per-user passes were chunked; the library versions are left out of the digest.
KNOWN_DIGEST = "045ec3d11e76ac754dc9cd92e0838c5cbc347b6d206d157097147b4cc5238552"


@pytest.mark.slow
@pytest.mark.parametrize("chunked", [False, True], ids=["as-shipped", "small-chunks"])
def test_the_rows_of_a_seed_do_not_depend_on_how_the_work_is_chunked(tmp_path, monkeypatch, chunked):
    if chunked:
        # Chunk and batch sizes that bound memory, not what a seed means: users 1,000 at a time through the
        # timeline, events rendered 7,000 at a time, so every chunk boundary falls inside a window and a draw.
        monkeypatch.setattr(timeline, "USER_CHUNK", 1_000)
        monkeypatch.setattr(generator, "EVENT_BATCH", 7_000)
    path = tmp_path / "db.sqlite"
    generate_sqlite(GenerateParams(users=3_000, mean_events=50, seed=7), path)
    assert checksum(path, unpinned=("created_at", "faker_version", "numpy_version")) == KNOWN_DIGEST


def test_no_edge_cases(tmp_path):
    path = tmp_path / "plain.sqlite"
    result = generate_sqlite(GenerateParams(users=2_000, mean_events=10, edge_cases=False), path)
    conn = sqlite3.connect(path)
    try:
        assert scalar(conn, "SELECT min(event_count) FROM mlstress_user_stats") >= 1
        for column in ("email", "city", "device_type"):
            assert scalar(conn, f"SELECT count(*) FROM users WHERE {column} IS NULL") == 0
        assert read_meta(conn)["edge_cases"] == result.edge_cases
    finally:
        conn.close()
    assert result.edge_cases["enabled"] is False
    assert result.edge_cases["zero_event_users"] == result.edge_cases["extreme_users"] == 0


def test_interrupted_generation_leaves_nothing_behind(tmp_path):
    out = tmp_path / "db.sqlite"

    def interrupt(done, total):
        if done > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_sqlite(GenerateParams(users=3_000, mean_events=50), out, progress=interrupt)
    assert list(tmp_path.iterdir()) == []
    assert not any(thread.name == "synth-prefetch" for thread in threading.enumerate())


@pytest.mark.slow
def test_interrupt_inside_a_long_sqlite_statement_leaves_nothing_behind(tmp_path, monkeypatch):
    """Ctrl-C while SQLite runs (say, building an index) aborts the statement and cleans up too."""
    from mlstress_tui.synth import generator

    def ctrl_c() -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(generator, "_let_python_run", ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        generate_sqlite(GenerateParams(users=2_000, mean_events=10), tmp_path / "db.sqlite")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_progress_reports_every_event(tmp_path):
    calls = []
    result = generate_sqlite(
        GenerateParams(users=2_000, mean_events=100), tmp_path / "db.sqlite", progress=lambda *call: calls.append(call)
    )
    assert calls[0] == (0, result.events)
    assert calls[-1] == (result.events, result.events)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


@pytest.mark.parametrize(
    "params, words",
    [
        (GenerateParams(users=0), ["--users", "0"]),
        (GenerateParams(users=-3), ["--users"]),
        (GenerateParams(mean_events=0.5), ["--mean-events", "0.5"]),
        (GenerateParams(mean_events=float("nan")), ["--mean-events"]),
        (GenerateParams(max_events=10), ["--max-events", "10", "below"]),
        (GenerateParams(max_events=100), ["--max-events", "100", "135"]),
        (GenerateParams(seed=-1), ["--seed"]),
        (GenerateParams(locale="xx_XX"), ["--locale", "xx_XX"]),
        (GenerateParams(users=50_000_000, mean_events=45), ["events"]),
    ],
)
def test_bad_parameters_are_usage_errors(params, words):
    with pytest.raises(UsageError) as raised:
        params.validate()
    message = str(raised.value)
    assert "\n" not in message
    assert all(word in message for word in words), message


def test_read_meta_of_a_foreign_database_is_empty():
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE users(user_id TEXT)")
    assert read_meta(conn) == {}
