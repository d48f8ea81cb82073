"""Admin login and logout pages (a signed cookie carrying an admin key's id)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from twinengine.errors import AppError
from twinengine.security import service, session
from twinengine.web.views import register_page, templates

router = APIRouter(include_in_schema=False)


def _safe_next(target: str) -> str:
    # Only same-site relative paths: never an open redirect.
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> HTMLResponse:  # noqa: A002
    """The admin login form."""
    return templates.TemplateResponse(
        request, "login.html", {"next": _safe_next(next), "error": None}
    )


@router.post("/login")
def login_submit(
    request: Request,
    key: Annotated[str, Form(max_length=200)],
    next: Annotated[str, Form(max_length=500)] = "/",  # noqa: A002
):  # type: ignore[no-untyped-def]
    """Check the admin key and set the session cookie."""
    ctx = request.app.state.context
    try:
        value = service.login(ctx.db, presented_key=key, secret=ctx.settings.secret_key)
    except AppError as exc:
        return templates.TemplateResponse(
            request,
            "login.html",
            {"next": _safe_next(next), "error": exc.message},
            status_code=exc.http_status,
        )
    resp = RedirectResponse(_safe_next(next), status_code=303)
    resp.set_cookie(
        session.COOKIE, value, max_age=session.TTL_S, httponly=True, samesite="strict", path="/"
    )
    return resp


@router.post("/logout")
def logout() -> RedirectResponse:
    """Forget the admin session."""
    resp = RedirectResponse("/", status_code=303)
    resp.delete_cookie(session.COOKIE, path="/")
    return resp


register_page(router)
