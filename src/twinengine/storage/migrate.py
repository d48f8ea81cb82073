"""Run Alembic migrations programmatically (``twinengine db upgrade`` and start-up)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from sqlalchemy import text

if TYPE_CHECKING:
    from twinengine.storage.database import Database

MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATION_LOCK = 0x7477696E  # any fixed bigint: the Postgres advisory lock key for upgrades


def alembic_config(db: Database) -> Config:
    """An Alembic config pointing at the packaged migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return cfg


def upgrade(db: Database, revision: str = "heads") -> None:
    """Apply every migration up to ``revision``.

    Each domain's migrations form their own branch off the catalog's first revision, so
    ``heads`` upgrades all of them.
    """
    cfg = alembic_config(db)
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # API processes and workers starting together would otherwise run the same
            # migration at once (duplicate-type / missing-index errors): one at a time, held
            # to the end of this transaction; the next one then finds nothing left to do.
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current(db: Database) -> list[str]:
    """The revisions the database is at."""
    from alembic.runtime.migration import MigrationContext

    with db.engine.connect() as conn:
        return sorted(MigrationContext.configure(conn).get_current_heads())
