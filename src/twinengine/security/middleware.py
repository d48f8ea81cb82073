"""One ASGI middleware for rate limits, API keys, scopes and admin sessions."""

from __future__ import annotations

import json
import math
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import quote

from twinengine.config import Settings
from twinengine.security import session
from twinengine.security.keys import KeyCache, Principal, principal_by_id
from twinengine.security.policy import READ_METHODS, is_page, required_scope
from twinengine.security.ratelimit import RateLimiter, make_rate_limiter
from twinengine.storage import Database


class SecurityMiddleware:
    """Rate-limit every request, then check the key's scope against ``policy.RULES``."""

    def __init__(
        self, app: Any, *, settings: Settings, db: Database, limiter: RateLimiter | None = None
    ) -> None:
        self.app = app
        self.settings = settings
        self.keys = KeyCache(db)
        self.limiter = limiter or make_rate_limiter(settings.redis_url)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        method: str = scope.get("method", "GET")
        if path.startswith("/static/"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers") or []}
        client = (scope.get("client") or ("unknown", 0))[0]
        presented = _presented_key(headers)
        s = self.settings

        if s.rate_limit_ip_rps > 0:
            ok, wait = self.limiter.allow(
                f"ip:{client}", rate=s.rate_limit_ip_rps, burst=s.rate_limit_ip_burst
            )
            if not ok:
                await _json(
                    send, 429, "rate_limited", "too many requests from this address", retry=wait
                )
                return

        principal: Principal | None = None
        if presented:
            principal = self.keys.verify(presented)
            if principal is None:
                await _json(send, 401, "unauthorized", "unknown or revoked API key")
                return
            if s.rate_limit_key_rps > 0:
                ok, wait = self.limiter.allow(
                    f"key:{principal.key_id}",
                    rate=s.rate_limit_key_rps,
                    burst=s.rate_limit_key_burst,
                )
                if not ok:
                    await _json(
                        send, 429, "rate_limited", "too many requests for this API key", retry=wait
                    )
                    return
        elif s.auth and "cookie" in headers:
            cookie = SimpleCookie(headers["cookie"]).get(session.COOKIE)
            key_id = session.unsign(cookie.value, s.secret_key) if cookie else None
            principal = principal_by_id(self.keys, key_id) if key_id else None

        if s.auth and not path.startswith(("/login", "/logout")):
            needed = required_scope(method, path)
            open_read = s.open_read and needed == "search:read"
            if needed and not open_read:
                if principal is None:
                    if is_page(path) and method in READ_METHODS:
                        await _redirect(send, f"/login?next={quote(path)}")
                    else:
                        await _json(
                            send,
                            401,
                            "unauthorized",
                            f"this needs an API key with the {needed} scope",
                        )
                    return
                if not principal.allows(needed):
                    await _json(send, 403, "forbidden", f"this key lacks the {needed} scope")
                    return
            if principal is not None and principal.kind == "publishable":
                origin = headers.get("origin")
                if origin and origin not in principal.allowed_origins:
                    await _json(
                        send, 403, "forbidden", f"origin {origin} is not allowed for this key"
                    )
                    return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


def _presented_key(headers: dict[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return headers.get("x-api-key") or None


async def _json(
    send: Any, status: int, code: str, message: str, *, retry: float | None = None
) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if retry is not None:
        headers.append((b"retry-after", str(max(1, math.ceil(retry))).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _redirect(send: Any, location: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [(b"location", location.encode()), (b"content-length", b"0")],
        }
    )
    await send({"type": "http.response.body", "body": b""})
