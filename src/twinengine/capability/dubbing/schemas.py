"""Dubbing I/O shapes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class DubRunPublic(BaseModel):
    """A dubbing run as the API and page show it."""

    id: str
    status: str = Field(description="queued, running, done or failed")
    target: str
    source: str | None = None
    voice_match: bool = False
    lipsync: bool = False
    original_name: str | None = None
    created: str | None = None
    stages: list[dict[str, Any]] = Field(default_factory=list)
    error: str | None = None
    files: list[str] = Field(default_factory=list)
    quality: dict[str, Any] | None = None
    item_id: str | None = None
    urls: dict[str, str] = Field(default_factory=dict)
