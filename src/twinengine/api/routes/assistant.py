"""``POST /v1/assistant`` (JSON or server-sent events) and the gallery's assistant page."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from twinengine.api.app import register
from twinengine.capability.assistant import service
from twinengine.capability.assistant.schemas import AssistantAnswer, AssistantRequest
from twinengine.catalog import service as catalog
from twinengine.errors import AppError, NotFound
from twinengine.web import views

router = APIRouter(tags=["assistant"])
pages = APIRouter(include_in_schema=False)


def _sse(events: Iterator[dict[str, Any]]) -> Iterator[str]:
    """Serialise service events as SSE frames; a failure mid-stream becomes an error event."""
    try:
        for ev in events:
            data = json.dumps(ev["data"], ensure_ascii=False, default=str)
            yield f"event: {ev['event']}\ndata: {data}\n\n"
    except AppError as exc:
        yield f"event: error\ndata: {json.dumps(exc.to_dict()['error'], ensure_ascii=False)}\n\n"


@router.post(
    "/assistant",
    response_model=AssistantAnswer,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE when streaming"}
    },
)
async def post_assistant(request: Request, body: AssistantRequest) -> Any:
    """Build a prompt from the catalog for a brief; streams SSE when asked to.

    ``stream: true`` or ``Accept: text/event-stream`` asks for the stream.

    Stream events: ``meta`` (understanding, sources), ``delta`` (prompt text), ``reset`` (drop the
    text so far: the deterministic answer follows), ``answer`` (the full JSON answer), ``error``.
    """
    ctx = request.app.state.context
    wants_stream = body.stream or "text/event-stream" in request.headers.get("accept", "")
    result = await run_in_threadpool(
        service.answer,
        ctx,
        brief=body.brief,
        language=body.language,
        remix_of=body.remix_of,
        stream=wants_stream,
        session_id=body.session_id,
    )
    if wants_stream:
        return StreamingResponse(
            _sse(result),  # type: ignore[arg-type]
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )
    return result


@pages.get("/assistant", response_class=HTMLResponse)
def assistant_page(
    request: Request,
    brief: Annotated[str | None, Query(max_length=2000)] = None,
    remix_of: Annotated[str | None, Query(max_length=128)] = None,
) -> HTMLResponse:
    """The assistant panel: a brief box, the streamed prompt, its sources and alternatives."""
    ctx = request.app.state.context
    remix = None
    if remix_of:
        try:
            remix = catalog.get_item(ctx.db, item_id=remix_of)
        except NotFound:
            remix = None
    return views.templates.TemplateResponse(
        request, "assistant.html", {"brief": brief or "", "remix": remix}
    )


def on_startup(ctx: Any) -> None:
    """Build the assistant's taxonomy index now, and its topic vectors in the background."""
    try:
        service.state_of(ctx)
    except AppError:
        return
    ctx.warm_in_background("assistant-warmup", lambda: service.warm(ctx))


register(router, on_startup=on_startup)
views.register_page(pages, nav=("/assistant", "Assistant"))
