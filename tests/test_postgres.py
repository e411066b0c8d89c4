"""PostgreSQL as data store and target, against the real local server (skipped outside CI when there is none)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time

import psycopg
import pytest

from mlstress_tui.cli import main
from mlstress_tui.load.engine import LoadEngine
from mlstress_tui.load.spec import LoadSpec
from mlstress_tui.load.targets.postgres import APPLICATION_NAME, PostgresTarget
from mlstress_tui.pipeline import feature_query, postgres_features
from mlstress_tui.session import RunSession
from postgres_fixtures import pg_dsn, pg_small  # noqa: F401  (fixtures)


def rows(sqlite_path, dsn, query):
    with sqlite3.connect(sqlite_path) as lite, psycopg.connect(dsn) as pg:
        return lite.execute(query).fetchall(), [tuple(row) for row in pg.execute(query).fetchall()]


@pytest.mark.slow
def test_the_same_seed_writes_the_same_rows_as_the_sqlite_file(small_db, pg_small):
    for query in ("SELECT * FROM users ORDER BY user_id",
                  "SELECT * FROM mlstress_user_stats ORDER BY user_id",
                  "SELECT count(*), min(event_timestamp), max(event_timestamp), sum(session_duration_seconds) FROM events",
                  "SELECT * FROM events ORDER BY event_id LIMIT 500"):
        lite, pg = rows(small_db, pg_small, query)
        assert lite == pg, query


def test_the_feature_vector_is_the_same_in_both_dialects(small_db, pg_small):
    with sqlite3.connect(small_db) as lite:
        heavy = [row[0] for row in lite.execute("SELECT user_id FROM mlstress_user_stats ORDER BY event_count DESC LIMIT 5")]
        empty = [row[0] for row in lite.execute("SELECT user_id FROM mlstress_user_stats WHERE event_count = 0 LIMIT 5")]
        nulls = [row[0] for row in lite.execute("SELECT user_id FROM users WHERE city IS NULL OR email IS NULL LIMIT 5")]
        sample = [row[0] for row in lite.execute("SELECT user_id FROM users ORDER BY user_id LIMIT 40")]
        users = heavy + empty + nulls + sample
        assert empty and nulls
        with psycopg.connect(pg_small) as pg:
            for user_id in users:
                mine = feature_query.fetch_features(lite, feature_query.FEATURE_QUERY, user_id)
                theirs = postgres_features.fetch_features(pg, user_id)
                assert mine.keys() == theirs.keys()
                for key, value in mine.items():
                    if isinstance(value, float):
                        assert theirs[key] == pytest.approx(value, rel=1e-9, abs=1e-9), (user_id, key)
                    else:
                        assert theirs[key] == value, (user_id, key)
            with pytest.raises(feature_query.MissingUser):
                postgres_features.fetch_features(pg, "NOUSER000001")


@pytest.mark.slow
def test_generate_refuses_existing_tables_and_an_interrupted_load_leaves_them(pg_small, capsys):
    assert main(["generate", "--dsn", pg_small, "--users", "50"]) == 2
    assert "already holds table(s)" in capsys.readouterr().err
    from mlstress_tui.synth import GenerateParams
    from mlstress_tui.synth.postgres_writer import generate_postgres

    def interrupt(done, total):
        if done > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_postgres(GenerateParams(users=3000, mean_events=20, seed=9), pg_small, force=True, progress=interrupt)
    with psycopg.connect(pg_small) as pg:
        assert pg.execute("SELECT count(*) FROM users").fetchone()[0] == 2000
        leftovers = pg.execute("SELECT count(*) FROM information_schema.tables WHERE table_name LIKE '%%mlstress_new'")
        assert leftovers.fetchone()[0] == 0


@pytest.mark.slow
def test_a_run_against_postgres_is_read_only_and_never_writes_the_password(pg_small, tmp_path, capsys):
    secret = "s3cret-Pw-XYZ"
    dsn = pg_small.replace("postgres@", f"postgres:{secret}@")  # trust auth takes any password
    with psycopg.connect(pg_small) as pg:
        before = pg.execute("SELECT count(*), sum(event_count) FROM mlstress_user_stats").fetchone()
    code = main(["run", "--headless", "--dsn", dsn, "--concurrency", "2", "--duration", "1.5",
                 "--out", str(tmp_path / "run")])
    printed = capsys.readouterr()
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert code == 0 and summary["requests"] > 100 and summary["errors"] == 0
    assert summary["target"]["kind"] == "postgres"
    written = "".join(path.read_text(errors="replace") for path in (tmp_path / "run").iterdir())
    assert secret not in written + printed.out + printed.err
    with psycopg.connect(pg_small) as pg:
        assert pg.execute("SELECT count(*), sum(event_count) FROM mlstress_user_stats").fetchone() == before


@pytest.mark.parametrize("dsn, fragment", [
    ("postgresql://postgres@127.0.0.1:1/postgres", "cannot connect"),
    ("postgresql://postgres@127.0.0.1:5432/no_such_db_mlstress", "does not exist"),
    ("http://example.com/x", "not a PostgreSQL connection string"),
])
def test_bad_postgres_input_is_one_line_and_exit_2(pg_dsn, tmp_path, capsys, dsn, fragment):
    started = time.monotonic()
    code = main(["run", "--headless", "--dsn", dsn, "--duration", "1", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err
    assert time.monotonic() - started < 10


def test_a_database_without_the_tables_is_named(pg_dsn, tmp_path, capsys):
    with psycopg.connect(pg_dsn, autocommit=True) as pg:
        pg.execute("CREATE SCHEMA IF NOT EXISTS empty_schema")
    dsn = pg_dsn + "?options=-csearch_path%3Dempty_schema"
    assert main(["run", "--headless", "--dsn", dsn, "--duration", "1", "--out", str(tmp_path / "run")]) == 2
    assert "lacks table(s)" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("pool_size, connections", [(None, "owned"), (1, "pool")])
def test_terminated_backends_are_connection_lost_and_the_run_goes_on(pg_small, tmp_path, pool_size, connections):
    # A slot for every user: each owns its connection and remakes it; a smaller pool: psycopg_pool replaces them.
    engine = LoadEngine(PostgresTarget(pg_small), LoadSpec(concurrency=2, duration_s=4.0, pool_size=pool_size),
                        run_dir=tmp_path)
    session = RunSession(engine, run_dir=tmp_path)
    session.start()

    def terminate():
        time.sleep(1.5)
        with psycopg.connect(pg_small, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                          (APPLICATION_NAME,))

    killer = threading.Thread(target=terminate)
    killer.start()
    summary = session.run_until_finished(threading.Event())
    killer.join()
    assert summary["errors_by_kind"].get("connection_lost", 0) >= 1
    assert summary["connections"] == connections
    if connections == "owned":
        assert summary["pool_wait_ms"]["max"] == 0  # no pool in the way: 0 by construction, and said so
    else:
        assert summary["pool_wait_ms"]["p99"] > 0
    lines = [json.loads(line) for line in (tmp_path / "intervals.jsonl").read_text().splitlines()]
    # Whole seconds after the termination at 1.5 s: the pool replaced its connections, the load is back.
    late = [line for line in lines if line["t"] >= 3.0 and float(line["t"]).is_integer()]
    assert late and all(line["requests"] > 100 and line["errors"] == 0 for line in late)


@pytest.mark.slow
def test_the_pool_saturation_preset_says_the_pool_is_the_bottleneck(pg_small, tmp_path, capsys):
    # The small database answers faster than the default one: offer far more than one connection serves.
    code = main(["run", "--headless", "--dsn", pg_small, "--preset", "pool-saturation", "--rate", "20000",
                 "--duration", "2", "--out", str(tmp_path / "run")])
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert code == 0
    assert summary["pool_wait_ms"]["p99"] > 10 * summary["service_ms"]["p99"] and summary["connections"] == "pool"
    assert summary["bottleneck"] and "the pool, not the database" in summary["bottleneck"]
    assert ">> the pool, not the database" in capsys.readouterr().out


@pytest.mark.slow
def test_an_empty_dsn_takes_libpq_s_environment_as_psql_does(pg_small, tmp_path, monkeypatch):
    from psycopg.conninfo import conninfo_to_dict

    parts = conninfo_to_dict(pg_small)
    for key, variable in (("host", "PGHOST"), ("port", "PGPORT"), ("user", "PGUSER"), ("dbname", "PGDATABASE")):
        if parts.get(key):
            monkeypatch.setenv(variable, str(parts[key]))
    monkeypatch.setenv("PGPASSWORD", "env-secret-123")
    assert main(["run", "--headless", "--dsn", "", "--concurrency", "1", "--duration", "1",
                 "--out", str(tmp_path / "run")]) == 0
    summary = (tmp_path / "run" / "summary.json").read_text()
    assert json.loads(summary)["requests"] > 0 and parts["dbname"] in summary and "env-secret-123" not in summary


def test_the_batch_job_computes_the_same_features_from_postgres(small_db, pg_small, tmp_path):
    import pandas as pd

    from mlstress_tui.pipeline.batch_features import RUNNERS

    def frame(connection, strategy):
        parts = list(RUNNERS[strategy](connection, 500, 128))
        return pd.concat(parts, ignore_index=True).sort_values("user_id").reset_index(drop=True)

    with sqlite3.connect(f"file:{small_db}?mode=ro", uri=True) as lite:
        expected = frame(lite, "per-user")
    with psycopg.connect(pg_small, autocommit=True) as pg:
        for strategy in ("per-user", "set-based", "chunked"):
            pd.testing.assert_frame_equal(frame(pg, strategy), expected, check_dtype=False, rtol=1e-9)
    assert main(["batch", "--dsn", pg_small, "--users", "200", "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "batch.json").read_text())["users"] == 200
