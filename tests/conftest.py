"""Shared fixtures: an isolated cache directory and small seeded databases."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch) -> Path:
    """Never read or write the user's real cache (the default database lives there)."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("MLSTRESS_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(scope="session")
def small_db(tmp_path_factory) -> Path:
    """A seeded 2,000-user database, generated once per test session."""
    from mlstress_tui.synth import GenerateParams, generate_sqlite

    path = tmp_path_factory.mktemp("db") / "small.sqlite"
    generate_sqlite(GenerateParams(users=2000, mean_events=20, seed=7), path)
    return path
