"""``create_app``: the FastAPI app serving the JSON API under /v1 and the web pages."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from twinengine import __version__
from twinengine._compat import bound_native_heap
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
    bound_native_heap()  # a server runs for weeks: keep freed arrays out of its RSS
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

    _document_errors(app)
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
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_bytes,
    )
    return app


def _document_errors(app: FastAPI) -> None:
    """Declare the error shape for 4XX/5XX on every operation, so clients and fuzzers know it."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas["Error"] = {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "details": {},
                    },
                }
            },
        }
        ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        for path in schema.get("paths", {}).values():
            for op in path.values():
                responses = op.setdefault("responses", {})
                # FastAPI's own 422 body is replaced by ours (see api/errors.py).
                responses["422"] = {"description": "Invalid input", **ref}
                responses.setdefault("4XX", {"description": "Client error", **ref})
                responses.setdefault("5XX", {"description": "Backend unavailable", **ref})
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def openapi_schema(settings: Settings | None = None) -> dict[str, Any]:
    """The OpenAPI document (for docs and fuzzing)."""
    return create_app(settings).openapi()
