"""The storage layer on SQLite and (when reachable) Postgres."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from twinengine.errors import BackendUnavailable
from twinengine.storage import open_database
from twinengine.storage.migrate import current


def test_sqlite_pragmas(tmp_path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'x.db'}")
    with db.read() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30000
    db.dispose()


def test_migrations_reach_every_head(db) -> None:
    heads = current(db)
    assert "0001_catalog" in heads or heads  # later domains branch off the catalog revision
    db.upgrade()  # idempotent
    assert current(db) == heads


def test_write_rolls_back_on_error(db) -> None:
    from twinengine.catalog.models import users

    with pytest.raises(RuntimeError):
        with db.write() as conn:
            conn.execute(users.insert().values(id="u1", attributes={}))
            raise RuntimeError("boom")
    with db.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM users")).scalar() == 0


def test_upsert_insert_and_ignore(db) -> None:
    from twinengine.catalog.models import users

    with db.write() as conn:
        db.upsert(conn, users, [{"id": "u1", "attributes": {"a": 1}}], key=["id"])
        db.upsert(conn, users, [{"id": "u1", "attributes": {"a": 2}}], key=["id"])
        db.upsert(conn, users, [{"id": "u1", "attributes": {"a": 3}}], key=["id"], update=[])
    with db.read() as conn:
        assert conn.execute(users.select()).one().attributes == {"a": 2}


def test_unknown_scheme_is_a_clear_error() -> None:
    with pytest.raises(BackendUnavailable, match="unsupported database URL scheme 'mysql'"):
        open_database("mysql://x/y")


@pytest.mark.postgres
def test_postgres_backend_for_real(pg_database_url) -> None:
    db = open_database(pg_database_url)
    db.upgrade()
    assert db.dialect == "postgresql"
    with db.read() as conn:
        tables = set(
            conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname='public'")
            ).scalars()
        )
    assert {"items", "topics", "item_topics", "users"} <= tables
    db.dispose()
