"""Event log SQL: batch insert (idempotent by event id) and the readers others build on.

The write path is the hot one (tens of thousands of events a second), so on SQLite it talks to
the driver directly with ``executemany`` inside one ``BEGIN IMMEDIATE`` transaction; on
Postgres it uses SQLAlchemy Core's batched multi-row INSERT ... ON CONFLICT DO NOTHING
RETURNING, which also tells which events were new. Only ``events`` is written: the
per-item ``impressions`` rows are a view over the impression events' slates.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.exc import DBAPIError

from twinengine.discovery.events.models import events, impressions
from twinengine.errors import BackendUnavailable
from twinengine.storage import Database

EVENT_COLS = (
    "event_id", "type", "ts", "user_id", "session_id", "user_key", "request_id", "surface",
    "item_id", "position", "slate", "experiments", "kind", "value", "attributes",
)  # fmt: skip
_SQLITE_EVENTS = (
    f"INSERT INTO events ({', '.join(EVENT_COLS)}) VALUES ({', '.join('?' * len(EVENT_COLS))}) "
    "ON CONFLICT(event_id) DO NOTHING"
)


def utc(ts: dt.datetime | None, now: dt.datetime) -> dt.datetime:
    """An aware UTC timestamp (naive input is taken as UTC; None is now)."""
    if ts is None:
        return now
    if ts.tzinfo is None:
        return ts.replace(tzinfo=dt.UTC)
    return ts.astimezone(dt.UTC)


def event_rows(events_: list[dict[str, Any]], now: dt.datetime) -> list[dict[str, Any]]:
    """``events`` rows of validated event dicts: UTC timestamps and the user key filled in."""
    out = []
    for e in events_:
        row = {c: e.get(c) for c in EVENT_COLS}
        row["ts"] = utc(row["ts"], now)
        row["user_key"] = e.get("user_id") or f"s:{e.get('session_id')}"
        out.append(row)
    return out


# One encoder built once: ``json.dumps`` with non-default separators builds a new one per call.
_dumps_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _sqlite_ts(ts: dt.datetime) -> str:
    # The text form SQLAlchemy's SQLite DateTime writes and parses back (naive UTC,
    # "YYYY-MM-DD HH:MM:SS.ffffff"). One isoformat call and a slice: a UTC or naive value
    # needs no replace(), which costs more than the formatting on this hot path.
    s = ts.isoformat(" ", "microseconds")
    if len(s) == 26 or s.endswith("+00:00"):
        return s[:26]
    return ts.astimezone(dt.UTC).isoformat(" ", "microseconds")[:26]


def insert_batch(
    db: Database, batch: list[dict[str, Any]], *, now: dt.datetime, fsync: bool
) -> tuple[int, int]:
    """Store validated events (unique ids) in one transaction; return (new, impression rows).

    Events whose ``event_id`` is already stored are skipped (their impressions are the view
    of the stored slate): re-sending a batch changes nothing.
    """
    if db.dialect == "sqlite":
        return _insert_sqlite(db, batch, now=now, fsync=fsync)
    return _insert_generic(db, event_rows(batch, now))


def _sqlite_rows(new: list[dict[str, Any]], now: dt.datetime) -> tuple[list[tuple[Any, ...]], int]:
    # One pass from validated event dicts to driver tuples: this loop is the hot path, so it
    # binds methods to locals and formats each distinct timestamp once per batch.
    now_s = _sqlite_ts(now)
    dump = _dumps_compact
    evs: list[tuple[Any, ...]] = []
    add = evs.append
    n_imps = 0
    ts_text: dict[dt.datetime, str] = {}
    for e in new:
        get = e.get
        ts = get("ts")
        if ts is None:
            ts_s = now_s
        else:
            ts_s = ts_text.get(ts)  # type: ignore[assignment]
            if ts_s is None:
                ts_s = ts_text[ts] = _sqlite_ts(ts)
        user_id, session_id = get("user_id"), get("session_id")
        exps, slate, attrs = get("experiments"), get("slate"), get("attributes")
        if slate:
            n_imps += len(slate)
        add(
            (e["event_id"], e["type"], ts_s, user_id, session_id, user_id or f"s:{session_id}",
             get("request_id"), get("surface"), get("item_id"), get("position"),
             None if slate is None else dump(slate), None if exps is None else dump(exps),
             get("kind"), get("value"), None if attrs is None else dump(attrs))
        )  # fmt: skip
    return evs, n_imps


def _insert_sqlite(
    db: Database, rows: list[dict[str, Any]], *, now: dt.datetime, fsync: bool
) -> tuple[int, int]:
    fairy = db.engine.raw_connection()
    conn: Any = fairy.driver_connection
    try:
        # FULL makes the WAL commit itself fsync, so a 200 survives power loss, not only a
        # crashed process. It cannot change inside a transaction, hence before BEGIN.
        if fsync:
            conn.execute("PRAGMA synchronous=FULL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            ids = [r["event_id"] for r in rows]
            seen: set[str] = set()
            for start in range(0, len(ids), 30000):
                chunk = ids[start : start + 30000]
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT event_id FROM events WHERE event_id IN ({marks})"
                seen.update(r[0] for r in conn.execute(sql, chunk).fetchall())
            new = [r for r in rows if r["event_id"] not in seen] if seen else rows
            evs, n_imps = _sqlite_rows(new, now)
            conn.executemany(_SQLITE_EVENTS, evs)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            if fsync:
                conn.execute("PRAGMA synchronous=NORMAL")
    except Exception as exc:
        if type(exc).__module__.startswith("sqlite3"):
            raise BackendUnavailable(f"event store write failed: {exc}") from exc
        raise
    finally:
        fairy.close()
    return len(new), n_imps


def _insert_generic(db: Database, rows: list[dict[str, Any]]) -> tuple[int, int]:
    try:
        with db.write() as conn:
            step = max(1, db.max_params // len(EVENT_COLS))
            inserted: set[str] = set()
            for start in range(0, len(rows), step):
                stmt = (
                    db.insert(events)
                    .on_conflict_do_nothing(index_elements=["event_id"])
                    .returning(events.c.event_id)
                )
                res = conn.execute(stmt, rows[start : start + step])
                inserted.update(r[0] for r in res)
            n_imps = sum(
                len(r["slate"] or ()) for r in rows if r["event_id"] in inserted and r["slate"]
            )
    except DBAPIError as exc:
        raise BackendUnavailable(f"event store write failed: {exc.orig}") from exc
    return len(inserted), n_imps


# --- readers -----------------------------------------------------------------------------------
def _as_utc(ts: Any) -> Any:
    # SQLite hands back naive UTC datetimes, Postgres aware ones: readers see aware UTC.
    if isinstance(ts, dt.datetime) and ts.tzinfo is None:
        return ts.replace(tzinfo=dt.UTC)
    return ts


def select_impressions(
    db: Database,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    surface: str | None = None,
) -> list[dict[str, Any]]:
    """Impression rows with the clicks and conversions on the same (request, item) joined."""
    clicks = (
        select(events.c.request_id, events.c.item_id, func.count().label("n"))
        .where(events.c.type == "click", events.c.request_id.is_not(None))
        .group_by(events.c.request_id, events.c.item_id)
        .subquery("c")
    )
    convs = (
        select(
            events.c.request_id,
            events.c.item_id,
            func.count().label("n"),
            func.sum(func.coalesce(events.c.value, 1.0)).label("v"),
        )
        .where(events.c.type == "conversion", events.c.request_id.is_not(None))
        .group_by(events.c.request_id, events.c.item_id)
        .subquery("v")
    )
    i = impressions
    stmt = (
        select(
            i.c.event_id,
            i.c.request_id,
            i.c.user_key,
            i.c.surface,
            i.c.ts,
            i.c.item_id,
            i.c.position,
            i.c.experiments,
            func.coalesce(clicks.c.n, 0).label("clicks"),
            func.coalesce(convs.c.n, 0).label("conversions"),
            func.coalesce(convs.c.v, 0.0).label("conversion_value"),
        )  # fmt: skip
        .select_from(
            i.outerjoin(
                clicks, and_(clicks.c.request_id == i.c.request_id, clicks.c.item_id == i.c.item_id)
            ).outerjoin(
                convs, and_(convs.c.request_id == i.c.request_id, convs.c.item_id == i.c.item_id)
            )
        )
        .order_by(i.c.ts, i.c.event_id, i.c.position)
    )
    if since is not None:
        stmt = stmt.where(i.c.ts >= since)
    if until is not None:
        stmt = stmt.where(i.c.ts < until)
    if surface is not None:
        stmt = stmt.where(i.c.surface == surface)
    with db.read() as conn:
        out = []
        for r in conn.execute(stmt).mappings():
            row = dict(r)
            row["ts"] = _as_utc(row["ts"])
            row["clicked"] = row["clicks"] > 0
            row["converted"] = row["conversions"] > 0
            out.append(row)
        return out


def select_events(
    db: Database,
    *,
    types: Sequence[str] | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    user_key: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Raw event rows, oldest first."""
    e = events
    stmt = select(*[e.c[c] for c in EVENT_COLS], e.c.received_at).order_by(e.c.ts, e.c.event_id)
    if types:
        stmt = stmt.where(e.c.type.in_(list(types)))
    if since is not None:
        stmt = stmt.where(e.c.ts >= since)
    if until is not None:
        stmt = stmt.where(e.c.ts < until)
    if user_key is not None:
        stmt = stmt.where(e.c.user_key == user_key)
    if limit is not None:
        stmt = stmt.limit(limit)
    with db.read() as conn:
        out = []
        for r in conn.execute(stmt).mappings():
            row = dict(r)
            row["ts"] = _as_utc(row["ts"])
            row["received_at"] = _as_utc(row["received_at"])
            out.append(row)
        return out


def select_event_ids(db: Database) -> set[str]:
    """Every stored event id."""
    with db.read() as conn:
        return {r[0] for r in conn.execute(select(events.c.event_id))}


def count_events(db: Database) -> int:
    """How many events are stored."""
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(events)).scalar_one())
