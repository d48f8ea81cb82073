"""Dubbing: ``/v1/dubbing/runs`` (upload a video, watch the run, download the outputs) and the
``/dub`` page. Thin: both call ``capability.dubbing.service``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse
from starlette.concurrency import run_in_threadpool

from twinengine.api.app import register
from twinengine.api.deps import ContextDep
from twinengine.capability.dubbing import service
from twinengine.capability.dubbing.schemas import DubRunPublic
from twinengine.errors import InvalidInput
from twinengine.web.views import register_page, templates

router = APIRouter(tags=["dubbing"])
pages = APIRouter(include_in_schema=False)

_MEDIA = {
    ".mp4": "video/mp4",
    ".wav": "audio/wav",
    ".srt": "application/x-subrip",
    ".vtt": "text/vtt",
    ".json": "application/json",
}


@router.post("/dubbing/runs", status_code=202, response_model=DubRunPublic)
async def create_dub(
    ctx: ContextDep,
    file: Annotated[UploadFile, File(description="the video to dub (mp4, mov, mkv, webm)")],
    target: Annotated[str, Form(description="target language: es or en")] = "es",
    voice_match: Annotated[bool, Form(description="match the source speaker's voice")] = False,
    lipsync: Annotated[bool, Form(description="lip-sync (needs a configured model)")] = False,
    translator: Annotated[str | None, Form(description="apertium, llm or ct2")] = None,
) -> Any:
    """Upload a clip and start dubbing it; poll ``GET /v1/dubbing/runs/{id}`` for progress."""
    name = Path(file.filename or "").name
    if not name:
        raise InvalidInput("the upload has no file name")
    up = ctx.settings.home / "dubbing" / "uploads"
    up.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=up, suffix=Path(name).suffix, delete=False) as tmp:
        while chunk := await file.read(1 << 20):
            tmp.write(chunk)
    path = Path(tmp.name)
    try:
        run = await run_in_threadpool(
            service.create_run,
            ctx,
            video=path,
            target=target,
            voice_match=voice_match,
            lipsync=lipsync,
            original_name=name,
            translator=translator or None,
            move=True,
        )
    finally:
        path.unlink(missing_ok=True)
    service.start_in_background(ctx, run_id=run.id)
    return service.get_run(ctx, run_id=run.id)


@router.get("/dubbing/runs")
def list_dubs(ctx: ContextDep) -> dict[str, Any]:
    """Recent runs, newest first: ``{data, count}``."""
    runs = service.list_runs(ctx)
    return {"data": [r.model_dump() for r in runs], "count": len(runs)}


@router.get("/dubbing/runs/{run_id}", response_model=DubRunPublic)
def get_dub(ctx: ContextDep, run_id: str) -> Any:
    """A run's status, stages, downloadable files and quality report."""
    return service.get_run(ctx, run_id=run_id)


@router.get("/dubbing/runs/{run_id}/files/{name}")
def get_dub_file(ctx: ContextDep, run_id: str, name: str) -> FileResponse:
    """Download a finished run's video, dub track, subtitles or report."""
    path = service.run_file(ctx, run_id=run_id, name=name)
    return FileResponse(
        path, media_type=_MEDIA.get(path.suffix, "application/octet-stream"), filename=path.name
    )


@pages.get("/dub", response_class=HTMLResponse)
def dub_page(request: Request) -> HTMLResponse:
    """Upload a clip, watch the run, play and download the result."""
    ctx = request.app.state.context
    return templates.TemplateResponse(
        request,
        "dub.html",
        {"runs": service.list_runs(ctx, limit=20), "languages": sorted(service.LANGUAGES)},
    )


register(router)
register_page(pages, nav=("/dub", "Dubbing"))
__all__ = ["pages", "router"]
