"""Candidate shapes shared by the generators, ranking and serving."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

from twinengine.catalog.schemas import ItemPublic


@dataclass
class Candidate:
    """One item proposed for a slate: its score, the generator that proposed it, features.

    ``features`` holds every generator's score for the item (``"popular"``, ``"cf"``, ...),
    so a ranker sees all of them whichever source won.
    """

    item_id: str
    score: float
    source: str
    features: dict[str, Any] = field(default_factory=dict)


RecSurface = Literal["feed", "related", "trending", "topic", "popular", "fresh"]


class RecItem(BaseModel):
    """One recommended item."""

    id: str
    score: float
    source: str = Field(description="the generator that proposed it")
    item: ItemPublic | None = None


class RecResponse(BaseModel):
    """A served slate: log ``request_id`` and ``experiments`` with its impression."""

    request_id: str
    surface: str
    user: str | None = None
    policy: str = Field(description="how the slate was made, e.g. personalised or cold_start")
    experiments: dict[str, str] = Field(default_factory=dict)
    data: list[RecItem]
    count: int
