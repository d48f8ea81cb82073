"""HTTP adapters of the router: ``GET /v1/router/costs``, ``/v1/router/ledger`` and ``/costs``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from twinengine.api.app import register
from twinengine.api.deps import ContextDep
from twinengine.capability.router import service
from twinengine.capability.router.schemas import CostSummary, LedgerEntry
from twinengine.web.views import register_page, templates

router = APIRouter(tags=["router"])
pages = APIRouter(include_in_schema=False)


@router.get("/router/costs", response_model=CostSummary)
def costs(ctx: ContextDep, recent: Annotated[int, Query(ge=0, le=500)] = 50) -> CostSummary:
    """LLM spend: totals, by day, task and model, budgets, and the latest calls."""
    return service.cost_summary(ctx, recent=recent)


@router.get("/router/ledger", response_model=list[LedgerEntry])
def ledger(
    ctx: ContextDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    run_id: Annotated[str | None, Query(max_length=128)] = None,
    task: Annotated[str | None, Query(max_length=64)] = None,
) -> list[LedgerEntry]:
    """Ledger rows, newest first (one per routed call: tokens, cost, latency, status)."""
    return service.list_ledger(ctx, limit=limit, run_id=run_id, task=task)


@pages.get("/costs", response_class=HTMLResponse)
def costs_page(request: Request) -> HTMLResponse:
    """The costs dashboard: the same summary as ``GET /v1/router/costs``."""
    ctx = request.app.state.context
    summary = service.cost_summary(ctx, recent=100)
    return templates.TemplateResponse(
        request,
        "costs.html",
        {"s": summary, "configured": service.is_configured(ctx, "tagging"),
         "routes": service.routes_of(ctx.settings)},
    )


register(router)
register_page(pages, nav=("/costs", "Costs"))
