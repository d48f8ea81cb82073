"""SQLite backend: WAL, busy timeout, foreign keys, IMMEDIATE write transactions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.dialects.sqlite import insert

from twinengine.storage.database import Database


class SqliteDatabase(Database):
    """The embedded default."""

    dialect = "sqlite"

    def _make_engine(self, url: str, **kwargs: Any) -> Engine:
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # pysqlite's own transaction handling is disabled so that "begin" below decides.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
            cur.execute("PRAGMA synchronous=NORMAL")  # durable under WAL, much faster than FULL
            cur.execute("PRAGMA busy_timeout=30000")  # wait for the writer instead of failing
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            # Writers take the lock up front: a deferred transaction that upgrades to a write
            # lock mid-way fails with SQLITE_BUSY instead of waiting.
            if conn.get_execution_options().get("immediate"):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("BEGIN")

        return engine

    def _write_engine(self) -> Engine:
        return self.engine.execution_options(immediate=True)

    def insert(self, table: Table) -> Any:
        return insert(table)
