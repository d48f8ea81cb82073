"""Shared fixtures.

Every test gets a fresh database: a SQLite file under ``tmp_path`` by default, or, with
``TWINENGINE_TEST_DB=postgres``, a new database on the PostgreSQL server at 127.0.0.1
(skipped cleanly when no server answers).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from twinengine.config import Settings
from twinengine.context import AppContext, open_context

PG_ADMIN_URL = os.environ.get(
    "TWINENGINE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
USE_POSTGRES = os.environ.get("TWINENGINE_TEST_DB", "sqlite") == "postgres"


def postgres_available() -> bool:
    """Whether the test Postgres answers."""
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL.replace("+psycopg", ""), connect_timeout=2):
            return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_ok() -> bool:
    return postgres_available()


def _create_pg_database(name: str) -> str:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def _drop_pg_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(tmp_path: Path, pg_ok: bool) -> Iterator[str]:
    """A fresh, empty database for this test."""
    if not USE_POSTGRES:
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    if not pg_ok:
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    name = f"te_test_{uuid.uuid4().hex[:12]}"
    url = _create_pg_database(name)
    try:
        yield url
    finally:
        _drop_pg_database(name)


@pytest.fixture
def pg_database_url(pg_ok: bool) -> Iterator[str]:
    """A fresh Postgres database whatever the run's backend (for tests of Postgres itself)."""
    if not pg_ok:
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    name = f"te_test_{uuid.uuid4().hex[:12]}"
    url = _create_pg_database(name)
    try:
        yield url
    finally:
        _drop_pg_database(name)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings pointing at this test's database and a home under tmp_path."""
    return Settings(home=tmp_path / "home", database_url=database_url)


@pytest.fixture
def ctx(settings: Settings) -> Iterator[AppContext]:
    """An open, migrated app context."""
    context = open_context(settings)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def db(ctx: AppContext):  # type: ignore[no-untyped-def]
    """The context's database."""
    return ctx.db


@pytest.fixture
def client(ctx: AppContext):  # type: ignore[no-untyped-def]
    """A TestClient over the full app (API and pages)."""
    from fastapi.testclient import TestClient

    from twinengine.api.app import create_app

    with TestClient(create_app(context=ctx)) as c:
        yield c


@pytest.fixture
def sample_catalog(ctx: AppContext, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The taxonomy plus 300 real prompts (every language and both media kinds present)."""
    from tests.factories import load_sample

    load_sample(ctx.db, tmp_path, n=300)
    return ctx
