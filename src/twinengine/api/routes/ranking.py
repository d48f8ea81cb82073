"""Ranking models: list versions, show one, activate per surface; per-surface rules."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from twinengine.api.app import register
from twinengine.api.deps import ContextDep
from twinengine.context import AppContext
from twinengine.discovery.ranking import service
from twinengine.discovery.ranking.diversity import Rules
from twinengine.discovery.ranking.registry import check_surface

log = logging.getLogger(__name__)
router = APIRouter(tags=["ranking"])


class ActivateIn(BaseModel):
    """Which surfaces a model version should serve."""

    model_config = ConfigDict(extra="forbid")

    surfaces: list[str] = Field(min_length=1, max_length=10)


class ActiveOut(BaseModel):
    """Surface -> active model version."""

    surfaces: dict[str, str]


@router.get("/ranking/models")
def list_models(ctx: ContextDep) -> dict[str, Any]:
    """Every trained version with its metrics and the surfaces it serves, newest first."""
    data = service.list_models(ctx)
    return {"data": data, "count": len(data), "active": service.get_active(ctx)}


@router.get("/ranking/models/{version}")
def get_model(ctx: ContextDep, version: str) -> dict[str, Any]:
    """One version: feature schema, blend, propensity curve and offline metrics."""
    return service.get_model(ctx, version=version)


@router.post("/ranking/models/{version}/activate", response_model=ActiveOut)
def activate(ctx: ContextDep, version: str, body: ActivateIn) -> ActiveOut:
    """Serve ``version`` on the given surfaces; running servers reload it within seconds."""
    return ActiveOut(surfaces=service.activate(ctx, version=version, surfaces=body.surfaces))


@router.post("/ranking/deactivate", response_model=ActiveOut)
def deactivate(ctx: ContextDep, body: ActivateIn) -> ActiveOut:
    """Fall back to generator scores on the given surfaces."""
    return ActiveOut(surfaces=service.deactivate(ctx, surfaces=body.surfaces))


@router.get("/ranking/rules/{surface}", response_model=Rules)
def get_rules(ctx: ContextDep, surface: str) -> Rules:
    """A surface's diversity and merchandising rules."""
    return service.get_rules(ctx, surface=surface)


@router.put("/ranking/rules/{surface}", response_model=Rules)
def put_rules(ctx: ContextDep, surface: str, body: Rules) -> Rules:
    """Replace a surface's rules (MMR, topic cap, freshness boost, pins, hidden items)."""
    return service.set_rules(ctx, surface=check_surface(surface), rules=body)


def _warm(ctx: AppContext) -> None:
    """Load active models and build the in-memory features off the request path."""
    if not service.get_active(ctx):
        return
    rt = service.runtime(ctx)

    def build() -> None:
        try:
            rt.maybe_reload(force=True)
            rt.features()
        except Exception:  # serving falls back to generator scores until features exist
            log.exception("ranking warm-up failed")

    ctx.warm_in_background("ranking-warm-up", build)


register(router, on_startup=_warm)
