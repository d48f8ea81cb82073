"""A search index over the 300-row real sample, built once per test module (embedding is slow)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import USE_POSTGRES, _create_pg_database, _drop_pg_database, postgres_available
from twinengine.config import Settings
from twinengine.context import AppContext, open_context


def module_context(tmp: Path) -> Iterator[AppContext]:
    """An open context on a fresh database (SQLite, or Postgres under TWINENGINE_TEST_DB)."""
    name = None
    if USE_POSTGRES:
        if not postgres_available():
            pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
        name = f"te_test_{uuid.uuid4().hex[:12]}"
        url = _create_pg_database(name)
    else:
        url = f"sqlite:///{tmp / 'test.db'}"
    ctx = open_context(Settings(home=tmp / "home", database_url=url))
    try:
        yield ctx
    finally:
        ctx.close()
        if name:
            _drop_pg_database(name)
