"""The ``Database`` interface and the factory that picks a backend by URL scheme.

Shared SQL lives here; ``sqlite.py`` and ``postgres.py`` override only engine set-up, upsert
and error classification.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, Table
from sqlalchemy.exc import OperationalError

from twinengine.errors import BackendUnavailable

log = logging.getLogger(__name__)


class Database(ABC):
    """An engine for one database plus the few dialect-specific operations we need."""

    dialect: str = ""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine: Engine = self._make_engine(url, **engine_kwargs)

    @abstractmethod
    def _make_engine(self, url: str, **kwargs: Any) -> Engine:
        """Build the engine with the backend's pragmas and pool settings."""

    # Bound parameters one statement may carry (SQLite 32766, psycopg 65535), with margin.
    max_params: int = 30000

    @abstractmethod
    def insert(self, table: Table) -> Any:
        """The dialect's INSERT, which supports ``on_conflict_do_update``."""

    def upsert(
        self,
        conn: Connection,
        table: Table,
        rows: Sequence[dict[str, Any]],
        *,
        key: Sequence[str],
        update: Sequence[str] | None = None,
    ) -> None:
        """Insert rows, replacing the ``update`` columns where ``key`` already exists.

        ``update=None`` replaces every non-key column; ``update=[]`` means insert-or-ignore.
        """
        if not rows:
            return
        step = max(1, self.max_params // max(1, len(rows[0])))
        cols = update if update is not None else [c for c in rows[0] if c not in key]
        for start in range(0, len(rows), step):
            stmt = self.insert(table).values(list(rows[start : start + step]))
            if cols:
                stmt = stmt.on_conflict_do_update(
                    index_elements=list(key), set_={c: stmt.excluded[c] for c in cols}
                )
            else:
                stmt = stmt.on_conflict_do_nothing(index_elements=list(key))
            conn.execute(stmt)

    def is_transient(self, exc: BaseException) -> bool:
        """Whether an error is worth retrying (lock, serialisation failure, lost connection)."""
        return isinstance(exc, OperationalError)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: commits on success, rolls back everything on error."""
        try:
            with self._write_engine().begin() as conn:
                yield conn
        except OperationalError as exc:
            raise BackendUnavailable(f"database write failed: {exc.orig}") from exc

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only connection."""
        try:
            with self.engine.connect() as conn:
                yield conn
        except OperationalError as exc:
            raise BackendUnavailable(f"database read failed: {exc.orig}") from exc

    def _write_engine(self) -> Engine:
        return self.engine

    def upgrade(self) -> None:
        """Bring the schema to the newest migration."""
        from twinengine.storage.migrate import upgrade

        upgrade(self)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def normalise_url(url: str) -> str:
    """Accept plain ``postgres://`` / ``postgresql://`` URLs and use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def open_database(url: str, **engine_kwargs: Any) -> Database:
    """Open the database at ``url``; the backend module is imported only when used."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        from twinengine.storage.sqlite import SqliteDatabase

        return SqliteDatabase(url, **engine_kwargs)
    if url.startswith("postgresql"):
        from twinengine.storage.postgres import PostgresDatabase

        return PostgresDatabase(url, **engine_kwargs)
    scheme = url.split(":", 1)[0]
    raise BackendUnavailable(
        f"unsupported database URL scheme {scheme!r}: use sqlite:///PATH or postgresql://..."
    )
