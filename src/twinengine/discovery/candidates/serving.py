"""Serving a slate: candidates, then the ranking engine's re-rank, plus experiment exposure.

This is the one place that calls ``discovery.ranking.service.rerank`` (when that module is
installed) and ``discovery.experiments.service.assignments_for``; the feed, related, trending
and topic endpoints and the gallery all come through ``recommend``.
"""

from __future__ import annotations

import logging
import threading
import uuid
import weakref
from collections.abc import Sequence
from typing import Any

from twinengine.catalog import service as catalog
from twinengine.catalog.schemas import ItemPublic
from twinengine.context import AppContext
from twinengine.discovery.candidates import service
from twinengine.discovery.candidates.schemas import Candidate, RecItem, RecResponse
from twinengine.discovery.candidates.service import RecFilter
from twinengine.errors import InvalidInput

log = logging.getLogger(__name__)

# Candidates fetched per slate item: enough for a re-ranker to reorder meaningfully.
POOL = 5


class _ItemCache(dict[str, ItemPublic]):
    """Items by id for slates: a page of 10 cards must not cost a catalog query each time."""

    limit = 50_000
    __hash__ = object.__hash__  # identity: the WeakSet below tracks each cache object


_CACHES: weakref.WeakSet[_ItemCache] = weakref.WeakSet()
_LISTENING = threading.Lock()
_listener_added = False


def _on_catalog_change(upserted: Sequence[str], deleted: Sequence[str]) -> None:
    for cache in list(_CACHES):
        for item_id in (*upserted, *deleted):
            cache.pop(item_id, None)


def _items(ctx: AppContext, ids: list[str]) -> dict[str, ItemPublic]:
    global _listener_added
    cache: Any = ctx.extras.get("recs_items")
    if cache is None:
        cache = ctx.extras["recs_items"] = _ItemCache()
        _CACHES.add(cache)
        with _LISTENING:
            if not _listener_added:
                catalog.add_change_listener(_on_catalog_change)
                _listener_added = True
    missing = [i for i in ids if i not in cache]
    if missing:
        if len(cache) > cache.limit:
            cache.clear()
        for item in catalog.get_items(ctx.db, ids=missing):
            cache[item.id] = item
    return {i: cache[i] for i in ids if i in cache}


def _rerank(
    ctx: AppContext, surface: str, user_key: str | None, cands: list[Candidate], k: int
) -> list[Candidate]:
    try:
        from twinengine.discovery.ranking.service import rerank
    except ImportError:
        return cands[:k]
    return rerank(ctx, surface=surface, user_key=user_key, candidates=cands, k=k)


def _experiments(ctx: AppContext, user_key: str | None, surface: str) -> dict[str, str]:
    if not user_key:
        return {}
    try:
        from twinengine.discovery.experiments.service import assignments_for
    except ImportError:
        return {}
    return dict(assignments_for(ctx, user_key=user_key, surface=surface))


def recommend(
    ctx: AppContext,
    *,
    surface: str,
    user_key: str | None = None,
    item_id: str | None = None,
    k: int = 10,
    flt: RecFilter | None = None,
    include_converted: bool = False,
    with_items: bool = True,
) -> RecResponse:
    """A slate for ``surface`` with a fresh ``request_id`` to log its impression under."""
    if not 1 <= k <= ctx.settings.max_page_size:
        raise InvalidInput(f"k must be between 1 and {ctx.settings.max_page_size}")
    policy, _ = service.blend_for(ctx, surface, user_key)
    cands = service.generate(
        ctx,
        surface=surface,
        user_key=user_key,
        item_id=item_id,
        k=POOL * k,
        flt=flt,
        include_converted=include_converted,
    )
    slate = _rerank(ctx, surface, user_key, cands, k)
    items = {}
    if with_items and slate:
        items = _items(ctx, [c.item_id for c in slate])
    data = [
        RecItem(id=c.item_id, score=c.score, source=c.source, item=items.get(c.item_id))
        for c in slate
        if not with_items or c.item_id in items
    ]
    return RecResponse(
        request_id=uuid.uuid4().hex,
        surface=surface,
        user=user_key,
        policy=policy,
        experiments=_experiments(ctx, user_key, surface),
        data=data,
        count=len(data),
    )
