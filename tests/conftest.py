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



# Tests that share one real server's state (the CI database, Redis database 13) run in one xdist worker, one after
# another (`--dist loadgroup`), as do the Ray cluster's; the rest spread over the workers.
_SERVERS = {"pg_dsn", "pg_small", "redis_url"}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups into the test ids
def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if _SERVERS & set(item.fixturenames):
            item.add_marker(pytest.mark.xdist_group("servers"))
        elif item.module.__name__ == "test_ray" or "ray_cluster" in item.fixturenames:
            item.add_marker(pytest.mark.xdist_group("ray"))
