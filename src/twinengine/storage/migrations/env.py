"""Alembic environment: runs on the connection handed over by ``twinengine.storage.migrate``."""

from alembic import context
from sqlalchemy import create_engine

config = context.config


def run() -> None:
    conn = config.attributes.get("connection")
    if conn is None:  # plain `alembic` CLI use
        engine = create_engine(config.get_main_option("sqlalchemy.url"))
        with engine.begin() as conn:
            _configure(conn)
        return
    _configure(conn)


def _configure(conn) -> None:  # type: ignore[no-untyped-def]
    # batch mode lets ALTER TABLE work on SQLite
    context.configure(connection=conn, render_as_batch=conn.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


run()
