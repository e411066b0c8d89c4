"""`precompute`: Redis holds exactly what the serving query returns; its figures; bad Redis input is one line."""

from __future__ import annotations

import json
import sqlite3

import pytest
import redis

from mlstress_tui.cli import main
from mlstress_tui.pipeline.feature_query import FEATURE_QUERY, fetch_features
from mlstress_tui.pipeline.feature_store import KEY_PREFIX, META_KEY, decode, user_key
from postgres_fixtures import pg_dsn, pg_small  # noqa: F401  (fixtures)
from redis_fixtures import redis_url  # noqa: F401  (fixture)

SECRET = "s3cret-Redis-PW"


def edge_users(db) -> dict[str, list[str]]:
    """The users a feature pipeline gets wrong first: the heaviest, those without events, those with NULL fields."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        heaviest = [row[0] for row in connection.execute(
            "SELECT user_id FROM mlstress_user_stats ORDER BY event_count DESC LIMIT 10")]
        empty = [row[0] for row in connection.execute(
            "SELECT user_id FROM mlstress_user_stats WHERE event_count = 0 LIMIT 10")]
        nulls = [row[0] for row in connection.execute(
            "SELECT user_id FROM users WHERE signup_date IS NULL OR segment IS NULL OR country IS NULL "
            "OR device_type IS NULL LIMIT 10")]
    return {"heaviest": heaviest, "empty": empty, "nulls": nulls}


def cached(url: str, user_id: str) -> dict:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        return decode(client.hgetall(user_key(user_id)))
    finally:
        client.close()


@pytest.mark.slow
def test_redis_holds_what_the_serving_query_returns_for_every_user(small_db, redis_url, tmp_path, capsys):
    assert main(["precompute", "--db", str(small_db), "--redis", redis_url, "--out", str(tmp_path)]) == 0
    groups = edge_users(small_db)
    assert all(groups.values()), groups  # each kind of user is there to compare
    connection = sqlite3.connect(f"file:{small_db}?mode=ro", uri=True)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        ids = [row[0] for row in connection.execute("SELECT user_id FROM users")]
        assert len(ids) == 2000 and client.dbsize() == 2000 + 1  # one hash per user, and the meta key
        for user_id in ids:
            assert decode(client.hgetall(user_key(user_id))) == fetch_features(connection, FEATURE_QUERY, user_id)
        empty = decode(client.hgetall(user_key(groups["empty"][0])))
        assert empty["total_events"] == 0 and empty["mean_session_duration_s"] is None
        assert any(value is None for user in groups["nulls"] for key, value in cached(redis_url, user).items()
                   if key in ("segment", "country", "device_type", "account_age_days"))
    finally:
        connection.close()
        client.close()
    document = json.loads((tmp_path / "precompute.json").read_text())
    assert document["users"] == 2000 and document["selection"] == {"above": 0}
    assert "precomputed 2,000 users" in capsys.readouterr().out


def test_above_writes_exactly_the_users_with_that_many_events_and_says_its_cost(small_db, redis_url, tmp_path,
                                                                                 capsys):
    with sqlite3.connect(f"file:{small_db}?mode=ro", uri=True) as connection:
        expected = {row[0] for row in connection.execute(
            "SELECT user_id FROM mlstress_user_stats WHERE event_count >= 60")}
    assert 0 < len(expected) < 2000
    assert main(["precompute", "--db", str(small_db), "--redis", redis_url, "--above", "60",
                 "--out", str(tmp_path)]) == 0
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        written = {key.removeprefix(KEY_PREFIX) for key in client.scan_iter(f"{KEY_PREFIX}*")}
        meta = client.hgetall(META_KEY)
    finally:
        client.close()
    assert written == expected
    assert meta["users"] == str(len(expected)) and json.loads(meta["selection"]) == {"above": 60}
    document = json.loads((tmp_path / "precompute.json").read_text())
    assert document["schema"] == "mlstress.precompute/1" and document["users"] == len(expected)
    assert document["replaced"] == 0 and document["seconds"] > 0 and document["users_per_s"] > 0
    memory = document["memory"]
    assert memory["used_after_bytes"] - memory["used_before_bytes"] == memory["delta_bytes"]
    assert memory["bytes_per_user"] == pytest.approx(memory["keys_bytes"] / len(expected), abs=0.1)
    assert memory["bytes_per_user"] > 100
    out = capsys.readouterr().out
    assert f"precomputed {len(expected):,} users" in out and "users/s" in out and "B per user" in out
    assert "used_memory" in out
    # Again: every key is replaced, and the line says why the memory delta is then near nothing.
    assert main(["precompute", "--db", str(small_db), "--redis", redis_url, "--above", "60",
                 "--out", str(tmp_path / "again")]) == 0
    assert json.loads((tmp_path / "again" / "precompute.json").read_text())["replaced"] == len(expected)
    assert "replaced" in capsys.readouterr().out


def test_a_users_file_writes_those_users_and_counts_ids_the_database_does_not_hold(small_db, redis_url, tmp_path):
    groups = edge_users(small_db)
    chosen = groups["heaviest"][:3] + groups["empty"][:3] + groups["nulls"][:3]
    users_file = tmp_path / "users.txt"
    users_file.write_text("# heavy, empty and NULL users\n" + "\n".join(chosen) + "\nNOUSER000001\n\n")
    assert main(["precompute", "--db", str(small_db), "--redis", redis_url, "--users", str(users_file),
                 "--out", str(tmp_path / "out")]) == 0
    document = json.loads((tmp_path / "out" / "precompute.json").read_text())
    assert document["users"] == len(set(chosen)) and document["not_found_ids"] == ["NOUSER000001"]
    with sqlite3.connect(f"file:{small_db}?mode=ro", uri=True) as connection:
        for user_id in chosen:
            assert cached(redis_url, user_id) == fetch_features(connection, FEATURE_QUERY, user_id)


@pytest.mark.slow
def test_redis_holds_what_the_postgres_serving_query_returns(small_db, pg_small, redis_url, tmp_path):
    import psycopg

    from mlstress_tui.pipeline.postgres_features import fetch_features as fetch_pg

    chosen = [user for group in edge_users(small_db).values() for user in group]
    (tmp_path / "users.txt").write_text("\n".join(chosen))
    assert main(["precompute", "--dsn", pg_small, "--redis", redis_url, "--users", str(tmp_path / "users.txt"),
                 "--out", str(tmp_path / "out")]) == 0
    with psycopg.connect(pg_small) as connection:
        for user_id in chosen:
            assert cached(redis_url, user_id) == fetch_pg(connection, user_id)


@pytest.mark.parametrize("url, fragment", [
    (f"redis://:{SECRET}@127.0.0.1:1/13", "cannot reach Redis at redis 127.0.0.1:1/13"),
    (f"redis://nobody:{SECRET}@127.0.0.1:6379/13", "cannot reach Redis at redis nobody@127.0.0.1:6379/13"),
    (f"redis://:{SECRET}@127.0.0.1:port/13", "is not a Redis URL"),
    (f"redis://:{SECRET}@127.0.0.1:6379/thirteen", "not a number"),
    (f"http://:{SECRET}@127.0.0.1:6379/13", "is not a Redis URL"),
    (f"redis://127.0.0.1:6379/13?password={SECRET}&db=x", "not a number"),
])
def test_bad_or_unreachable_redis_is_one_line_exit_2_without_the_password(small_db, redis_url, tmp_path, capsys,
                                                                           url, fragment):
    code = main(["precompute", "--db", str(small_db), "--redis", url, "--out", str(tmp_path)])
    printed = capsys.readouterr()
    assert code == 2 and fragment in printed.err and len(printed.err.strip().splitlines()) == 1, printed.err
    assert SECRET not in printed.out + printed.err
    assert not (tmp_path / "precompute.json").exists()


def test_an_unreadable_users_file_is_one_line(small_db, redis_url, tmp_path, capsys):
    assert main(["precompute", "--db", str(small_db), "--redis", redis_url, "--users", str(tmp_path / "none.txt"),
                 "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "cannot read --users" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("url", [
    f"redis://:{SECRET}@127.0.0.1:1/0",
    f"redis://user:{SECRET}@@127.0.0.1:1/0",
    f"redis://user:{SECRET}/x@127.0.0.1:1/0",
    f"redis://user:{SECRET}@127.0.0.1:bad/0",
    f"rediss://:{SECRET.replace('-', '%2D')}@127.0.0.1:1/0",
    f"unix://user:{SECRET}@/tmp/no-such-redis.sock?db=1",
    f"redis://127.0.0.1:1/0?password={SECRET}",
])
def test_no_message_built_from_a_redis_url_holds_its_password(url, capsys):
    from mlstress_tui.redis_url import connect_checked, scrub
    from mlstress_tui.errors import UsageError

    with pytest.raises(UsageError) as error:
        connect_checked(url, "--redis", timeout_s=1.0)
    assert SECRET not in str(error.value) and "S3CRET" not in str(error.value).upper().replace("***", "")
    assert SECRET not in scrub(f"failed: {url}", url)
    assert main(["precompute", "--redis", url, "--db", "/nonexistent.sqlite"]) == 2
    assert SECRET not in capsys.readouterr().err
