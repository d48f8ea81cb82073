"""Event I/O shapes: what ``POST /v1/events`` accepts and what it answers."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

EventType = Literal["impression", "click", "conversion", "dwell"]
Surface = Literal["search", "feed", "related", "topic", "trending", "assistant", "other"]
ConversionKind = Literal["copy", "generate", "save", "share"]

_ID = r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$"
# Slates longer than this are not a page a person saw; refusing them keeps rows bounded.
MAX_SLATE = 200


class EventIn(BaseModel):
    """One behaviour event: an impression (a shown slate), click, conversion or dwell."""

    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(min_length=1, max_length=64, pattern=_ID, description="idempotency key")
    type: EventType
    ts: dt.datetime | None = Field(
        default=None, description="when it happened (ISO 8601; naive means UTC; default: now)"
    )
    user_id: str | None = Field(default=None, min_length=1, max_length=128)
    session_id: str | None = Field(default=None, min_length=1, max_length=128)
    request_id: str | None = Field(
        default=None, max_length=64, description="the serving response the event belongs to"
    )
    surface: Surface | None = None
    item_id: str | None = Field(default=None, min_length=1, max_length=128)
    position: int | None = Field(default=None, ge=1, le=10_000, description="1-based")
    slate: list[str] | None = Field(
        default=None, max_length=MAX_SLATE, description="impressions: item ids in shown order"
    )
    experiments: dict[str, str] | None = Field(
        default=None, max_length=50, description="experiment id -> variant at serving time"
    )
    kind: ConversionKind | None = None
    value: float | None = Field(default=None, allow_inf_nan=False)
    attributes: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> EventIn:
        if not self.user_id and not self.session_id:
            raise ValueError("user_id or session_id is required")
        if self.type == "impression":
            if not self.slate:
                raise ValueError("an impression needs a non-empty slate")
            if any(not s or len(s) > 128 for s in self.slate):
                raise ValueError("slate item ids must be 1-128 characters")
        else:
            if not self.item_id:
                raise ValueError(f"a {self.type} event needs item_id")
            if self.slate is not None:
                raise ValueError(f"a {self.type} event carries no slate")
        if self.type == "conversion" and self.kind is None:
            raise ValueError("a conversion needs kind: copy | generate | save | share")
        if self.type != "conversion" and self.kind is not None:
            raise ValueError("kind is only for conversions")
        if self.type == "dwell" and (self.value is None or self.value < 0):
            raise ValueError("a dwell event needs value: milliseconds >= 0")
        return self

    @property
    def user_key(self) -> str:
        """The known user id, else ``s:`` + the anonymous session id."""
        return self.user_id or f"s:{self.session_id}"


class EventBatch(BaseModel):
    """A batch of events; stored in one transaction, all or nothing."""

    model_config = ConfigDict(extra="forbid")

    events: list[EventIn] = Field(min_length=1)


EVENT_BATCH = TypeAdapter(EventBatch)


class IngestResult(BaseModel):
    """What a batch did: every event is stored once its batch is answered."""

    received: int
    inserted: int
    duplicates: int
    impressions: int = Field(description="impression rows (one per shown item) written")
