"""Behaviour analytics with DuckDB over the event store: CTR, CVR, conversions per user, returns.

The events and impressions are copied into an in-memory DuckDB (through pandas, column by
column) and the aggregates run there; ``export_parquet`` writes the same tables as Parquet
for notebooks and other tools.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import select

from twinengine.catalog.models import item_topics
from twinengine.context import AppContext
from twinengine.discovery.events.models import events, impressions
from twinengine.errors import MissingDependency

_EVENT_COLS = ["event_id", "type", "ts", "user_key", "request_id", "surface", "item_id",
               "position", "kind", "value"]  # fmt: skip
_IMP_COLS = ["event_id", "position", "item_id", "request_id", "user_key", "surface", "ts"]


def _duck(ctx: AppContext, since: dt.datetime | None, until: dt.datetime | None) -> Any:
    try:
        import duckdb
        import pandas as pd
    except ImportError as exc:
        raise MissingDependency(exc.name or "duckdb", "recs") from exc
    ev = select(*[events.c[c] for c in _EVENT_COLS])
    im = select(*[impressions.c[c] for c in _IMP_COLS])
    if since is not None:
        ev, im = ev.where(events.c.ts >= since), im.where(impressions.c.ts >= since)
    if until is not None:
        ev, im = ev.where(events.c.ts < until), im.where(impressions.c.ts < until)
    with ctx.db.read() as conn:
        ev_rows = conn.execute(ev).all()
        im_rows = conn.execute(im).all()
        links = conn.execute(select(item_topics.c.item_id, item_topics.c.topic_id).distinct()).all()
    con = duckdb.connect()
    frames = {
        "events": pd.DataFrame(ev_rows, columns=_EVENT_COLS),
        "impressions": pd.DataFrame(im_rows, columns=_IMP_COLS),
        "item_topics": pd.DataFrame(links, columns=["item_id", "topic_id"]),
    }
    for name, frame in frames.items():
        for col in ("ts",):
            if col in frame:
                frame[col] = pd.to_datetime(frame[col], utc=True).dt.tz_localize(None)
        con.register(f"_{name}", frame)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM _{name}")
        con.unregister(f"_{name}")
    return con


# One row per shown item, with whether it was clicked / converted in the same request.
_SHOWN = """
CREATE VIEW shown AS
SELECT i.*, CAST(i.ts AS DATE) AS day,
       COALESCE(c.n, 0) > 0 AS clicked, COALESCE(v.n, 0) > 0 AS converted
FROM impressions i
LEFT JOIN (SELECT request_id, item_id, COUNT(*) n FROM events WHERE type = 'click'
           GROUP BY ALL) c USING (request_id, item_id)
LEFT JOIN (SELECT request_id, item_id, COUNT(*) n FROM events WHERE type = 'conversion'
           GROUP BY ALL) v USING (request_id, item_id)
"""


def _rows(con: Any, sql: str) -> list[dict[str, Any]]:
    cur = con.execute(sql)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def _agg(dim: str) -> str:
    # CTR = clicked shown items / shown items (a click counts where its request showed the item);
    # CVR = conversions / clicks over all events; users = distinct users with any event.
    return f"""
    WITH s AS (SELECT {dim} AS key, COUNT(*) AS impressions,
                      COUNT(*) FILTER (WHERE clicked) AS clicked
               FROM shown GROUP BY 1),
    e AS (SELECT {dim} AS key,
                 COUNT(*) FILTER (WHERE type = 'click') AS clicks,
                 COUNT(*) FILTER (WHERE type = 'conversion') AS conversions,
                 COUNT(DISTINCT user_key) AS users
          FROM (SELECT *, CAST(ts AS DATE) AS day FROM events) GROUP BY 1)
    SELECT COALESCE(s.key, e.key) AS key, COALESCE(impressions, 0) AS impressions,
           COALESCE(clicks, 0) AS clicks, COALESCE(conversions, 0) AS conversions,
           COALESCE(users, 0) AS users,
           ROUND(COALESCE(clicked, 0) / NULLIF(impressions, 0), 4) AS ctr,
           ROUND(COALESCE(conversions, 0) / NULLIF(clicks, 0), 4) AS cvr
    FROM s FULL OUTER JOIN e ON s.key = e.key
    """


def stats(
    ctx: AppContext,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    top: int = 10,
) -> dict[str, Any]:
    """Totals and breakdowns by day, surface, item and topic, plus D1/D7 returns."""
    con = _duck(ctx, since, until)
    con.execute(_SHOWN)
    total = _rows(
        con,
        """SELECT (SELECT COUNT(*) FROM events) AS events,
                  (SELECT COUNT(*) FROM shown) AS impressions,
                  (SELECT COUNT(*) FROM events WHERE type = 'click') AS clicks,
                  (SELECT COUNT(*) FROM events WHERE type = 'conversion') AS conversions,
                  (SELECT COUNT(DISTINCT user_key) FROM events) AS users""",
    )[0]
    clicked = con.execute("SELECT COUNT(*) FROM shown WHERE clicked").fetchone()[0]
    total["ctr"] = round(clicked / total["impressions"], 4) if total["impressions"] else 0
    total["cvr"] = round(total["conversions"] / total["clicks"], 4) if total["clicks"] else 0
    total["conversions_per_user"] = (
        round(total["conversions"] / total["users"], 4) if total["users"] else 0
    )
    by_day = _rows(con, _agg("day") + " ORDER BY key")
    by_surface = _rows(con, _agg("surface") + " ORDER BY impressions DESC")
    by_item = _rows(con, _agg("item_id") + f" ORDER BY clicks DESC, key LIMIT {int(top)}")
    by_topic = _rows(
        con,
        f"""SELECT t.topic_id AS key, COUNT(*) AS impressions,
                   COUNT(*) FILTER (WHERE clicked) AS clicks,
                   COUNT(*) FILTER (WHERE converted) AS conversions,
                   ROUND(COUNT(*) FILTER (WHERE clicked) / COUNT(*), 4) AS ctr
            FROM shown s JOIN item_topics t USING (item_id)
            GROUP BY 1 ORDER BY impressions DESC, key LIMIT {int(top)}""",
    )
    returns = _rows(
        con,
        """WITH d AS (SELECT DISTINCT user_key, CAST(ts AS DATE) AS day FROM events),
               f AS (SELECT user_key, MIN(day) AS first FROM d GROUP BY 1),
               last AS (SELECT MAX(day) AS last FROM d)
           SELECT
             ROUND(AVG(CASE WHEN EXISTS (SELECT 1 FROM d WHERE d.user_key = f.user_key
                        AND d.day = f.first + 1) THEN 1.0 ELSE 0.0 END)
                   FILTER (WHERE f.first + 1 <= (SELECT last FROM last)), 4) AS d1_return,
             ROUND(AVG(CASE WHEN EXISTS (SELECT 1 FROM d WHERE d.user_key = f.user_key
                        AND d.day = f.first + 7) THEN 1.0 ELSE 0.0 END)
                   FILTER (WHERE f.first + 7 <= (SELECT last FROM last)), 4) AS d7_return
           FROM f""",
    )[0]
    con.close()
    for table in (by_day,):
        for row in table:
            row["key"] = str(row["key"])
    return {"total": total, "returns": returns, "by_day": by_day, "by_surface": by_surface,
            "by_item": by_item, "by_topic": by_topic}  # fmt: skip


def export_parquet(ctx: AppContext, folder: Path) -> list[Path]:
    """Write events, impressions and item_topics as Parquet files into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    con = _duck(ctx, None, None)
    out = []
    for name in ("events", "impressions", "item_topics"):
        path = folder / f"{name}.parquet"
        target = path.as_posix().replace("'", "''")
        con.execute(f"COPY {name} TO '{target}' (FORMAT PARQUET)")
        out.append(path)
    con.close()
    return out
