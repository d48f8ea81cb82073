"""Serving a slate: candidates, then the ranking engine's re-rank, plus experiment exposure.

This is the one place that calls ``discovery.ranking.service.rerank`` (when that module is
installed) and applies experiments: A/B variant configs (``generator_mix``, ``ranking_model``)
and interleaving, which merges ranker a's and b's slates by team draft. The feed, related,
trending and topic endpoints and the gallery all come through ``recommend``.
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
    ctx: AppContext, surface: str, user_key: str | None, cands: list[Candidate], k: int,
    model: str | None = None,
) -> list[Candidate]:
    try:
        from twinengine.discovery.ranking.service import rerank
    except ImportError:
        return cands[:k]
    try:
        return rerank(ctx, surface=surface, user_key=user_key, candidates=cands, k=k, model=model)
    except InvalidInput:
        if model is None:
            raise
        # A variant naming a model this process cannot load must not fail the page.
        log.warning("ranking model %r of a running experiment cannot be loaded", model)
        return rerank(ctx, surface=surface, user_key=user_key, candidates=cands, k=k)


def _experiments(
    ctx: AppContext, user_key: str | None, surface: str
) -> tuple[dict[str, str], dict[str, Any]]:
    """The user's experiment assignments on this surface and their merged variant config."""
    if not user_key:
        return {}, {}
    try:
        from twinengine.discovery.experiments.service import serving_plan
    except ImportError:
        return {}, {}
    return serving_plan(ctx, user_key=user_key, surface=surface)


def _slate(
    ctx: AppContext, config: dict[str, Any], *, blend: dict[str, float], surface: str,
    user_key: str | None, k: int, **query: Any,
) -> list[Candidate]:
    """Candidates then re-rank, as a variant config says: ``generator_mix`` overrides the
    surface's generator weights, ``ranking_model`` names the ranking model version."""
    mix = config.get("generator_mix")
    cands = service.generate(
        ctx, surface=surface, user_key=user_key, k=POOL * k,
        weights={**blend, **mix} if isinstance(mix, dict) else None, **query,
    )  # fmt: skip
    model = config.get("ranking_model")
    model = model if isinstance(model, str) else None
    return _rerank(ctx, surface, user_key, cands, k, model=model)


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
    policy, blend = service.blend_for(ctx, surface, user_key)
    assigned, config = _experiments(ctx, user_key, surface)
    request_id = uuid.uuid4().hex
    query = {"item_id": item_id, "flt": flt, "include_converted": include_converted}
    pair = config.pop("interleaving", None)
    if pair:
        from twinengine.discovery.experiments.interleaving import interleave

        # Team-draft interleaving: both rankers' slates merged, the label (teams and rank
        # gaps) logged as the experiment's value with the impression.
        a, b = (
            _slate(ctx, {**config, **pair[side]}, blend=blend, surface=surface,
                   user_key=user_key, k=k, **query)
            for side in ("a", "b")
        )  # fmt: skip
        merged, assigned[pair["experiment"]] = interleave(
            [c.item_id for c in a], [c.item_id for c in b], key=request_id, k=k
        )
        by_id = {c.item_id: c for c in (*b, *a)}
        slate = [by_id[i] for i in merged]
    else:
        slate = _slate(ctx, config, blend=blend, surface=surface, user_key=user_key, k=k, **query)
    items = {}
    if with_items and slate:
        items = _items(ctx, [c.item_id for c in slate])
    data = [
        RecItem(id=c.item_id, score=c.score, source=c.source, item=items.get(c.item_id))
        for c in slate
        if not with_items or c.item_id in items
    ]
    return RecResponse(
        request_id=request_id,
        surface=surface,
        user=user_key,
        policy=policy,
        experiments=assigned,
        data=data,
        count=len(data),
    )
