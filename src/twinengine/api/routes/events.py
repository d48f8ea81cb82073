"""``POST /v1/events``: batch ingest of impressions, clicks, conversions and dwell."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from twinengine.api.app import register
from twinengine.discovery.events import service
from twinengine.discovery.events.schemas import EventBatch, IngestResult

router = APIRouter(tags=["events"])


@router.post(
    "/events",
    response_model=IngestResult,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": EventBatch.model_json_schema()}},
        }
    },
)
async def post_events(request: Request) -> IngestResult:
    """Store a batch of events; answers 200 only once all of them are durable.

    Idempotent by ``event_id``: re-sending a batch (say, after a timeout) stores nothing twice.
    The batch is all or nothing: one invalid event refuses it with the reason.
    """
    ctx = request.app.state.context
    # The body is parsed and validated in one pass by pydantic-core into plain dicts (no
    # model objects), off the event loop: at tens of thousands of events a second that
    # parsing is a large share of the CPU time.
    body = await request.body()
    return await run_in_threadpool(service.ingest_json, ctx, body)


register(router)
