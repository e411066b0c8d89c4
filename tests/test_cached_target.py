"""`--cache`: the composite target's paths, its pool, its input checks, and a Redis that goes away mid-run."""

from __future__ import annotations

import json
import sqlite3
import threading
import time

import pytest
import redis

from mlstress_tui.cli import main
from mlstress_tui.load.targets import LiveTarget, RequestTimeout
from mlstress_tui.load.targets.cached import (CACHE, CACHE_DOWN_FALLBACK, CACHE_MISS, DB, CachedSlots, CachedTarget,
                                              CacheDown, LiveCached)
from mlstress_tui.load.targets.sqlite import SQLiteTarget
from mlstress_tui.pipeline.feature_store import CorruptCacheEntry, encode, user_key
from redis_fixtures import private_redis, redis_url  # noqa: F401  (fixture)

SECRET = "s3cret-Cache-PW"


class FakeDatabase(LiveTarget):
    """Records which users reached the database."""

    def __init__(self) -> None:
        self.served: list[str] = []

    def connect(self) -> str:
        return "connection"

    def request(self, connection, user_id, deadline_ns):
        assert connection == "connection"
        self.served.append(user_id)


class FakeRedis:
    """A hash per cached user; `down` raises what redis-py raises when the server is gone, `slow` a socket timeout."""

    def __init__(self, cached: dict[str, dict]) -> None:
        self.hashes = {user_key(user): encode(features) for user, features in cached.items()}
        self.down = self.slow = False

    def hgetall(self, key):
        if self.down:
            raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        if self.slow:
            raise redis.TimeoutError("Timeout reading from socket")
        return dict(self.hashes.get(key, {}))


def live(fake: FakeRedis, *, fallback: bool) -> tuple[LiveCached, FakeDatabase]:
    database = FakeDatabase()
    return LiveCached(database, fake, frozenset({"HEAVY1", "HEAVY2"}), fallback=fallback,
                      url=f"redis://:{SECRET}@127.0.0.1:6379/13"), database


def test_the_composite_names_the_path_each_request_took():
    fake = FakeRedis({"HEAVY1": {"user_id": "HEAVY1", "total_events": 900, "segment": None}})
    target, database = live(fake, fallback=False)
    assert target.request("connection", "LIGHT", 0) == DB
    assert target.request("connection", "HEAVY1", 0) == CACHE
    assert target.request("connection", "HEAVY2", 0) == CACHE_MISS  # heavy, but not precomputed
    assert database.served == ["LIGHT", "HEAVY2"]
    fake.down = True
    with pytest.raises(CacheDown) as down:
        target.request("connection", "HEAVY1", 0)
    assert down.value.error_kind == "cache_down" and "127.0.0.1:6379/13" in str(down.value)
    assert SECRET not in str(down.value)
    assert target.request("connection", "LIGHT", 0) == DB  # the database path does not need Redis
    assert database.served == ["LIGHT", "HEAVY2", "LIGHT"]
    fake.down, fake.slow = False, True
    with pytest.raises(RequestTimeout):
        target.request("connection", "HEAVY1", 0)


def test_with_fallback_a_redis_that_does_not_answer_sends_the_request_to_the_database():
    fake = FakeRedis({"HEAVY1": {"user_id": "HEAVY1"}})
    target, database = live(fake, fallback=True)
    fake.down = True
    assert target.request("connection", "HEAVY1", 0) == CACHE_DOWN_FALLBACK
    assert target.request("connection", "LIGHT", 0) == DB
    assert database.served == ["HEAVY1", "LIGHT"]
    fake.down = False
    assert target.request("connection", "HEAVY1", 0) == CACHE


class FailingDatabase(FakeDatabase):
    def request(self, connection, user_id, deadline_ns):
        raise LookupError(f"no features for {user_id}")


def test_a_failed_request_carries_the_path_it_took():
    fake = FakeRedis({"HEAVY1": {"user_id": "HEAVY1"}})
    target = LiveCached(FailingDatabase(), fake, frozenset({"HEAVY1", "HEAVY2"}), fallback=True,
                        url="redis://127.0.0.1:6379/13")
    paths = []
    for user in ("LIGHT", "HEAVY2"):
        with pytest.raises(LookupError) as error:
            target.request("connection", user, 0)
        paths.append(error.value.request_path)
    fake.down = True
    with pytest.raises(LookupError) as error:
        target.request("connection", "HEAVY1", 0)
    paths.append(error.value.request_path)
    assert paths == [DB, CACHE_MISS, CACHE_DOWN_FALLBACK]
    target.fallback = False
    with pytest.raises(CacheDown) as down:
        target.request("connection", "HEAVY1", 0)
    fake.down, fake.slow = False, True
    with pytest.raises(RequestTimeout) as slow:
        target.request("connection", "HEAVY1", 0)
    assert (down.value.request_path, slow.value.request_path) == (CACHE, CACHE)


def test_a_hash_that_is_not_what_precompute_writes_is_an_error_of_its_own_kind():
    fake = FakeRedis({})
    fake.hashes[user_key("HEAVY1")] = {"total_events": "not json"}
    target, _ = live(fake, fallback=True)
    with pytest.raises(CorruptCacheEntry) as error:
        target.request("connection", "HEAVY1", 0)
    assert error.value.error_kind == "bad_cache_entry" and error.value.request_path == CACHE


class FakeSlots:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __getattr__(self, name):
        return lambda *args: self.calls.append((name, *args))


def test_the_redis_pool_is_sized_like_the_database_pool_stuck_calls_included():
    pool = redis.ConnectionPool(max_connections=1)
    inner = FakeSlots()
    slots = CachedSlots(inner, pool)
    slots.resize(8)
    assert pool.max_connections == 8
    slots.replace("stuck")  # a fresh slot for a call stuck past its deadline
    assert pool.max_connections == 9
    slots.retire("stuck")
    slots.resize(3)
    assert pool.max_connections == 3
    assert [call[0] for call in inner.calls] == ["resize", "replace", "retire", "resize"]


def heavy_ids(db, at_least: int) -> list[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        return [row[0] for row in connection.execute(
            "SELECT user_id FROM mlstress_user_stats WHERE event_count >= ? ORDER BY user_id", (at_least,))]


def test_opened_in_a_worker_it_routes_by_the_users_event_counts(small_db, redis_url, tmp_path):
    heavy = heavy_ids(small_db, 60)
    assert len(heavy) >= 3
    users_file = tmp_path / "users.txt"
    users_file.write_text("\n".join(heavy[1:]))  # the first heavy user is left out: a miss
    assert main(["precompute", "--db", str(small_db), "--redis", redis_url, "--users", str(users_file),
                 "--out", str(tmp_path)]) == 0
    spec = CachedTarget(inner=SQLiteTarget(db_path=small_db), url=redis_url, at_least=60)
    spec.check()
    target = spec.open(5.0)
    pool = target.make_pool()
    pool.resize(2)
    connection = pool.get(1.0)
    try:
        with sqlite3.connect(f"file:{small_db}?mode=ro", uri=True) as stats:
            light = stats.execute("SELECT user_id FROM mlstress_user_stats WHERE event_count < 60").fetchone()[0]
        assert target.request(connection, heavy[1], time.perf_counter_ns() + 10**9) == CACHE
        assert target.request(connection, heavy[0], time.perf_counter_ns() + 10**9) == CACHE_MISS
        assert target.request(connection, light, time.perf_counter_ns() + 10**9) == DB
        assert target.redis_pool.max_connections == 2
    finally:
        pool.put(connection)
        pool.close_idle(set())
    assert spec.describe()["kind"] == "sqlite" and spec.describe()["cache"]["at_least_events"] == 60


@pytest.mark.parametrize("extra, fragment", [
    (["--cache-above", "10"], "--cache-above and --cache-fallback apply with --cache URL only"),
    (["--cache", "redis://127.0.0.1:6379/13"], "--cache needs --cache-above N"),
    (["--cache", f"redis://:{SECRET}@127.0.0.1:1/13", "--cache-above", "10"], "cannot reach Redis at redis 127.0.0.1:1/13"),
    (["--cache", f"redis://:{SECRET}@127.0.0.1:x/13", "--cache-above", "10"], "--cache 'redis://:***@127.0.0.1:x/13' is not a Redis URL"),
    (["--cache", "REDIS_URL", "--cache-above", "10"], "holds no features from 'mlstress-tui precompute'"),
])
def test_bad_cache_options_are_one_line_and_exit_2(small_db, redis_url, tmp_path, capsys, extra, fragment):
    extra = [redis_url if value == "REDIS_URL" else value for value in extra]
    code = main(["run", "--headless", "--db", str(small_db), "--requests", "10", *extra, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err
    assert SECRET not in err


def test_a_target_without_users_cannot_be_routed(redis_url, tmp_path, capsys):
    client = redis.Redis.from_url(redis_url)
    client.hset("mlstress:precompute", mapping={"users": 0})
    client.close()
    assert main(["run", "--headless", "--target", "sleep:1ms", "--requests", "10", "--cache", redis_url,
                 "--cache-above", "10", "--out", str(tmp_path)]) == 2
    assert "it needs a users database" in capsys.readouterr().err


def _stop_when_running(process, intervals_path, stopped: threading.Event) -> None:
    """Kill the Redis server once the run has recorded requests (not at a fixed time)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if intervals_path.exists():
            lines = [json.loads(line) for line in intervals_path.read_text().splitlines() if line.strip()]
            if any(line["requests"] > 0 for line in lines):
                process.kill()
                process.wait(10)
                stopped.set()
                return
        time.sleep(0.05)


def _run_while_redis_goes_away(db, tmp_path, *, fallback: bool) -> tuple[int, dict, str, float]:
    with private_redis() as (url, process):
        url = url.replace("redis://", f"redis://:{SECRET}@")  # Redis without a password accepts any
        assert main(["precompute", "--db", str(db), "--redis", url, "--out", str(tmp_path / "pre")]) == 0
        run_dir = tmp_path / "run"
        stopped = threading.Event()
        killer = threading.Thread(target=_stop_when_running,
                                  args=(process, run_dir / "intervals.jsonl", stopped), daemon=True)
        killer.start()
        code = main(["run", "--headless", "--db", str(db), "--cache", url, "--cache-above", "0",
                     "--concurrency", "2", "--duration", "3", "--out", str(run_dir),
                     *(["--cache-fallback"] if fallback else [])])
        killer.join(5)
        assert stopped.is_set(), "the run ended before Redis was stopped"
    summary = json.loads((run_dir / "summary.json").read_text())
    written = "".join(path.read_text(errors="replace") for path in run_dir.iterdir() if path.is_file())
    lines = [json.loads(line) for line in (run_dir / "intervals.jsonl").read_text().splitlines()]
    return code, summary, written, lines


@pytest.mark.slow
def test_redis_stopped_mid_run_is_cache_down_counted_and_said_and_the_run_ends_normally(small_db, tmp_path, capsys):
    code, summary, written, lines = _run_while_redis_goes_away(small_db, tmp_path, fallback=False)
    printed = capsys.readouterr()
    assert code == 0 and summary["ok"] > 0
    assert summary["errors_by_kind"].get("cache_down", 0) > 0 and set(summary["errors_by_kind"]) == {"cache_down"}
    assert summary["requests"] == summary["ok"] + summary["errors"] + summary.get("unfinished", 0)
    assert "cache_down" in printed.out
    # The load went on after Redis went: the last whole second still sent requests, all of them failing.
    assert lines[-1]["requests"] > 0 and lines[-1]["errors"] == lines[-1]["requests"]
    assert SECRET not in written + printed.out + printed.err


@pytest.mark.slow
def test_with_fallback_redis_stopped_mid_run_is_served_by_the_database(small_db, tmp_path, capsys):
    code, summary, written, lines = _run_while_redis_goes_away(small_db, tmp_path, fallback=True)
    printed = capsys.readouterr()
    assert code == 0 and summary["errors"] == 0 and summary["ok"] == summary["requests"] > 0
    assert lines[-1]["requests"] > 0
    assert summary["target"]["cache"] == {"redis": summary["target"]["cache"]["redis"], "at_least_events": 0,
                                          "fallback": True}
    assert SECRET not in written + printed.out + printed.err


@pytest.mark.slow
def test_outliers_behind_the_cache_knows_which_users_the_cache_serves(small_db, redis_url, tmp_path):
    assert main(["precompute", "--db", str(small_db), "--redis", redis_url, "--above", "60",
                 "--out", str(tmp_path / "pre")]) == 0
    assert main(["outliers", "--headless", "--db", str(small_db), "--cache", redis_url, "--cache-above", "60",
                 "--requests-per-stratum", "30", "--threshold-ms", "50", "--workers", "1", "--out", str(tmp_path / "run")]) == 0
    report = json.loads((tmp_path / "run" / "outliers.json").read_text())
    assert report["target"]["cache"]["at_least_events"] == 60
    assert report["fit"]["cached_from_events"] == 60 and report["fit"]["cache_p95_ms"] > 0
    assert report["breach_event_count"] is None
    assert report["action"].startswith("no user breaches p95 50 ms with the cache: users with 60+ events")
