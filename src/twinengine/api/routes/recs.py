"""Recommendations: personalised feed, related items, trending, topic pages."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from twinengine.api.app import register
from twinengine.api.deps import ContextDep, Lang, MediaQ
from twinengine.context import AppContext
from twinengine.discovery.candidates import service
from twinengine.discovery.candidates.schemas import RecResponse
from twinengine.discovery.candidates.service import RecFilter
from twinengine.discovery.candidates.serving import recommend
from twinengine.errors import AppError, InvalidInput

log = logging.getLogger(__name__)
router = APIRouter(tags=["recommendations"])

UserQ = Annotated[str | None, Query(max_length=128, description="known user id")]
SessionQ = Annotated[str | None, Query(max_length=128, description="anonymous session id")]
TopicsQ = Annotated[list[str], Query(max_length=10, description="topic ids; items carry all")]
NotTopicsQ = Annotated[list[str], Query(max_length=20, description="topic ids to leave out")]
ExcludeQ = Annotated[list[str], Query(max_length=200, description="hidden or seen item ids")]
K = Annotated[int, Query(ge=1, le=100, description="slate size")]
Converted = Annotated[bool, Query(description="also recommend items the user already converted on")]
Details = Annotated[bool, Query(description="include each item's full record (false: ids only)")]


@dataclass(frozen=True)
class SlateQuery:
    """Who asks, slate size, hidden items, language and media: the query every slate takes."""

    user_key: str | None
    k: int
    details: bool
    language: str | None
    media: str | None
    exclude: tuple[str, ...]

    def flt(self, topics: Sequence[str] = (), exclude_topics: Sequence[str] = ()) -> RecFilter:
        """The filter of this query plus the given topic constraints."""
        return RecFilter(
            topics=tuple(topics),
            exclude_topics=tuple(exclude_topics),
            language=self.language,
            media=self.media,
            exclude=self.exclude,
        )


# One dependency declares these parameters for all four endpoints. It is async on purpose:
# FastAPI runs a sync dependency (a class included) on the thread pool, a hop per request.
async def slate_query(
    user: UserQ = None,
    session: SessionQ = None,
    k: K = 10,
    language: Lang = None,
    media: MediaQ = None,
    exclude: ExcludeQ = [],  # noqa: B006 - FastAPI copies query defaults
    details: Details = True,
) -> SlateQuery:
    """The common slate query parameters."""
    if user and session:
        raise InvalidInput("pass user or session, not both")
    user_key = user or (f"s:{session}" if session else None)
    return SlateQuery(user_key, k, details, language or None, media, tuple(exclude))


async def topic_filter(
    topic: TopicsQ = [],  # noqa: B006
    exclude_topic: NotTopicsQ = [],  # noqa: B006
) -> tuple[list[str], list[str]]:
    """Topics an item must carry and topics it must not (feed, related, trending)."""
    return topic, exclude_topic


SlateDep = Annotated[SlateQuery, Depends(slate_query)]
TopicsDep = Annotated[tuple[list[str], list[str]], Depends(topic_filter)]


# The slate endpoints run on the event loop, not in FastAPI's thread pool: a slate is CPU in
# memory (the state is built at start-up and refreshed in a background thread), and the pool's
# two thread hops per request cost ~1 ms of CPU on 2 cores, more than the slate itself
# (see api/routes/search.py).
def _slate(
    ctx: AppContext, q: SlateQuery, surface: str, flt: RecFilter, **kwargs: Any
) -> RecResponse:
    return recommend(ctx, surface=surface, user_key=q.user_key, k=q.k, flt=flt,
                     with_items=q.details, **kwargs)  # fmt: skip


@router.get("/feed", response_model=RecResponse)
async def feed(
    ctx: ContextDep, q: SlateDep, t: TopicsDep, include_converted: Converted = False
) -> RecResponse:
    """A personalised feed; a user without history gets the cold-start feed (``policy``).

    Cold start: what people engage with now (time-decayed popularity), rising items (trend
    velocity) and new prompts (freshness), blended. Log the ``request_id`` and
    ``experiments`` with the impression.
    """
    flt = q.flt(*t)
    return _slate(ctx, q, "feed", flt, include_converted=include_converted)


@router.get("/items/{item_id}/related", response_model=RecResponse)
async def related(
    ctx: ContextDep,
    item_id: Annotated[str, Path(min_length=1, max_length=128)],
    q: SlateDep,
    t: TopicsDep,
    include_converted: Converted = False,
) -> RecResponse:
    """Items related to ``item_id``: by behaviour (co-occurrence, CF) and content."""
    flt = q.flt(*t)
    return _slate(ctx, q, "related", flt, item_id=item_id, include_converted=include_converted)


@router.get("/trending", response_model=RecResponse)
async def trending(ctx: ContextDep, q: SlateDep, t: TopicsDep) -> RecResponse:
    """Rising items: the last day's engagement against the week's baseline."""
    return _slate(ctx, q, "trending", q.flt(*t), include_converted=True)


@router.get("/topics/{topic_id}/feed", response_model=RecResponse)
async def topic_feed(
    ctx: ContextDep, topic_id: Annotated[str, Path(min_length=1, max_length=128)], q: SlateDep
) -> RecResponse:
    """A topic page: popular and new items on the topic, personalised when the user has history."""
    from twinengine.catalog import service as catalog

    catalog.get_topic(ctx.db, topic_id=topic_id)  # NotFound for an unknown topic
    return _slate(ctx, q, "topic", q.flt([topic_id]))


def _warm(ctx: AppContext) -> None:
    service.state(ctx)


# --- gallery sections (the pages call the same ``recommend`` as the endpoints) ------------------
_SID = re.compile(r"^[A-Za-z0-9]{8,64}$")


def _visitor(request: Request) -> str | None:
    """The tracker's anonymous session (cookie ``te_sid``) as a user key."""
    sid = request.cookies.get("te_sid", "")
    return f"s:{sid}" if _SID.match(sid) else None


def _section(request: Request, title: str, **kwargs: Any) -> dict[str, Any] | None:
    try:
        res = recommend(request.app.state.context, user_key=_visitor(request), **kwargs)
    except AppError:
        return None
    except Exception:  # a recommendation failure must not take the page down
        log.exception("recommendation section %s failed", kwargs.get("surface"))
        return None
    if not res.data:
        return None
    return {"title": title, "items": [d.item for d in res.data if d.item], "surface": res.surface,
            "request_id": res.request_id, "experiments": res.experiments}  # fmt: skip


def _plain(params: dict[str, Any], cursor: str | None) -> bool:
    return not cursor and not any(params.get(k) for k in ("q", "topic", "language", "collection",
                                                          "media"))  # fmt: skip


def for_you_section(request: Request, params: dict[str, Any], cursor: str | None) -> Any:
    """ "For you" above the gallery: the visitor's feed (cold start for a new visitor)."""
    if not _plain(params, cursor):
        return None
    # Before anyone has done anything there is nothing to recommend from: no section.
    if not service.state(request.app.state.context).popular.any():
        return None
    return _section(request, "For you", surface="feed", k=8)


def trending_section(request: Request, params: dict[str, Any], cursor: str | None) -> Any:
    """ "Trending now" above the gallery, or within the selected topic."""
    if cursor or params.get("q") or not service.state(request.app.state.context).trending.any():
        return None
    topics = tuple(params.get("topic") or ())
    flt = RecFilter(topics=topics, language=params.get("language") or None,
                    media=params.get("media") or None)  # fmt: skip
    return _section(request, "Trending now", surface="trending", k=4, flt=flt,
                    include_converted=True)  # fmt: skip


def related_section(request: Request, item: Any) -> Any:
    """ "Related prompts" on a prompt page: what people engaged with alongside it, and content."""
    return _section(request, "Related prompts", surface="related", item_id=item.id, k=8)


def _register_pages() -> None:
    from twinengine.web import views

    for fn in (trending_section, for_you_section):
        if fn not in views.GALLERY_SECTIONS:
            views.GALLERY_SECTIONS.append(fn)
    if related_section not in views.PROMPT_PAGE_SECTIONS:
        views.PROMPT_PAGE_SECTIONS.append(related_section)


register(router, on_startup=_warm)
_register_pages()
