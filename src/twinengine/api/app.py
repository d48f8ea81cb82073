"""``create_app``: the FastAPI app serving the JSON API under /v1 and the web pages."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from twinengine import __version__
from twinengine.api.errors import install_error_handlers
from twinengine.api.middleware import BodyLimitMiddleware, SecurityHeadersMiddleware
from twinengine.api.routes import items, keys, meta
from twinengine.config import Settings
from twinengine.context import AppContext, open_context
from twinengine.security.middleware import SecurityMiddleware

log = logging.getLogger(__name__)

# Engines add their routers and start-up hooks here (see ``register``), so this module does
# not have to know every engine.
_ROUTERS: list[APIRouter] = [meta.router, items.router, keys.router]
_STARTUP: list[Callable[[AppContext], None]] = []


def register(
    router: APIRouter | None = None, *, on_startup: Callable[[AppContext], None] | None = None
) -> None:
    """Add an engine's /v1 router and/or a hook run with the context at start-up."""
    if router is not None and router not in _ROUTERS:
        _ROUTERS.append(router)
    if on_startup is not None and on_startup not in _STARTUP:
        _STARTUP.append(on_startup)


def _load_engines() -> None:
    """Import the engine packages that register routers (kept lazy to keep imports cheap)."""
    import twinengine.api.engines  # noqa: F401


def create_app(settings: Settings | None = None, *, context: AppContext | None = None) -> FastAPI:
    """Build the app. Pass ``context`` to share an already open database (tests, CLI)."""
    settings = settings or (context.settings if context else Settings())
    ctx = context or open_context(settings)
    _load_engines()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if context is None:
            ctx.close()

    app = FastAPI(
        title="twinengine",
        version=__version__,
        description="Discovery and AI workflows around one catalog. JSON API under /v1.",
        lifespan=lifespan,
    )
    app.state.context = ctx
    install_error_handlers(app)
    for router in _ROUTERS:
        app.include_router(router, prefix="/v1")
    for hook in _STARTUP:
        hook(ctx)

    import twinengine.web.auth  # noqa: F401  (login pages)
    from twinengine.web.views import mount_web

    mount_web(app)
    # Added last = runs first: size cap, then CORS, then keys/limits, then headers.
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(SecurityMiddleware, settings=settings, db=ctx.db)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "x-api-key", "content-type"],
        )
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    return app


def openapi_schema(settings: Settings | None = None) -> dict[str, Any]:
    """The OpenAPI document (for docs and fuzzing)."""
    return create_app(settings).openapi()
