"""Workflow runs (list, show, cancel, resume) and content drops: /v1/flows/...

Importing this module registers the router and the runs page (``/flows``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from twinengine.api.app import register
from twinengine.api.deps import ContextDep
from twinengine.capability.dropper import service as drops
from twinengine.capability.dropper.follow import follow_index
from twinengine.capability.workflows import (
    pages,  # noqa: F401  (registers the /flows page)
    service,
)
from twinengine.capability.workflows.schemas import DropCreate, DropStarted, RunPage, RunPublic

router = APIRouter(tags=["workflows"])

RunId = Annotated[str, Path(min_length=1, max_length=200)]


@router.get("/flows", response_model=RunPage)
def list_runs(
    ctx: ContextDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    status: Annotated[str | None, Query(max_length=40)] = None,
    name: Annotated[str | None, Query(max_length=200)] = None,
) -> RunPage:
    """Workflow runs, newest first, with status, duration and LLM cost."""
    return service.list_runs(ctx, limit=limit, status=status, name=name)


@router.get("/flows/{run_id}", response_model=RunPublic)
def get_run(ctx: ContextDep, run_id: RunId) -> RunPublic:
    """One run: its steps with timings and errors, its input and result."""
    return service.get_run(ctx, run_id=run_id)


@router.post("/flows/{run_id}/cancel", response_model=RunPublic)
def cancel_run(ctx: ContextDep, run_id: RunId) -> RunPublic:
    """Cancel a queued or running run."""
    return service.cancel_run(ctx, run_id=run_id)


@router.post("/flows/{run_id}/resume", response_model=RunPublic)
def resume_run(ctx: ContextDep, run_id: RunId) -> RunPublic:
    """Queue a failed, cancelled or stuck run again; a worker resumes it after its last step."""
    return service.resume_run(ctx, run_id=run_id)


@router.post("/flows/drops", response_model=DropStarted, status_code=202)
def start_drop(ctx: ContextDep, body: DropCreate) -> DropStarted:
    """Queue a content drop of the posted JSONL / CSV / README for a worker."""
    path = drops.save_upload(ctx, content=body.content, fmt=body.format)
    run_id = drops.enqueue_drop(
        ctx, path=path, collection=body.collection, licence=body.licence, allow_llm=body.allow_llm
    )
    run = service.get_run(ctx, run_id=run_id)
    return DropStarted(id=run_id, status=run.status, url=f"/v1/flows/{run_id}")


# servers swap in index snapshots that workers' drops publish
register(router, on_startup=follow_index)
