"""Catalog I/O shapes: what ingest accepts and what the API returns."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Media = Literal["image", "video", "audio", "text"]
TopicSource = Literal["human", "rule", "model", "llm"]

# Field names the canonical item has; anything else a row carries goes to ``attributes``.
ITEM_FIELDS = (
    "id",
    "title",
    "description",
    "body",
    "media",
    "languages",
    "author",
    "author_url",
    "source_url",
    "licence",
    "collection",
    "published",
    "image_urls",
    "attributes",
)


class ItemCreate(BaseModel):
    """One catalog item as ingest accepts it (after field mapping)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$")
    title: str = Field(min_length=1, max_length=2000)
    description: str = Field(default="", max_length=20_000)
    body: str = Field(default="", max_length=200_000)
    media: Media = "image"
    languages: list[str] = Field(default_factory=list)
    author: str | None = None
    author_url: str | None = None
    source_url: str | None = None
    licence: str | None = None
    collection: str | None = None
    published: dt.date | None = None
    image_urls: list[str] = Field(default_factory=list)
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("description", "body", mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        return "" if v is None else v

    @field_validator("languages", "image_urls", mode="before")
    @classmethod
    def _none_is_empty_list(cls, v: Any) -> Any:
        return [] if v is None else v

    @field_validator("languages")
    @classmethod
    def _lang_codes(cls, v: list[str]) -> list[str]:
        out = []
        for code in v:
            code = code.strip().lower()
            if not code or len(code) > 16:
                raise ValueError(f"bad language code {code!r}")
            out.append(code)
        return out


class TopicLink(BaseModel):
    """A topic attached to an item, with who attached it and how sure they were."""

    topic_id: str
    source: TopicSource
    confidence: float = Field(ge=0, le=1)


class ItemPublic(BaseModel):
    """An item as the API returns it."""

    id: str
    title: str
    description: str
    body: str
    media: str
    languages: list[str]
    author: str | None
    author_url: str | None
    source_url: str | None
    licence: str | None
    collection: str | None
    published: dt.date | None
    image_urls: list[str]
    attributes: dict[str, Any]
    topics: list[TopicLink] = Field(default_factory=list)


class ItemPage(BaseModel):
    """One page of items; pass ``next_cursor`` back to get the next."""

    data: list[ItemPublic]
    count: int
    next_cursor: str | None


class FacetCreate(BaseModel):
    """A facet in a taxonomy file."""

    id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1)
    description: str = ""


class TopicCreate(BaseModel):
    """A topic in a taxonomy file."""

    id: str = Field(min_length=1, max_length=128)
    facet: str = Field(min_length=1)
    name: str = Field(min_length=1)
    definition: str = ""
    keywords: list[str] = Field(default_factory=list)


class TaxonomyCreate(BaseModel):
    """A taxonomy file: facets and topics."""

    version: int | None = None
    facets: list[FacetCreate]
    topics: list[TopicCreate]


class TopicPublic(BaseModel):
    """A topic with how many items carry it."""

    id: str
    facet: str
    name: str
    definition: str
    keywords: list[str]
    count: int = 0


class FacetPublic(BaseModel):
    """A facet and its topics."""

    id: str
    name: str
    description: str
    topics: list[TopicPublic]


class ValueCount(BaseModel):
    """A facet value and its item count."""

    value: str
    count: int


class FacetCounts(BaseModel):
    """Counts for every filterable field, over the items a filter selects."""

    total: int
    topics: list[ValueCount]
    languages: list[ValueCount]
    collections: list[ValueCount]
    media: list[ValueCount]


class IngestReport(BaseModel):
    """What an ingest did."""

    file: str
    rows: int
    inserted: int
    updated: int
    unchanged: int
    rejected: int
    reject_file: str | None = None
