"""Recommendations: personalised feed, related items, trending, topic pages."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from twinengine.api.app import register
from twinengine.api.deps import ContextDep
from twinengine.context import AppContext
from twinengine.discovery.candidates import service
from twinengine.discovery.candidates.schemas import RecResponse
from twinengine.discovery.candidates.service import RecFilter
from twinengine.discovery.candidates.serving import recommend
from twinengine.errors import InvalidInput

router = APIRouter(tags=["recommendations"])

UserQ = Annotated[str | None, Query(max_length=128, description="known user id")]
SessionQ = Annotated[str | None, Query(max_length=128, description="anonymous session id")]
TopicsQ = Annotated[list[str], Query(max_length=10, description="topic ids; items carry all")]
NotTopicsQ = Annotated[list[str], Query(max_length=20, description="topic ids to leave out")]
ExcludeQ = Annotated[list[str], Query(max_length=200, description="hidden or seen item ids")]
LangQ = Annotated[str | None, Query(max_length=16)]
MediaQ = Annotated[Literal["image", "video", "audio", "text"] | None, Query()]
K = Annotated[int, Query(ge=1, le=100, description="slate size")]
Converted = Annotated[bool, Query(description="also recommend items the user already converted on")]


def _user_key(user: str | None, session: str | None) -> str | None:
    if user and session:
        raise InvalidInput("pass user or session, not both")
    return user or (f"s:{session}" if session else None)


def _flt(topic: list[str], exclude_topic: list[str], language: str | None, media: str | None,
         exclude: list[str]) -> RecFilter:  # fmt: skip
    return RecFilter(
        topics=tuple(topic),
        exclude_topics=tuple(exclude_topic),
        language=language or None,
        media=media,
        exclude=tuple(exclude),
    )


@router.get("/feed", response_model=RecResponse)
def feed(
    ctx: ContextDep,
    user: UserQ = None,
    session: SessionQ = None,
    k: K = 10,
    topic: TopicsQ = [],  # noqa: B006 - FastAPI copies query defaults
    exclude_topic: NotTopicsQ = [],  # noqa: B006
    language: LangQ = None,
    media: MediaQ = None,
    exclude: ExcludeQ = [],  # noqa: B006
    include_converted: Converted = False,
) -> RecResponse:
    """A personalised feed; a user without history gets the cold-start feed (``policy``).

    Cold start: what people engage with now (time-decayed popularity), rising items (trend
    velocity) and new prompts (freshness), blended. Log the ``request_id`` and
    ``experiments`` with the impression.
    """
    return recommend(
        ctx,
        surface="feed",
        user_key=_user_key(user, session),
        k=k,
        flt=_flt(topic, exclude_topic, language, media, exclude),
        include_converted=include_converted,
    )


@router.get("/items/{item_id}/related", response_model=RecResponse)
def related(
    ctx: ContextDep,
    item_id: Annotated[str, Path(min_length=1, max_length=128)],
    user: UserQ = None,
    session: SessionQ = None,
    k: K = 10,
    topic: TopicsQ = [],  # noqa: B006
    exclude_topic: NotTopicsQ = [],  # noqa: B006
    language: LangQ = None,
    media: MediaQ = None,
    exclude: ExcludeQ = [],  # noqa: B006
    include_converted: Converted = False,
) -> RecResponse:
    """Items related to ``item_id``: by behaviour (co-occurrence, CF) and content."""
    return recommend(
        ctx,
        surface="related",
        user_key=_user_key(user, session),
        item_id=item_id,
        k=k,
        flt=_flt(topic, exclude_topic, language, media, exclude),
        include_converted=include_converted,
    )


@router.get("/trending", response_model=RecResponse)
def trending(
    ctx: ContextDep,
    user: UserQ = None,
    session: SessionQ = None,
    k: K = 10,
    topic: TopicsQ = [],  # noqa: B006
    exclude_topic: NotTopicsQ = [],  # noqa: B006
    language: LangQ = None,
    media: MediaQ = None,
    exclude: ExcludeQ = [],  # noqa: B006
) -> RecResponse:
    """Rising items: the last day's engagement against the week's baseline."""
    return recommend(
        ctx,
        surface="trending",
        user_key=_user_key(user, session),
        k=k,
        flt=_flt(topic, exclude_topic, language, media, exclude),
        include_converted=True,
    )


@router.get("/topics/{topic_id}/feed", response_model=RecResponse)
def topic_feed(
    ctx: ContextDep,
    topic_id: Annotated[str, Path(min_length=1, max_length=128)],
    user: UserQ = None,
    session: SessionQ = None,
    k: K = 10,
    language: LangQ = None,
    media: MediaQ = None,
    exclude: ExcludeQ = [],  # noqa: B006
) -> RecResponse:
    """A topic page: popular and new items on the topic, personalised when the user has history."""
    from twinengine.catalog import service as catalog

    catalog.get_topic(ctx.db, topic_id=topic_id)  # NotFound for an unknown topic
    return recommend(
        ctx,
        surface="topic",
        user_key=_user_key(user, session),
        k=k,
        flt=_flt([topic_id], [], language, media, exclude),
    )


def _warm(ctx: AppContext) -> None:
    service.state(ctx)


register(router, on_startup=_warm)
