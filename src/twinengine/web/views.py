"""Gallery pages. Thin: each page calls the same service functions as its JSON endpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from twinengine import __version__
from twinengine.catalog import service
from twinengine.catalog.schemas import ItemPage, ItemPublic

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))  # autoescape on for .html
templates.env.globals["version"] = __version__

router = APIRouter(include_in_schema=False)

# Engines add links to the top navigation: (path, label).
NAV: list[tuple[str, str]] = [("/", "Gallery")]
templates.env.globals["nav"] = NAV


def register_page(router_: APIRouter, *, nav: tuple[str, str] | None = None) -> None:
    """Let an engine add its pages (and a navigation link) to the web UI."""
    _PAGE_ROUTERS.append(router_)
    if nav and nav not in NAV:
        NAV.append(nav)


_PAGE_ROUTERS: list[APIRouter] = []


def snippet(text: str, length: int = 180) -> str:
    """The first ``length`` characters of ``text`` on one line."""
    flat = " ".join(text.split())
    return flat if len(flat) <= length else flat[: length - 1].rstrip() + "…"


templates.env.filters["snippet"] = snippet


def _query(params: dict[str, Any], **changes: Any) -> str:
    merged = {**params, **changes}
    pairs: list[tuple[str, str]] = []
    for key, value in merged.items():
        if value in (None, "", []):
            continue
        if isinstance(value, (list, tuple)):
            pairs.extend((key, str(v)) for v in value)
        else:
            pairs.append((key, str(value)))
    return "?" + urlencode(pairs) if pairs else "?"


def toggle_topic(params: dict[str, Any], topic: str) -> str:
    """The gallery URL with ``topic`` added to or removed from the filters."""
    current = list(params.get("topic") or [])
    new = [t for t in current if t != topic] if topic in current else [*current, topic]
    return _query(params, topic=new, cursor=None)


templates.env.globals["toggle_topic"] = toggle_topic
templates.env.globals["with_query"] = _query


@router.get("/", response_class=HTMLResponse)
def gallery(
    request: Request,
    q: Annotated[str | None, Query(max_length=512)] = None,
    topic: Annotated[list[str], Query(max_length=10)] = [],  # noqa: B006
    language: Annotated[str | None, Query(max_length=16)] = None,
    collection: Annotated[str | None, Query(max_length=200)] = None,
    media: Annotated[str | None, Query(max_length=16)] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> HTMLResponse:
    """The gallery: search box, facet filters with counts, a grid of prompt cards."""
    ctx = request.app.state.context
    db = ctx.db
    flt = service.make_filter(
        topics=topic, language=language, collection=collection, media=media, q=q
    )
    found = _search(ctx, flt, cursor) if flt.q else None  # ranked search when there is a query
    if found is not None:
        page, counts = found
    else:
        page = service.list_items(db, flt=flt, limit=24, cursor=cursor)
        counts = service.facet_counts(db, flt=flt)
    facets = service.list_facets(db)
    topic_counts = {c.value: c.count for c in counts.topics}
    topic_names = {t.id: t.name for f in facets for t in f.topics}
    params = {
        "q": q,
        "topic": topic,
        "language": language,
        "collection": collection,
        "media": media,
    }
    return templates.TemplateResponse(
        request,
        "gallery.html",
        {
            "page": page,
            "counts": counts,
            "facets": facets,
            "topic_counts": topic_counts,
            "topic_names": topic_names,
            "params": params,
            "q": q or "",
            "selected_topics": topic,
            "next_url": _query(params, cursor=page.next_cursor) if page.next_cursor else None,
            "sections": [x for x in (fn(request, params, cursor) for fn in GALLERY_SECTIONS) if x],
        },
    )


def _search(ctx: Any, flt: Any, cursor: str | None) -> tuple[ItemPage, Any] | None:
    """Search results as a gallery page (cursor = offset), or None to fall back to listing."""
    from twinengine.discovery.index import service as search_service
    from twinengine.errors import BackendUnavailable

    offset = int(cursor) if cursor and cursor.isdigit() else 0
    try:
        res = search_service.search(ctx, q=flt.q, flt=flt, k=24, offset=min(offset, 1000))
    except BackendUnavailable:  # no search index yet: the keyword filter still works
        return None
    more = res.offset + res.k < min(res.total, search_service.MAX_OFFSET)
    page = ItemPage(
        data=[h.item for h in res.hits],
        count=res.total,
        next_cursor=str(res.offset + res.k) if more else None,
    )
    return page, res.facets


@router.get("/p/{item_id}", response_class=HTMLResponse)
def prompt_page(request: Request, item_id: str) -> HTMLResponse:
    """One prompt: full text, images, attribution, source link, copy button."""
    db = request.app.state.context.db
    item: ItemPublic = service.get_item(db, item_id=item_id)
    topic_names = {t.id: t.name for t in service.list_topics(db)}
    seen: set[str] = set()
    item_topics = []
    for link in item.topics:
        if link.topic_id not in seen:
            seen.add(link.topic_id)
            item_topics.append(
                (link.topic_id, topic_names.get(link.topic_id, link.topic_id), link.source)
            )
    extra = [fn(request, item) for fn in PROMPT_PAGE_SECTIONS]
    return templates.TemplateResponse(
        request,
        "prompt.html",
        {"item": item, "item_topics": item_topics, "sections": [s for s in extra if s]},
    )


# Engines add sections to the prompt page (e.g. "similar prompts"): fn(request, item) -> dict
# with "title" and "items" (a list of ItemPublic), or None.
PROMPT_PAGE_SECTIONS: list[Any] = []
# ... and slates above the gallery grid ("For you", "Trending"): fn(request, params, cursor) ->
# dict with "title", "items", "surface" and optionally "request_id", "experiments"; or None.
GALLERY_SECTIONS: list[Any] = []


def render_error(request: Request, status: int, message: str) -> HTMLResponse:
    """The HTML error page."""
    return templates.TemplateResponse(
        request, "error.html", {"status": status, "message": message}, status_code=status
    )


def mount_web(app: FastAPI) -> None:
    """Attach static files and every page router to ``app``."""
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(router)
    for r in _PAGE_ROUTERS:
        app.include_router(r)
