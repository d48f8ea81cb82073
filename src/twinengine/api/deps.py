"""Request dependencies: the app context and its parts, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, Query, Request

from twinengine.config import Settings
from twinengine.context import AppContext
from twinengine.errors import InvalidInput
from twinengine.storage import Database


# These are ``async`` on purpose: FastAPI runs a plain ``def`` dependency in its thread pool,
# and that hop cost ~1 ms of a request on 2 cores for what is one attribute read.
async def get_context(request: Request) -> AppContext:
    """The app's context, set by ``create_app``."""
    return request.app.state.context


async def get_db(request: Request) -> Database:
    """The open database."""
    return request.app.state.context.db


async def get_settings(request: Request) -> Settings:
    """The settings in force."""
    return request.app.state.context.settings


ContextDep = Annotated[AppContext, Depends(get_context)]
DbDep = Annotated[Database, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

# Catalog filters shared by listing and search endpoints.
TopicQ = Annotated[list[str], Query(max_length=10, description="topic ids; an item must carry all")]
Lang = Annotated[str | None, Query(max_length=16)]
Short = Annotated[str | None, Query(max_length=200)]
MediaQ = Annotated[Literal["image", "video", "audio", "text"] | None, Query()]


def check_limit(limit: int, settings: Settings) -> int:
    """Refuse a page size above the configured cap with a reason."""
    if limit < 1 or limit > settings.max_page_size:
        raise InvalidInput(f"limit must be between 1 and {settings.max_page_size}")
    return limit
