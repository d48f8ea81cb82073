"""ASGI middleware: request body cap and security headers."""

from __future__ import annotations

import json
from typing import Any

Scope = dict[str, Any]


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes`` with 413 before the app reads them.

    Checks Content-Length up front and counts streamed chunks, so a chunked upload cannot
    slip past the cap.
    """

    # Uploads (videos to dub, content drops) get their own, larger cap.
    UPLOAD_PATHS = ("/v1/dubbing/runs", "/v1/flows/drops")

    def __init__(self, app: Any, max_bytes: int, max_upload_bytes: int | None = None) -> None:
        self.app = app
        self.default_max = max_bytes
        self.upload_max = max_upload_bytes or max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = scope.get("method") == "POST" and scope.get("path", "") in self.UPLOAD_PATHS
        max_bytes = self.upload_max if upload else self.default_max
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > max_bytes
            except ValueError:
                too_big = True
            if too_big:
                await _reject(send, max_bytes)
                return
        seen = 0
        rejected = False

        async def limited_receive() -> Any:
            nonlocal seen, rejected
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_bytes:
                    rejected = True
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await _reject(send, max_bytes)


class _TooLarge(Exception):
    pass


async def _reject(send: Any, max_bytes: int) -> None:
    body = json.dumps(
        {"error": {"code": "payload_too_large", "message": f"request body over {max_bytes} bytes"}}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


SECURITY_HEADERS = [
    # No inline script or style anywhere: every page's JS and CSS come from /static.
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' https: data:; media-src 'self' https: blob:; "
        b"script-src 'self'; style-src 'self'; object-src 'none'; base-uri 'none'; "
        b"frame-ancestors 'none'; form-action 'self'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"x-frame-options", b"DENY"),
]


class SecurityHeadersMiddleware:
    """Add CSP and friends to every HTML response (the API docs page excepted)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path", "").startswith(("/docs", "/redoc")):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                names = {k for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    h for h in SECURITY_HEADERS if h[0] not in names
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)
