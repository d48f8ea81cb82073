"""Security service: key management, admin login, backups. API, pages and CLI call these."""

from __future__ import annotations

from twinengine.errors import Forbidden, Unauthorized
from twinengine.security import session
from twinengine.security.keys import (
    KeyCache,
    KeyCreated,
    KeyPublic,
    create_key,
    list_keys,
    revoke_key,
)
from twinengine.storage import Database

__all__ = ["KeyCreated", "KeyPublic", "create_key", "list_keys", "login", "revoke_key"]


def login(db: Database, *, presented_key: str, secret: str) -> str:
    """Check an admin key and return a signed session cookie value."""
    principal = KeyCache(db).verify(presented_key.strip())
    if principal is None:
        raise Unauthorized("unknown or revoked key")
    if not principal.allows("admin"):
        raise Forbidden("this key lacks the admin scope")
    return session.sign(principal.key_id, secret)
