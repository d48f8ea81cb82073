"""Health and version."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import text

from twinengine import __version__
from twinengine.api.deps import DbDep

router = APIRouter(tags=["meta"])


class Health(BaseModel):
    """Whether the service and its database answer."""

    status: str
    database: str


class Version(BaseModel):
    """The running version."""

    version: str


@router.get("/health", response_model=Health)
async def health(db: DbDep) -> Health:
    """Liveness plus a database round trip (``SELECT 1``: microseconds, so on the loop)."""
    with db.read() as conn:
        conn.execute(text("SELECT 1"))
    return Health(status="ok", database=db.dialect)


@router.get("/version", response_model=Version)
async def version() -> Version:
    """The twinengine version."""
    return Version(version=__version__)
