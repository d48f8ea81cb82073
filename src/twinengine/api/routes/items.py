"""Items, facets and topics."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Path, Query

from twinengine.api.deps import DbDep, Lang, MediaQ, SettingsDep, Short, TopicQ, check_limit
from twinengine.catalog import service
from twinengine.catalog.schemas import FacetCounts, FacetPublic, ItemPage, ItemPublic, TopicPublic

router = APIRouter(tags=["catalog"])

ItemId = Annotated[str, Path(min_length=1, max_length=128)]


@router.get("/items", response_model=ItemPage)
def list_items(
    db: DbDep,
    settings: SettingsDep,
    topic: TopicQ = [],  # noqa: B006 - FastAPI copies query defaults
    language: Lang = None,
    collection: Short = None,
    media: MediaQ = None,
    published_from: dt.date | None = None,
    published_to: dt.date | None = None,
    q: Annotated[str | None, Query(max_length=512, description="plain keyword filter")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="page size (capped by settings)")] = 20,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> ItemPage:
    """Items newest first, filtered; pass ``next_cursor`` as ``cursor`` for the next page."""
    flt = service.make_filter(
        topics=topic,
        language=language,
        collection=collection,
        media=media,
        published_from=published_from,
        published_to=published_to,
        q=q,
    )
    return service.list_items(db, flt=flt, limit=check_limit(limit, settings), cursor=cursor)


@router.get("/items/{item_id}", response_model=ItemPublic)
def get_item(db: DbDep, item_id: ItemId) -> ItemPublic:
    """One item with its topics."""
    return service.get_item(db, item_id=item_id)


@router.get("/facets", response_model=list[FacetPublic])
def list_facets(db: DbDep) -> list[FacetPublic]:
    """The taxonomy's facets with their topics and item counts."""
    return service.list_facets(db)


@router.get("/facet-counts", response_model=FacetCounts)
def facet_counts(
    db: DbDep,
    topic: TopicQ = [],  # noqa: B006
    language: Lang = None,
    collection: Short = None,
    media: MediaQ = None,
    q: Annotated[str | None, Query(max_length=512)] = None,
) -> FacetCounts:
    """Counts of topics, languages, collections and media over the filtered items."""
    flt = service.make_filter(
        topics=topic, language=language, collection=collection, media=media, q=q
    )
    return service.facet_counts(db, flt=flt)


@router.get("/topics", response_model=list[TopicPublic])
def list_topics(db: DbDep) -> list[TopicPublic]:
    """Every topic with its item count."""
    return service.list_topics(db)


@router.get("/topics/{topic_id}", response_model=TopicPublic)
def get_topic(db: DbDep, topic_id: Annotated[str, Path(max_length=128)]) -> TopicPublic:
    """One topic."""
    return service.get_topic(db, topic_id=topic_id)
