"""PostgreSQL backend: the scale-out choice, shared by several processes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, Table, create_engine
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError

from twinengine.storage.database import Database


class PostgresDatabase(Database):
    """Catalog, events and workflow queues on one Postgres."""

    dialect = "postgresql"
    max_params = 60000

    def _make_engine(self, url: str, **kwargs: Any) -> Engine:
        kwargs.setdefault("pool_pre_ping", True)  # survive a server restart
        kwargs.setdefault("pool_size", 10)
        return create_engine(url, **kwargs)

    def insert(self, table: Table) -> Any:
        return insert(table)

    def is_transient(self, exc: BaseException) -> bool:
        # 40001 serialization_failure, 40P01 deadlock_detected
        code = getattr(getattr(exc, "orig", None), "sqlstate", None)
        return super().is_transient(exc) or (
            isinstance(exc, DBAPIError) and code in {"40001", "40P01"}
        )
