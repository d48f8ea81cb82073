"""API keys: create, list, revoke, verify.

Keys look like ``te_<id>_<secret>``. Only sha256(secret) is stored: the secrets are 32 random
bytes, so a fast hash is enough (no password stretching needed) and keeps checks cheap.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import select, update

from twinengine.errors import InvalidInput, NotFound
from twinengine.security.models import api_keys
from twinengine.storage import Database

SCOPES = ("search:read", "events:write", "catalog:write", "admin")
PUBLISHABLE_SCOPES = frozenset({"search:read", "events:write"})
KeyKind = Literal["secret", "publishable"]


class KeyPublic(BaseModel):
    """A key as listed: never the secret."""

    id: str
    name: str
    kind: str
    scopes: list[str]
    allowed_origins: list[str]
    created_at: dt.datetime
    revoked_at: dt.datetime | None


class KeyCreated(KeyPublic):
    """A new key, with its secret: shown once."""

    key: str


@dataclass(frozen=True)
class Principal:
    """Who a request acts as."""

    key_id: str
    kind: str
    scopes: frozenset[str]
    allowed_origins: tuple[str, ...]

    def allows(self, scope: str) -> bool:
        """Whether this key may do ``scope`` (admin may do everything)."""
        return "admin" in self.scopes or scope in self.scopes


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    db: Database,
    *,
    name: str,
    scopes: list[str],
    kind: KeyKind = "secret",
    allowed_origins: list[str] | None = None,
) -> KeyCreated:
    """Create a key; a publishable key may only read and send events."""
    bad = [s for s in scopes if s not in SCOPES]
    if bad or not scopes:
        raise InvalidInput(
            f"unknown or missing scopes {bad or scopes}; choose from {', '.join(SCOPES)}"
        )
    if kind == "publishable":
        extra = set(scopes) - PUBLISHABLE_SCOPES
        if extra:
            raise InvalidInput(
                f"a publishable key may only have {sorted(PUBLISHABLE_SCOPES)}, not {sorted(extra)}"
            )
        if not allowed_origins:
            raise InvalidInput("a publishable key needs at least one allowed origin")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    row = {
        "id": key_id,
        "name": name,
        "kind": kind,
        "secret_hash": _hash(secret),
        "scopes": sorted(set(scopes)),
        "allowed_origins": list(allowed_origins or []),
        "created_at": dt.datetime.now(dt.UTC),
    }
    with db.write() as conn:
        conn.execute(api_keys.insert().values(**row))
    return KeyCreated(
        **{k: v for k, v in row.items() if k != "secret_hash"},
        revoked_at=None,
        key=f"te_{key_id}_{secret}",
    )


def list_keys(db: Database) -> list[KeyPublic]:
    """Every key, newest first."""
    with db.read() as conn:
        rows = (
            conn.execute(select(api_keys).order_by(api_keys.c.created_at.desc())).mappings().all()
        )
    return [KeyPublic.model_validate(dict(r)) for r in rows]


def revoke_key(db: Database, *, key_id: str) -> None:
    """Revoke a key; it stops working at once in this process and within the cache TTL elsewhere."""
    with db.write() as conn:
        n = conn.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=dt.datetime.now(dt.UTC))
        ).rowcount
    if not n:
        raise NotFound(f"no active key with id {key_id!r}")
    KeyCache.clear_all()


class KeyCache:
    """Verified keys cached for a few seconds so a check costs no database round trip."""

    TTL_S = 10.0
    _instances: list[KeyCache] = []

    def __init__(self, db: Database) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        KeyCache._instances.append(self)

    @classmethod
    def clear_all(cls) -> None:
        """Forget every cached verdict (after a revoke)."""
        for inst in cls._instances:
            with inst._lock:
                inst._cache.clear()

    def verify(self, presented: str) -> Principal | None:
        """The principal for a presented key, or None if unknown, malformed or revoked."""
        parts = presented.split("_", 2)
        if len(parts) != 3 or parts[0] != "te":
            return None
        key_id, secret = parts[1], parts[2]
        digest = _hash(secret)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(digest)
        if hit and hit[0] > now:
            return hit[1]
        with self.db.read() as conn:
            row = (
                conn.execute(
                    select(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                )
                .mappings()
                .first()
            )
        principal = None
        if row is not None and hmac.compare_digest(row["secret_hash"], digest):
            principal = Principal(
                row["id"], row["kind"], frozenset(row["scopes"]), tuple(row["allowed_origins"])
            )
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now + self.TTL_S, principal)
        return principal


def principal_by_id(cache: KeyCache, key_id: str) -> Principal | None:
    """An active key's principal by id (for signed admin sessions), cached like ``verify``."""
    now = time.monotonic()
    marker = f"id:{key_id}"
    with cache._lock:
        hit = cache._cache.get(marker)
    if hit and hit[0] > now:
        return hit[1]
    with cache.db.read() as conn:
        row = (
            conn.execute(
                select(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            )
            .mappings()
            .first()
        )
    principal = (
        Principal(row["id"], row["kind"], frozenset(row["scopes"]), tuple(row["allowed_origins"]))
        if row
        else None
    )
    with cache._lock:
        cache._cache[marker] = (now + KeyCache.TTL_S, principal)
    return principal
