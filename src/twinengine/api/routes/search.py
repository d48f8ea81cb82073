"""Search and related items: ``GET /v1/search``, ``GET /v1/items/{id}/similar``."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from starlette.concurrency import run_in_threadpool

from twinengine.api.deps import ContextDep, Lang, MediaQ, Short, TopicQ
from twinengine.catalog import service as catalog
from twinengine.discovery.index import service
from twinengine.discovery.index.schemas import IndexStatus, SearchHit, SearchResults
from twinengine.discovery.index.state import state_of

router = APIRouter(tags=["search"])

# Search runs on the event loop, not in FastAPI's thread pool: its work is CPU in memory
# (~1-2 ms), and on this 2-core machine the pool's two thread hops per request cost ~1 ms of
# CPU themselves (an empty endpoint: 1.11 ms sync vs 0.08 ms async, in-process). Only until
# the embedding model is loaded (seconds, at start-up) does a query go to the pool, so the
# loop keeps answering other requests meanwhile.


@router.get("/search", response_model=SearchResults)
async def search(
    ctx: ContextDep,
    q: Annotated[str, Query(min_length=1, max_length=512, description="the query")],
    mode: Annotated[Literal["lexical", "dense", "hybrid"], Query()] = "hybrid",
    k: Annotated[int, Query(description="results per page")] = 10,
    offset: Annotated[int, Query(description="results to skip (pagination)")] = 0,
    topic: TopicQ = [],  # noqa: B006 - FastAPI copies query defaults
    language: Lang = None,
    collection: Short = None,
    media: MediaQ = None,
    published_from: dt.date | None = None,
    published_to: dt.date | None = None,
) -> SearchResults:
    """Ranked items for ``q`` within the filters, with facet counts and highlighted snippets."""
    flt = catalog.make_filter(
        topics=topic,
        language=language,
        collection=collection,
        media=media,
        published_from=published_from,
        published_to=published_to,
    )
    if state_of(ctx).ready:
        return service.search(ctx, q=q, flt=flt, k=k, offset=offset, mode=mode)
    return await run_in_threadpool(service.search, ctx, q=q, flt=flt, k=k, offset=offset, mode=mode)


@router.get("/items/{item_id}/similar", response_model=list[SearchHit])
async def similar(
    ctx: ContextDep,
    item_id: Annotated[str, Path(min_length=1, max_length=128)],
    k: int = 10,
    topic: TopicQ = [],  # noqa: B006
    language: Lang = None,
    collection: Short = None,
    media: MediaQ = None,
) -> list[SearchHit]:
    """Items most like this one (dense neighbours fused with its distinctive words)."""
    flt = catalog.make_filter(topics=topic, language=language, collection=collection, media=media)
    return service.similar(ctx, item_id=item_id, k=k, flt=flt)


@router.get("/search/index", response_model=IndexStatus)
def index_status(ctx: ContextDep) -> IndexStatus:
    """What the search index holds."""
    return service.index_status(ctx)
