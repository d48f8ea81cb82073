"""The event log: record behaviour, and read it back for recommendations, ranking, experiments.

``record`` is the only writer (the API, the JS tracker, the simulator and imports all use it).
A batch is validated whole, then stored in one transaction: when ``record`` returns, every
event of the batch is durable; when it raises, none of them was written.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import ValidationError

from twinengine.context import AppContext
from twinengine.discovery.events import store
from twinengine.discovery.events.schemas import (
    EVENT_BATCH,
    EVENT_DICTS,
    EventIn,
    IngestResult,
    check_event,
)
from twinengine.errors import InvalidInput, PayloadTooLarge

log = logging.getLogger(__name__)

# Called after each committed batch with the batch's validated event dicts (caches, counters).
EventListener = Callable[[list[dict[str, Any]]], None]
_LISTENERS: list[EventListener] = []


def add_listener(listener: EventListener) -> None:
    """Call ``listener(events)`` after every committed batch with its (validated) events."""
    if listener not in _LISTENERS:
        _LISTENERS.append(listener)


def remove_listener(listener: EventListener) -> None:
    """Stop calling ``listener``."""
    if listener in _LISTENERS:
        _LISTENERS.remove(listener)


def parse_batch(body: bytes | str) -> list[dict[str, Any]]:
    """Validate a JSON body ``{"events": [...]}`` into event dicts; ``InvalidInput`` says why."""
    try:
        batch = EVENT_BATCH.validate_json(body)["events"]
    except ValidationError as exc:
        raise InvalidInput(_describe(exc), details=_details(exc)) from exc
    _check(batch)
    return batch


def validate(raw: Sequence[dict[str, Any] | EventIn]) -> list[dict[str, Any]]:
    """Validate event dicts (``EventIn`` objects are already valid) into event dicts."""
    if all(isinstance(e, EventIn) for e in raw):
        return [e.model_dump() for e in raw]  # type: ignore[union-attr]
    dicts = [e.model_dump() if isinstance(e, EventIn) else e for e in raw]
    try:
        batch = EVENT_DICTS.validate_python(dicts)
    except ValidationError as exc:
        raise InvalidInput(_describe(exc, prefix="events"), details=_details(exc)) from exc
    _check(batch)
    return batch


def _check(batch: list[dict[str, Any]]) -> None:
    problems = []
    for n, e in enumerate(batch):
        problem = check_event(e)
        if problem:
            problems.append(f"events.{n}: {problem}")
    if problems:
        raise InvalidInput("; ".join(problems[:5]))


def record(
    ctx: AppContext, events: Sequence[EventIn | dict[str, Any]], *, validated: bool = False
) -> IngestResult:
    """Store a batch durably in one transaction; events already stored are skipped.

    ``validated=True`` skips validation for dicts that came from ``parse_batch``.
    """
    batch = list(events) if validated else validate(events)  # type: ignore[arg-type]
    if not batch:
        raise InvalidInput("the batch holds no events")
    cap = ctx.settings.events_max_batch
    if len(batch) > cap:
        raise PayloadTooLarge(f"a batch holds at most {cap} events; got {len(batch)}")
    now = dt.datetime.now(dt.UTC)
    unique: dict[str, dict[str, Any]] = {}
    for e in batch:  # a repeat inside the batch counts as a duplicate; the first one wins
        unique.setdefault(e["event_id"], e)
    rows = list(unique.values())
    inserted, n_imps = store.insert_batch(ctx.db, rows, now=now, fsync=ctx.settings.events_fsync)
    result = IngestResult(
        received=len(batch), inserted=inserted, duplicates=len(batch) - inserted, impressions=n_imps
    )
    if _LISTENERS and inserted:
        for listener in list(_LISTENERS):
            try:
                listener(rows)
            except Exception:  # a cache must never fail a durable write
                log.exception("event listener %r failed", listener)
    return result


def ingest_json(ctx: AppContext, body: bytes | str) -> IngestResult:
    """Validate and store a JSON batch body (what ``POST /v1/events`` does)."""
    return record(ctx, parse_batch(body), validated=True)


def load_impressions(
    ctx: AppContext,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    surface: str | None = None,
) -> list[dict[str, Any]]:
    """One row per shown item, with its clicks and conversions joined by request and item.

    Keys: event_id, request_id, user_key, surface, ts (aware UTC), item_id, position (1-based),
    experiments, clicks, conversions, conversion_value, clicked, converted.
    """
    return store.select_impressions(ctx.db, since=since, until=until, surface=surface)


def load_events(
    ctx: AppContext,
    *,
    types: Sequence[str] | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    user_key: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Raw events, oldest first (ts and received_at as aware UTC)."""
    return store.select_events(
        ctx.db, types=types, since=since, until=until, user_key=user_key, limit=limit
    )


def count_events(ctx: AppContext) -> int:
    """How many events are stored."""
    return store.count_events(ctx.db)


def _describe(exc: ValidationError, prefix: str = "") -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in (prefix, *err.get("loc", ())) if p != "")
        parts.append(f"{loc or 'body'}: {err.get('msg')}")
    return "; ".join(parts) or "invalid events"


def _details(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg"))}
        for e in exc.errors()[:20]
    ]
