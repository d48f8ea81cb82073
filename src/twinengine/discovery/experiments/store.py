"""Experiment SQL: the definitions table, and the event-log reads analysis needs.

The event reads filter on the experiment's key inside the logged ``experiments`` JSON
(``json_extract`` on SQLite, ``->>`` on Postgres, both from SQLAlchemy's JSON index), so only
the experiment's own traffic leaves the database.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
from sqlalchemy import and_, func, insert, select, update

from twinengine.discovery.events.models import events, impressions
from twinengine.discovery.experiments.models import experiments
from twinengine.storage import Database


def utc(ts: Any) -> Any:
    """Aware UTC (SQLite hands back naive UTC datetimes)."""
    if isinstance(ts, dt.datetime) and ts.tzinfo is None:
        return ts.replace(tzinfo=dt.UTC)
    return ts


def _row(r: Any) -> dict[str, Any]:
    row = dict(r)
    for k in ("created_at", "started_at", "stopped_at"):
        row[k] = utc(row[k])
    return row


def insert_experiment(db: Database, row: dict[str, Any]) -> None:
    """Store a new experiment row."""
    with db.write() as conn:
        conn.execute(insert(experiments).values(**row))


def get_experiment(db: Database, exp_id: str) -> dict[str, Any] | None:
    """One experiment row, or None."""
    with db.read() as conn:
        r = conn.execute(select(experiments).where(experiments.c.id == exp_id)).mappings().first()
    return _row(r) if r else None


def list_experiments(db: Database, *, status: str | None = None) -> list[dict[str, Any]]:
    """Experiment rows, newest first."""
    stmt = select(experiments).order_by(experiments.c.created_at.desc(), experiments.c.id)
    if status:
        stmt = stmt.where(experiments.c.status == status)
    with db.read() as conn:
        return [_row(r) for r in conn.execute(stmt).mappings()]


def layer_slots(db: Database, layer: str) -> list[tuple[float, float]]:
    """The [start, end) slices of ``layer`` held by draft or running experiments."""
    stmt = select(experiments.c.layer_start, experiments.c.layer_end).where(
        experiments.c.layer == layer, experiments.c.status != "stopped"
    )
    with db.read() as conn:
        return sorted((float(a), float(b)) for a, b in conn.execute(stmt))


def set_status(db: Database, exp_id: str, *, expect: str, **values: Any) -> bool:
    """Move an experiment on from status ``expect``; False when it was not in that status."""
    stmt = (
        update(experiments)
        .where(experiments.c.id == exp_id, experiments.c.status == expect)
        .values(**values)
    )
    with db.write() as conn:
        return conn.execute(stmt).rowcount == 1


def set_decision(db: Database, exp_id: str, decision: dict[str, Any]) -> None:
    """Record the decision taken at stop."""
    with db.write() as conn:
        conn.execute(
            update(experiments).where(experiments.c.id == exp_id).values(decision=decision)
        )


def load_requests(
    db: Database, exp_id: str, *, since: dt.datetime, until: dt.datetime | None
) -> pd.DataFrame:
    """One row per served request carrying the experiment: user, variant, time, items shown."""
    i = impressions
    variant = i.c.experiments[exp_id].as_string()
    inner = select(
        i.c.user_key, i.c.request_id, i.c.event_id, i.c.ts, variant.label("variant")
    ).where(variant.is_not(None), i.c.ts >= since)
    if until is not None:
        inner = inner.where(i.c.ts < until)
    sub = inner.subquery()
    stmt = select(
        sub.c.user_key,
        sub.c.event_id,
        sub.c.variant,
        func.min(sub.c.ts).label("ts"),
        func.count().label("impressions"),
    ).group_by(sub.c.user_key, sub.c.event_id, sub.c.variant)
    with db.read() as conn:
        rows = conn.execute(stmt).all()
    df = pd.DataFrame(rows, columns=["user_key", "event_id", "variant", "ts", "impressions"])
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    return df


def load_outcomes(
    db: Database, exp_id: str, *, since: dt.datetime, until: dt.datetime | None
) -> pd.DataFrame:
    """Clicks and conversions on items shown under the experiment, with the slate position.

    Joining on (request, item) ties each outcome to the impression it came from, so a click
    counts for the variant (or interleaving team) that showed the item.
    """
    i, e = impressions, events
    variant = i.c.experiments[exp_id].as_string()
    stmt = (
        select(
            i.c.user_key,
            e.c.type,
            e.c.value,
            e.c.ts,
            i.c.position,
            variant.label("variant"),
        )
        .select_from(
            e.join(i, and_(i.c.request_id == e.c.request_id, i.c.item_id == e.c.item_id))
        )
        .where(
            e.c.type.in_(("click", "conversion")),
            e.c.request_id.is_not(None),
            variant.is_not(None),
            e.c.ts >= since,
        )
    )
    if until is not None:
        stmt = stmt.where(e.c.ts < until)
    with db.read() as conn:
        rows = conn.execute(stmt).all()
    df = pd.DataFrame(rows, columns=["user_key", "type", "value", "ts", "position", "variant"])
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    return df


def load_pre_period(
    db: Database, exp_id: str, *, start: dt.datetime, days: int
) -> pd.DataFrame:
    """Per exposed user: clicks, conversions and revenue in the ``days`` before ``start``."""
    if days <= 0:
        return pd.DataFrame(columns=["user_key", "type", "n", "value"])
    i, e = impressions, events
    variant = i.c.experiments[exp_id].as_string()
    exposed = select(i.c.user_key).where(variant.is_not(None), i.c.ts >= start).distinct()
    stmt = (
        select(
            e.c.user_key,
            e.c.type,
            func.count().label("n"),
            func.sum(func.coalesce(e.c.value, 1.0)).label("value"),
        )
        .where(
            e.c.type.in_(("click", "conversion")),
            e.c.ts >= start - dt.timedelta(days=days),
            e.c.ts < start,
            e.c.user_key.in_(exposed.scalar_subquery()),
        )
        .group_by(e.c.user_key, e.c.type)
    )
    with db.read() as conn:
        rows = conn.execute(stmt).all()
    return pd.DataFrame(rows, columns=["user_key", "type", "n", "value"])
