"""Workflow run shapes for the CLI, API and runs page."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field


class StepPublic(BaseModel):
    """One checkpointed step of a run."""

    n: int
    name: str
    started_at: dt.datetime | None = None
    seconds: float | None = None
    error: str | None = None
    output: Any = None


class RunPublic(BaseModel):
    """A workflow run: status, timings, cost and (for show) its steps and result."""

    id: str
    name: str
    status: str
    queue: str | None = None
    executor: str | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    seconds: float | None = None
    cost_usd: float | None = None
    error: str | None = None
    input: Any = None
    output: Any = None
    steps: list[StepPublic] = Field(default_factory=list)


class RunPage(BaseModel):
    """A page of runs, newest first."""

    data: list[RunPublic]
    count: int


class DropCreate(BaseModel):
    """A drop submitted through the API: the file's content and its kind."""

    content: str = Field(min_length=1, description="JSONL rows or an awesome-list README")
    format: str = Field(default="jsonl", pattern="^(jsonl|markdown|csv)$")
    collection: str | None = Field(default=None, max_length=200)
    licence: str | None = Field(default=None, max_length=64)
    allow_llm: bool | None = None


class DropStarted(BaseModel):
    """The id of a queued drop, and where to follow it."""

    id: str
    status: str
    url: str
