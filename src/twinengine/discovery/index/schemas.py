"""Search I/O shapes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from twinengine.catalog.schemas import FacetCounts, ItemPublic

Mode = Literal["lexical", "dense", "hybrid"]


class SearchHit(BaseModel):
    """One result: the item, its scores, and a snippet with highlight offsets."""

    id: str
    score: float
    lexical_score: float | None = None
    dense_score: float | None = None
    item: ItemPublic
    snippet: str = ""
    highlights: list[tuple[int, int]] = Field(
        default_factory=list, description="[start, end) character offsets of matches in snippet"
    )
    title_highlights: list[tuple[int, int]] = Field(default_factory=list)


class SearchResults(BaseModel):
    """A page of ranked results plus facet counts over the whole result set."""

    q: str
    mode: Mode
    total: int = Field(description="size of the result set the facets count over")
    offset: int
    k: int
    hits: list[SearchHit]
    facets: FacetCounts
    corrected_q: str | None = Field(default=None, description="query after typo correction")
    took_ms: float


class IndexStatus(BaseModel):
    """What the search index holds."""

    built: bool
    items: int = 0
    vocabulary: int = 0
    model: str | None = None
    built_at: str | None = None
    path: str
    catalog_items: int = 0
    pending_changes: int = 0
