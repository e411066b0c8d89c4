"""The batch job: three strategies, the same features; batch.json and the footprint sweep."""

from __future__ import annotations

import itertools
import json
import sqlite3

import pandas as pd
import pyarrow.parquet as pq
import pytest

from mlstress_tui.cli import main
from mlstress_tui.commands.batch import footprint_fit, run_job
from mlstress_tui.pipeline.batch_features import FEATURE_COLUMNS, RUNNERS, STRATEGIES, feature_schema
from mlstress_tui.synth import GenerateParams, generate_sqlite


def features(db, strategy: str, limit: int, chunk_size: int = 256) -> pd.DataFrame:
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        frame = pd.concat(list(RUNNERS[strategy](connection, limit, chunk_size)), ignore_index=True)
    finally:
        connection.close()
    return frame.sort_values("user_id").reset_index(drop=True)


@pytest.mark.slow
def test_every_strategy_computes_the_same_features_heavy_and_empty_users_included(small_db):
    per_user = features(small_db, "per-user", 2000)
    with sqlite3.connect(small_db) as connection:
        heaviest = connection.execute("SELECT user_id FROM mlstress_user_stats ORDER BY event_count DESC").fetchone()[0]
        empty = connection.execute("SELECT user_id FROM mlstress_user_stats WHERE event_count = 0").fetchone()[0]
    assert {heaviest, empty} <= set(per_user["user_id"]) and len(per_user) == 2000
    for strategy in ("set-based", "chunked"):
        pd.testing.assert_frame_equal(features(small_db, strategy, 2000), per_user, check_dtype=False, rtol=1e-9)


@pytest.fixture(scope="module")
def shapes_source(tmp_path_factory):
    """80 users, a few events each: the base every shape below is cut from."""
    path = tmp_path_factory.mktemp("shapes") / "base.sqlite"
    generate_sqlite(GenerateParams(users=80, mean_events=3, seed=5), path)
    return path


LEADING = "user_id <= 'USR00000030'"
# Shapes production has: a column NULL for every user of the first chunks, users without events first.
SHAPES = {
    **{f"{column} NULL first": [f"UPDATE users SET {column} = NULL WHERE {LEADING}"]
       for column in ("segment", "device_type", "country", "signup_date")},
    "no events first": [f"DELETE FROM events WHERE user_id IN (SELECT user_id FROM users WHERE {LEADING})"],
    "session and amount NULL first": [
        f"UPDATE events SET session_duration_seconds = NULL, amount = NULL WHERE user_id IN "
        f"(SELECT user_id FROM users WHERE {LEADING})"],
    "everything NULL first": [
        f"UPDATE users SET segment = NULL, device_type = NULL, country = NULL, signup_date = NULL WHERE {LEADING}",
        f"DELETE FROM events WHERE user_id IN (SELECT user_id FROM users WHERE {LEADING})"],
}


@pytest.mark.slow
@pytest.mark.parametrize("shape", SHAPES)
def test_every_strategy_and_chunk_size_writes_the_declared_schema_and_the_same_values(shape, shapes_source,
                                                                                         tmp_path):
    db = tmp_path / "shape.sqlite"
    with sqlite3.connect(shapes_source) as source, sqlite3.connect(db) as target:
        source.backup(target)
        for statement in SHAPES[shape]:
            assert target.execute(statement).rowcount > 0
    frames = {}
    for strategy in STRATEGIES:
        for chunk_size in (1, 3, 10_000):
            out = tmp_path / f"{strategy}-{chunk_size}"
            out.mkdir()
            assert run_job(db, strategy, 80, chunk_size, out, progress=False)["users"] == 80
            table = pq.read_table(out / "features.parquet")
            assert table.schema.equals(feature_schema()), (strategy, chunk_size, table.schema)
            frames[strategy, chunk_size] = table.to_pandas()
    reference = frames["per-user", 1]
    assert list(reference.columns) == [name for name, _ in FEATURE_COLUMNS]
    for key, frame in frames.items():
        pd.testing.assert_frame_equal(frame, reference, rtol=1e-9, obj=str(key))


def test_a_value_the_schema_cannot_hold_is_one_line_and_leaves_no_file(small_db, tmp_path, capsys, monkeypatch):
    from mlstress_tui.pipeline import batch_features

    def text_in_a_count(connection, limit, chunk_size):
        for frame in batch_features.chunked(connection, limit, chunk_size):
            yield frame.assign(total_events=frame["total_events"].astype(object).where(frame.index != 5, "many"))

    monkeypatch.setitem(batch_features.RUNNERS, "chunked", text_in_a_count)
    out = tmp_path / "out"
    assert main(["batch", "--db", str(small_db), "--chunk-size", "100", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "feature 'total_events' is not int64" in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert list(out.iterdir()) == []


def test_a_job_that_fails_midway_leaves_no_file_at_the_output_path(small_db, tmp_path, monkeypatch):
    from mlstress_tui.pipeline import batch_features

    def first_chunk_then_fail(connection, limit, chunk_size):
        yield from itertools.islice(batch_features.chunked(connection, limit, chunk_size), 1)
        raise RuntimeError("the database went away")

    monkeypatch.setitem(batch_features.RUNNERS, "chunked", first_chunk_then_fail)
    with pytest.raises(RuntimeError):
        run_job(small_db, "chunked", 2000, 100, tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_a_batch_run_writes_parquet_and_batch_json(small_db, tmp_path, capsys):
    assert main(["batch", "--db", str(small_db), "--users", "300", "--strategy", "chunked", "--chunk-size", "100",
                 "--out", str(tmp_path)]) == 0
    document = json.loads((tmp_path / "batch.json").read_text())
    assert {"strategy", "users", "seconds", "users_per_s", "peak_rss_mb", "output_bytes"} <= set(document)
    assert document["users"] == 300 and document["output_bytes"] == (tmp_path / "features.parquet").stat().st_size
    assert len(pd.read_parquet(tmp_path / "features.parquet")) == 300
    assert "users/s" in capsys.readouterr().out


@pytest.mark.slow
def test_the_sweep_measures_three_sizes_in_fresh_processes_and_fits_only_what_rises_above_their_spread(
        small_db, tmp_path, capsys):
    assert main(["batch", "--db", str(small_db), "--sweep", "--strategy", "chunked", "--repeats", "2",
                 "--target-users", "1000000", "--out", str(tmp_path)]) == 0
    document = json.loads((tmp_path / "batch.json").read_text())
    assert document["target_users"] == 1_000_000 and document["sizes"] == [222, 667, 2000]
    assert set(document["strategies"]) == {"chunked"}
    figures = document["strategies"]["chunked"]
    assert len(figures["points"]) == 6 and {point["users"] for point in figures["points"]} == {222, 667, 2000}
    assert all(point["peak_rss_mb"] > 0 for point in figures["points"])
    # A couple of thousand users move a chunked job's memory by less than the runs' own spread.
    assert figures["verdict"] == "flat within noise" and "peak_rss_mb_at_target" not in figures
    assert "flat within noise (±" in capsys.readouterr().out


def points(*pairs: tuple[int, float]) -> list[dict]:
    return [{"users": users, "peak_rss_mb": peak} for users, peak in pairs]


def test_a_footprint_needs_three_sizes():
    fit = footprint_fit(points((10_000, 100.0), (10_000, 101.0), (30_000, 140.0), (30_000, 141.0)), 10_000_000)
    assert fit["verdict"] == "not enough sizes" and "peak_rss_mb_at_target" not in fit
    assert fit["says"].startswith("not enough sizes (2 of the 3")


def test_growth_within_the_repeats_spread_is_flat_not_extrapolated():
    # The 2-9 MB between runs of the same job that issue 25 saw extrapolated to 2.4 GB.
    fit = footprint_fit(points((10_000, 120.0), (10_000, 128.0), (30_000, 124.0), (30_000, 131.0),
                               (100_000, 127.0), (100_000, 122.0)), 10_000_000)
    assert fit["verdict"] == "flat within noise" and fit["settled"]
    assert fit["says"].startswith("flat within noise (±4.0 MB)")


def test_growth_well_above_the_spread_is_fitted_and_extrapolated():
    fit = footprint_fit(points((10_000, 110.0), (10_000, 111.0), (30_000, 150.0), (30_000, 151.5),
                               (100_000, 290.0), (100_000, 291.0)), 1_000_000)
    assert fit["verdict"] == "grows" and fit["mb_per_100k_users"] == pytest.approx(200.0, rel=0.02)
    assert fit["peak_rss_mb_at_target"] == pytest.approx(2_090.0, rel=0.02)
    assert json.loads(json.dumps(fit)) == fit  # batch.json holds it


def test_growth_comparable_to_the_spread_asks_for_more_runs():
    fit = footprint_fit(points((10_000, 100.0), (10_000, 104.0), (30_000, 103.0), (30_000, 108.0),
                               (100_000, 108.0), (100_000, 112.0)), 1_000_000)
    assert not fit["settled"] and fit["verdict"] == "flat within noise"
