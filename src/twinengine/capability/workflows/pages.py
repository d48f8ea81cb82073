"""The runs page: workflow runs with status, duration and cost; one run's steps and errors.

Both pages call the same service functions as ``GET /v1/flows`` and ``GET /v1/flows/{id}``.
Step durations are drawn as ``<meter>`` elements (no inline style or script: the CSP).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse

from twinengine.capability.workflows import service
from twinengine.errors import BackendUnavailable
from twinengine.web.views import register_page, templates

router = APIRouter(include_in_schema=False)

RunId = Annotated[str, Path(min_length=1, max_length=200)]


@router.get("/flows", response_class=HTMLResponse)
def runs_page(
    request: Request,
    status: Annotated[str | None, Query(max_length=40)] = None,
    name: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    """The newest workflow runs."""
    ctx = request.app.state.context
    try:
        page = service.list_runs(ctx, limit=100, status=status or None, name=name or None)
        problem = None
    except BackendUnavailable as exc:
        page, problem = None, exc.message
    return templates.TemplateResponse(
        request,
        "flows.html",
        {"page": page, "problem": problem, "status": status or "", "statuses": service.STATUSES},
    )


@router.get("/flows/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: RunId) -> HTMLResponse:
    """One run: its steps with timings and errors, and the drop report when there is one."""
    run = service.get_run(request.app.state.context, run_id=run_id)
    longest = max((s.seconds or 0.0 for s in run.steps), default=0.0) or 1.0
    report = run.output if isinstance(run.output, dict) and "counts" in run.output else None
    return templates.TemplateResponse(
        request, "flows_run.html", {"run": run, "longest": longest, "report": report}
    )


register_page(router, nav=("/flows", "Workflows"))
