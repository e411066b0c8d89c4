"""A PostgreSQL database of the tests' own on the real local server: skipped outside CI when there is none."""

from __future__ import annotations

import os
import uuid

import pytest

ADMIN_DSN = os.environ.get("MLSTRESS_TEST_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is needed in CI and is not there: {reason}")
    pytest.skip(f"no PostgreSQL server to test against: {reason}")


@pytest.fixture(scope="session")
def pg_dsn():
    """A fresh, empty database: $MLSTRESS_TEST_PG_DSN (CI makes one), else one created here and dropped after."""
    import psycopg

    given = os.environ.get("MLSTRESS_TEST_PG_DSN")
    if given:
        yield given
        return
    name = f"mlstress_test_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(ADMIN_DSN, autocommit=True, connect_timeout=3) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as error:
        _unavailable(str(error).splitlines()[0])
    base = ADMIN_DSN.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(ADMIN_DSN, autocommit=True, connect_timeout=3) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_small(pg_dsn):
    """The small seeded database (2,000 users, seed 7) generated into PostgreSQL, once per session."""
    from mlstress_tui.synth import GenerateParams
    from mlstress_tui.synth.postgres_writer import generate_postgres

    generate_postgres(GenerateParams(users=2000, mean_events=20, seed=7), pg_dsn, force=True)
    return pg_dsn
