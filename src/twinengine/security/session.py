"""Signed admin session cookies: ``<key id>.<expiry>.<hmac>``."""

from __future__ import annotations

import hashlib
import hmac
import time

COOKIE = "te_admin"
TTL_S = 12 * 3600


def sign(key_id: str, secret: str, *, now: float | None = None) -> str:
    """A cookie value naming ``key_id``, valid for TTL_S."""
    expiry = int((now or time.time()) + TTL_S)
    payload = f"{key_id}.{expiry}"
    mac = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return f"{payload}.{mac}"


def unsign(value: str, secret: str) -> str | None:
    """The key id in a valid, unexpired cookie, else None."""
    try:
        key_id, expiry, mac = value.split(".")
        if int(expiry) < time.time():
            return None
    except ValueError:
        return None
    good = hmac.new(secret.encode(), f"{key_id}.{expiry}".encode(), hashlib.sha256).hexdigest()
    return key_id if hmac.compare_digest(good, mac) else None
