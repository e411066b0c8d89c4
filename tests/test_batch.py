"""The batch job: three strategies, the same features; batch.json and the footprint sweep."""

from __future__ import annotations

import json
import sqlite3

import pandas as pd
import pytest

from mlstress_tui.cli import main
from mlstress_tui.pipeline.batch_features import RUNNERS


def features(db, strategy: str, limit: int, chunk_size: int = 256) -> pd.DataFrame:
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        frame = pd.concat(list(RUNNERS[strategy](connection, limit, chunk_size)), ignore_index=True)
    finally:
        connection.close()
    return frame.sort_values("user_id").reset_index(drop=True)


def test_every_strategy_computes_the_same_features_heavy_and_empty_users_included(small_db):
    per_user = features(small_db, "per-user", 2000)
    with sqlite3.connect(small_db) as connection:
        heaviest = connection.execute("SELECT user_id FROM mlstress_user_stats ORDER BY event_count DESC").fetchone()[0]
        empty = connection.execute("SELECT user_id FROM mlstress_user_stats WHERE event_count = 0").fetchone()[0]
    assert {heaviest, empty} <= set(per_user["user_id"]) and len(per_user) == 2000
    for strategy in ("set-based", "chunked"):
        pd.testing.assert_frame_equal(features(small_db, strategy, 2000), per_user, check_dtype=False, rtol=1e-9)


def test_a_batch_run_writes_parquet_and_batch_json(small_db, tmp_path, capsys):
    assert main(["batch", "--db", str(small_db), "--users", "300", "--strategy", "chunked", "--chunk-size", "100",
                 "--out", str(tmp_path)]) == 0
    document = json.loads((tmp_path / "batch.json").read_text())
    assert {"strategy", "users", "seconds", "users_per_s", "peak_rss_mb", "output_bytes"} <= set(document)
    assert document["users"] == 300 and document["output_bytes"] == (tmp_path / "features.parquet").stat().st_size
    assert len(pd.read_parquet(tmp_path / "features.parquet")) == 300
    assert "users/s" in capsys.readouterr().out


def test_the_sweep_measures_each_strategy_in_a_fresh_process(small_db, tmp_path, capsys):
    assert main(["batch", "--db", str(small_db), "--sweep", "--target-users", "1000000", "--out", str(tmp_path)]) == 0
    document = json.loads((tmp_path / "batch.json").read_text())
    assert document["target_users"] == 1_000_000
    assert set(document["strategies"]) == {"per-user", "set-based", "chunked"}
    for figures in document["strategies"].values():
        assert figures["points"] and all(point["peak_rss_mb"] > 0 for point in figures["points"])
    assert "extrapolated to 1,000,000 users" in capsys.readouterr().out
