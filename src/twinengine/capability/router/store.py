"""SQL for the ledger and the cache (shared by SQLite and Postgres)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import case, func, select

from twinengine.capability.router.models import llm_cache, llm_ledger
from twinengine.storage import Database


def today() -> str:
    """The UTC day budgets are counted by."""
    return dt.datetime.now(dt.UTC).date().isoformat()


class RouterStore:
    """Ledger and cache reads and writes."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, **row: Any) -> str:
        """Append one ledger row; returns its id."""
        now = dt.datetime.now(dt.UTC)
        row_id = uuid.uuid4().hex
        full = {
            "id": row_id,
            "ts": now,
            "day": now.date().isoformat(),
            "tokens_in": 0,
            "tokens_out": 0,
            "cost_usd": 0.0,
            "latency_ms": 0.0,
            "cached": False,
            "attempts": 1,
            **row,
        }
        with self.db.write() as conn:
            conn.execute(llm_ledger.insert().values(**full))
        return row_id

    def record_with_cache(self, cache_row: dict[str, Any] | None, **row: Any) -> str:
        """Write the cache entry and the ledger row in one transaction (both or neither)."""
        now = dt.datetime.now(dt.UTC)
        row_id = uuid.uuid4().hex
        with self.db.write() as conn:
            if cache_row is not None:
                self.db.upsert(conn, llm_cache, [{**cache_row, "created_at": now}], key=["key"])
            conn.execute(
                llm_ledger.insert().values(
                    id=row_id, ts=now, day=now.date().isoformat(), **row
                )
            )
        return row_id

    def cached(self, key: str) -> dict[str, Any] | None:
        """The cache entry under ``key``."""
        with self.db.read() as conn:
            row = conn.execute(select(llm_cache).where(llm_cache.c.key == key)).mappings().first()
        return dict(row) if row else None

    def completed(self, idem_key: str) -> dict[str, Any] | None:
        """The completed (status ok) ledger row with this idempotency key, if any."""
        with self.db.read() as conn:
            row = (
                conn.execute(
                    select(llm_ledger)
                    .where(llm_ledger.c.idem_key == idem_key, llm_ledger.c.status == "ok")
                    .order_by(llm_ledger.c.ts)
                    .limit(1)
                )
                .mappings()
                .first()
            )
        return dict(row) if row else None

    def spent(self, *, run_id: str | None = None, day: str | None = None) -> float:
        """USD spent by one run or on one day."""
        q = select(func.coalesce(func.sum(llm_ledger.c.cost_usd), 0.0))
        if run_id is not None:
            q = q.where(llm_ledger.c.run_id == run_id)
        if day is not None:
            q = q.where(llm_ledger.c.day == day)
        with self.db.read() as conn:
            return float(conn.execute(q).scalar() or 0.0)

    def rows(
        self, *, limit: int = 100, run_id: str | None = None, task: str | None = None
    ) -> list[dict[str, Any]]:
        """Newest ledger rows first."""
        q = select(llm_ledger).order_by(llm_ledger.c.ts.desc()).limit(limit)
        if run_id is not None:
            q = q.where(llm_ledger.c.run_id == run_id)
        if task is not None:
            q = q.where(llm_ledger.c.task == task)
        with self.db.read() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def grouped(self, column: str, *, limit: int = 60) -> list[dict[str, Any]]:
        """Spend grouped by ``day``, ``task`` or ``model``."""
        col = llm_ledger.c[column]
        q = (
            select(
                col.label("key"),
                func.count().label("calls"),
                func.sum(case((llm_ledger.c.cached.is_(True), 1), else_=0)).label("cached"),
                func.sum(
                    case((llm_ledger.c.status.in_(["error", "invalid"]), 1), else_=0)
                ).label("errors"),
                func.coalesce(func.sum(llm_ledger.c.tokens_in), 0).label("tokens_in"),
                func.coalesce(func.sum(llm_ledger.c.tokens_out), 0).label("tokens_out"),
                func.coalesce(func.sum(llm_ledger.c.cost_usd), 0.0).label("cost_usd"),
            )
            .group_by(col)
            .order_by(col.desc() if column == "day" else func.sum(llm_ledger.c.cost_usd).desc())
            .limit(limit)
        )
        with self.db.read() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def repeated(self, *, run_id: str | None = None) -> list[tuple[str, int]]:
        """Idempotency keys that reached a provider and completed more than once."""
        q = (
            select(llm_ledger.c.idem_key, func.count())
            .where(
                llm_ledger.c.idem_key.is_not(None),
                llm_ledger.c.status == "ok",
                llm_ledger.c.cached.is_(False),
            )
            .group_by(llm_ledger.c.idem_key)
            .having(func.count() > 1)
        )
        if run_id is not None:
            q = q.where(llm_ledger.c.run_id == run_id)
        with self.db.read() as conn:
            return [(r[0], int(r[1])) for r in conn.execute(q)]

