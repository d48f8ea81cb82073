"""API key management (admin scope)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from twinengine.api.deps import DbDep
from twinengine.security import service
from twinengine.security.keys import KeyCreated, KeyPublic

router = APIRouter(tags=["keys"])


class KeyRequest(BaseModel):
    """A key to create."""

    name: str = Field(min_length=1, max_length=200)
    scopes: list[str] = Field(min_length=1, max_length=4)
    kind: Literal["secret", "publishable"] = "secret"
    allowed_origins: list[str] = Field(default_factory=list, max_length=20)


@router.get("/keys", response_model=list[KeyPublic])
def list_keys(db: DbDep) -> list[KeyPublic]:
    """Every key (never the secrets)."""
    return service.list_keys(db)


@router.post("/keys", response_model=KeyCreated, status_code=201)
def create_key(db: DbDep, body: KeyRequest) -> KeyCreated:
    """Create a key; the secret is in this response only."""
    return service.create_key(
        db, name=body.name, scopes=body.scopes, kind=body.kind, allowed_origins=body.allowed_origins
    )


@router.delete("/keys/{key_id}", status_code=204)
def revoke_key(db: DbDep, key_id: str) -> None:
    """Revoke a key."""
    service.revoke_key(db, key_id=key_id)
