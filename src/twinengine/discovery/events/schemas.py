"""Event I/O shapes: what ``POST /v1/events`` accepts and what it answers."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, Required

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    model_validator,
)
from typing_extensions import TypedDict

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
    position: int | None = Field(
        default=None,
        ge=1,
        le=10_000,
        description="1-based position of item_id; for an impression, of slate[0] (default 1), "
        "so a slate seen in parts (infinite scroll) is logged as several impressions",
    )
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
        problem = check_event(self.__dict__)
        if problem:
            raise ValueError(problem)
        return self

    @property
    def user_key(self) -> str:
        """The known user id, else ``s:`` + the anonymous session id."""
        return self.user_id or f"s:{self.session_id}"


class EventBatch(BaseModel):
    """A batch of events; stored in one transaction, all or nothing."""

    model_config = ConfigDict(extra="forbid")

    events: list[EventIn] = Field(min_length=1)


def check_event(e: dict[str, Any]) -> str | None:
    """The cross-field rules an event must meet; the first one broken, or None."""
    typ = e["type"]
    if not e.get("user_id") and not e.get("session_id"):
        return "user_id or session_id is required"
    if typ == "impression":
        slate = e.get("slate")
        if not slate:
            return "an impression needs a non-empty slate"
        for s in slate:
            if not s or len(s) > 128:
                return "slate item ids must be 1-128 characters"
    else:
        if not e.get("item_id"):
            return f"a {typ} event needs item_id"
        if e.get("slate") is not None:
            return f"a {typ} event carries no slate"
    kind = e.get("kind")
    if typ == "conversion":
        if kind is None:
            return "a conversion needs kind: copy | generate | save | share"
    elif kind is not None:
        return "kind is only for conversions"
    if typ == "dwell":
        value = e.get("value")
        if value is None or value < 0:
            return "a dwell event needs value: milliseconds >= 0"
    return None


# The ingest hot path validates into plain dicts (no model objects): same rules as EventIn.
_Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=_ID)]
_Str128 = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class EventDict(TypedDict, total=False):
    """``EventIn`` as a dict, for fast validation of large batches."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]

    event_id: Required[_Id]
    type: Required[EventType]
    ts: dt.datetime | None
    user_id: _Str128 | None
    session_id: _Str128 | None
    request_id: Annotated[str, StringConstraints(max_length=64)] | None
    surface: Surface | None
    item_id: _Str128 | None
    position: Annotated[int, Field(ge=1, le=10_000)] | None
    slate: Annotated[list[str], Field(max_length=MAX_SLATE)] | None
    experiments: Annotated[dict[str, str], Field(max_length=50)] | None
    kind: ConversionKind | None
    value: Annotated[float, Field(allow_inf_nan=False)] | None
    attributes: dict[str, Any] | None


class BatchDict(TypedDict):
    """``EventBatch`` as a dict."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]

    events: Annotated[list[EventDict], Field(min_length=1)]


EVENT_BATCH = TypeAdapter(BatchDict)
EVENT_DICTS = TypeAdapter(list[EventDict])


class IngestResult(BaseModel):
    """What a batch did: every event is stored once its batch is answered."""

    received: int
    inserted: int
    duplicates: int
    impressions: int = Field(description="impression rows (one per shown item) written")
