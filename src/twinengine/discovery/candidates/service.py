"""Candidate generation: blend the generators for a surface, filter, return the top ``k``.

Blends (weights on each generator's scores scaled to a max of 1):

- ``feed`` for a user with history: popularity plus the personal signals (topic affinity,
  CF), smoothed CTR, a little co-occurrence, embedding/TF-IDF neighbours, trend, freshness;
- ``feed`` cold start (no history yet): time-decayed popularity, smoothed CTR, trending and a
  little freshness, so a new user sees what others engage with now, never an empty page;
- ``related``: co-occurrence and item-to-item CF (behaviour), TF-IDF and embedding
  neighbours and topic overlap (content), a little popularity;
- ``trending``: velocity, falling back to popular; ``topic``: popular and fresh within the
  topic, personalised by CF when the user has history;
- any generator name alone (``popular``, ``cf``, ...) for baselines.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from twinengine._compat import trim_native_heap
from twinengine.context import AppContext
from twinengine.discovery.candidates.generators import GENERATORS
from twinengine.discovery.candidates.schemas import Candidate
from twinengine.discovery.candidates.state import RecState, build_state
from twinengine.errors import InvalidInput

log = logging.getLogger(__name__)

_KEY = "recs"

# Weights measured on the simulator (true NDCG@10 of users with history, 150 users x 6 days
# and 400 x 10): popularity carries the appeal everyone shares, topic affinity and CF the
# personal part, smoothed CTR corrects popularity for exposure. TF-IDF and co-occurrence
# alone scored below popularity there, so their weights stay small.
BLENDS: dict[str, dict[str, float]] = {
    "feed": {"affinity": 1.0, "popular": 0.6, "cf": 0.4, "quality": 0.3, "cooc": 0.1,
             "embed": 0.1, "content": 0.05, "trending": 0.05, "fresh": 0.02},
    "cold_start": {"popular": 1.0, "quality": 0.2, "trending": 0.2, "fresh": 0.05},
    "related": {"cooc": 1.0, "embed": 0.8, "content": 0.8, "cf": 0.6, "affinity": 0.4,
                "popular": 0.05},
    "trending": {"trending": 1.0, "popular": 0.05},
    "topic": {"popular": 0.6, "cf": 0.5, "affinity": 0.3, "fresh": 0.3, "trending": 0.2},
}  # fmt: skip


@dataclass(frozen=True)
class RecFilter:
    """Which items may be recommended."""

    topics: tuple[str, ...] = ()  # an item must carry all of them
    exclude_topics: tuple[str, ...] = ()
    language: str | None = None
    media: str | None = None
    exclude: tuple[str, ...] = ()  # hidden or already shown ids


def state(ctx: AppContext) -> RecState:
    """The current state; built on first use, rebuilt in the background when stale."""
    holder = ctx.extras.setdefault(_KEY, {"state": None, "lock": threading.Lock(), "at": 0.0})
    st = holder["state"]
    if st is None:
        with holder["lock"]:
            if holder["state"] is None:
                _rebuild(ctx, holder, dt.datetime.now(dt.UTC))
            return holder["state"]
    last = max(holder["at"], holder.get("checked", 0.0))
    if time.monotonic() - last > ctx.settings.recs_cache_seconds and not holder.get("building"):
        holder["building"] = True
        threading.Thread(
            target=_background, args=(ctx, holder), daemon=True, name="recs-refresh"
        ).start()
    return st


# With no new event or catalog change, the state is still rebuilt this often: time alone moves
# the trending windows and the popularity decay.
_MAX_UNCHANGED_SECONDS = 300.0
# Background rebuilds keep the EASE model this long (an O(items^3) refit: seconds of CPU every
# 30 s under traffic); counts, histories and co-occurrence are still rebuilt every time.
_CF_REFIT_SECONDS = 300.0


def _watermark(ctx: AppContext) -> tuple:
    """A cheap fingerprint of what the state is built from (counts and latest times)."""
    from sqlalchemy import func, select

    from twinengine.catalog.models import item_topics, items
    from twinengine.discovery.events.models import events

    with ctx.db.read() as conn:
        ev = conn.execute(select(func.count(), func.max(events.c.received_at))).one()
        it = conn.execute(select(func.count(), func.max(items.c.updated_at))).one()
        links = conn.execute(select(func.count()).select_from(item_topics)).scalar_one()
    return (*ev, *it, links)


def _background(ctx: AppContext, holder: dict) -> None:
    try:
        with holder["lock"]:
            # Rebuilding reads every event of the window and refits the models: hundreds of
            # ms of CPU that stall requests sharing the GIL. Skip it when nothing changed.
            mark = _watermark(ctx)
            if mark == holder.get("mark") and (
                time.monotonic() - holder["at"] < _MAX_UNCHANGED_SECONDS
            ):
                holder["checked"] = time.monotonic()
                return
            _rebuild(ctx, holder, dt.datetime.now(dt.UTC), mark=mark, reuse_cf=True)
    except Exception:
        log.exception("recommendation state refresh failed; serving the previous one")
    finally:
        holder["building"] = False


def _rebuild(
    ctx: AppContext, holder: dict, now: dt.datetime, mark: tuple | None = None,
    reuse_cf: bool = False,
) -> None:
    # The mark is read before the build, so a change made during it triggers the next one.
    holder["mark"] = mark if mark is not None else _watermark(ctx)
    prev: RecState | None = holder["state"]
    fresh_cf = (
        reuse_cf and prev is not None and prev.cf_built_at is not None
        and (now - prev.cf_built_at).total_seconds() < _CF_REFIT_SECONDS
    )
    holder["state"] = build_state(
        ctx.db,
        now=now,
        half_life_days=ctx.settings.recs_half_life_days,
        cf=ctx.settings.recs_cf,
        reuse_cf=prev if fresh_cf else None,
    )
    holder["at"] = time.monotonic()
    trim_native_heap()  # the previous state's arrays: tens of MB, every 30 s under traffic


def refresh(ctx: AppContext, *, now: dt.datetime | None = None) -> RecState:
    """Rebuild counts and models now (as of ``now``: the simulator replays time)."""
    holder = ctx.extras.setdefault(_KEY, {"state": None, "lock": threading.Lock(), "at": 0.0})
    with holder["lock"]:
        _rebuild(ctx, holder, now or dt.datetime.now(dt.UTC))
        return holder["state"]


def has_history(ctx: AppContext, user_key: str | None) -> bool:
    """Whether the user has interactions the recommenders know of."""
    return bool(user_key) and user_key in state(ctx).histories


def blend_for(ctx: AppContext, surface: str, user_key: str | None) -> tuple[str, dict[str, float]]:
    """(policy name, generator weights) for a surface and user."""
    if surface == "feed":
        if has_history(ctx, user_key):
            return "personalised", BLENDS["feed"]
        return "cold_start", BLENDS["cold_start"]
    if surface in BLENDS:
        return surface, BLENDS[surface]
    if surface in GENERATORS:
        return surface, {surface: 1.0}
    names = ", ".join(sorted({*BLENDS, *GENERATORS} - {"cold_start"}))
    raise InvalidInput(f"unknown surface {surface!r}: use one of {names}")


def generate(
    ctx: AppContext,
    *,
    surface: str,
    user_key: str | None = None,
    item_id: str | None = None,
    k: int = 100,
    flt: RecFilter | None = None,
    now: dt.datetime | None = None,
    include_converted: bool = False,
    weights: dict[str, float] | None = None,
) -> list[Candidate]:
    """Scored candidates for a surface, each tagged with the generator that contributed most.

    ``item_id`` seeds ``related``. Items the user converted on are left out unless
    ``include_converted``. ``now`` is accepted for replayed time; the state in force is the
    one last built (``refresh``).
    """
    if k < 1:
        raise InvalidInput("k must be at least 1")
    st = state(ctx)
    row = None
    if item_id is not None:
        row = st.row_of.get(item_id)
        if row is None:
            from twinengine.catalog import service as catalog

            catalog.get_item(ctx.db, item_id=item_id)  # NotFound for an unknown id
            st = refresh(ctx)  # a brand-new item: the state predates it
            row = st.row_of.get(item_id)
    if surface == "related" and row is None:
        raise InvalidInput("related needs an item_id")
    policy, blend = blend_for(ctx, surface, user_key)
    if weights is not None:
        blend = weights
    scores: dict[str, np.ndarray] = {}
    for name, w in blend.items():
        if w <= 0 or name not in GENERATORS:
            continue
        vec = GENERATORS[name](ctx, st, user_key, row)
        if vec is not None and vec.size == st.n:
            scores[name] = vec
    mask = _mask(ctx, st, flt, user_key, row, include_converted)
    total = np.zeros(st.n)
    contrib = []
    names = list(scores)
    for name in names:
        vec = scores[name]
        top = vec.max(initial=0.0)
        part = blend[name] * (vec / top) if top > 0 else np.zeros(st.n)
        contrib.append(part)
        total += part
    # Tiny tie-breakers keep the order stable and sensible when behaviour is sparse.
    total += 1e-6 * (st.popular / max(st.popular.max(initial=0.0), 1e-9)) + 1e-9 * st.fresh
    total = np.where(mask, total, -np.inf)
    n_ok = int(mask.sum())
    kk = min(k, n_ok)
    if kk == 0:
        return []
    top_rows = np.argpartition(-total, kk - 1)[:kk]
    top_rows = top_rows[np.argsort(-total[top_rows], kind="stable")]
    stacked = np.vstack(contrib) if contrib else None
    out = []
    for r in top_rows.tolist():
        if stacked is not None and stacked[:, r].max() > 0:
            source = names[int(np.argmax(stacked[:, r]))]
        else:
            source = "fresh" if policy == "cold_start" else policy
        feats = {name: float(scores[name][r]) for name in names}
        feats["blend"] = float(total[r])
        out.append(
            Candidate(item_id=st.ids[r], score=float(total[r]), source=source, features=feats)
        )
    return out


def _mask(
    ctx: AppContext,
    st: RecState,
    flt: RecFilter | None,
    user_key: str | None,
    row: int | None,
    include_converted: bool,
) -> np.ndarray:
    mask = np.ones(st.n, dtype=bool)
    if row is not None:
        mask[row] = False
    if flt is not None:
        if flt.topics:
            cols = st.topic_cols(list(flt.topics))
            if len(cols) < len(flt.topics):
                return np.zeros(st.n, dtype=bool)  # a topic nothing carries
            mask &= np.asarray((st.item_topics[:, cols] > 0).sum(axis=1)).ravel() == len(cols)
        if flt.exclude_topics:
            cols = st.topic_cols(list(flt.exclude_topics))
            if cols:
                mask &= np.asarray(st.item_topics[:, cols].sum(axis=1)).ravel() == 0
        if flt.media:
            mask &= st.media == flt.media
        if flt.language:
            mask &= np.fromiter((flt.language in s for s in st.languages), bool, count=st.n)
        _drop(mask, st, flt.exclude)
    if user_key and not include_converted:
        hist = st.histories.get(user_key)
        if hist is not None and hist.converted:
            mask[list(hist.converted)] = False
    return mask


def _drop(mask: np.ndarray, st: RecState, ids: Iterable[str]) -> None:
    for i in ids:
        r = st.row_of.get(i)
        if r is not None:
            mask[r] = False
