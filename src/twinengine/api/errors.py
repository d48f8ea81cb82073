"""One handler per error family: every error leaves as ``{"error": {"code", "message"}}``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from twinengine.errors import AppError

log = logging.getLogger(__name__)


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/v1") and "text/html" in request.headers.get(
        "accept", ""
    )


def install_error_handlers(app: FastAPI) -> None:
    """Map our errors, validation errors and HTTP errors to the JSON shape (or an HTML page)."""

    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError):  # type: ignore[no-untyped-def]
        if _wants_html(request):
            from twinengine.web.views import render_error

            return render_error(request, exc.http_status, exc.message)
        return JSONResponse(exc.to_dict(), status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):  # type: ignore[no-untyped-def]
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
            problems.append(f"{loc or 'request'}: {err.get('msg')}")
        message = "; ".join(problems[:5]) or "invalid request"
        if _wants_html(request):
            from twinengine.web.views import render_error

            return render_error(request, 422, message)
        details = [
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": str(e.get("msg")),
                "type": str(e.get("type")),
            }
            for e in exc.errors()[:20]
        ]
        return JSONResponse(
            {"error": {"code": "invalid_input", "message": message, "details": details}},
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):  # type: ignore[no-untyped-def]
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if _wants_html(request):
            from twinengine.web.views import render_error

            return render_error(request, exc.status_code, message)
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status_code, "http_error"
        )
        return JSONResponse(
            {"error": {"code": code, "message": message}},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):  # type: ignore[no-untyped-def]
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {"error": {"code": "internal", "message": "internal error; it has been logged"}},
            status_code=500,
        )
