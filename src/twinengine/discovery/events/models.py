"""Event log tables.

``events`` holds every event as received (idempotent by ``event_id``). ``impressions`` expands
each impression event into one row per shown item with its position, which is what
features, click models and experiment analysis read. It is a view over ``events.slate``
(migration 0012): written never, read like a table.
"""

from sqlalchemy import Column, DateTime, Float, Index, Integer, String, Table, func

from twinengine.storage.schema import JsonType, metadata

EVENT_TYPES = ("impression", "click", "conversion", "dwell")
SURFACES = ("search", "feed", "related", "topic", "trending", "assistant", "other")
CONVERSION_KINDS = ("copy", "generate", "save", "share")

events = Table(
    "events",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("type", String(16), nullable=False),  # impression | click | conversion | dwell
    Column("ts", DateTime(timezone=True), nullable=False),
    # who: a known user id, else the anonymous session id; user_key = user_id or "s:"+session_id
    Column("user_id", String(128)),
    Column("session_id", String(128)),
    Column("user_key", String(140), nullable=False),
    Column("request_id", String(64)),  # ties clicks/conversions to the impression they came from
    Column("surface", String(16)),
    Column("item_id", String(128)),  # clicked/converted/dwelled item; null for impressions
    Column("position", Integer),  # 1-based position of item_id in its slate, when known
    Column("slate", JsonType),  # impressions: [item ids in shown order]
    Column("experiments", JsonType),  # {experiment id: variant} assignments at serving time
    Column("kind", String(16)),  # conversions: copy | generate | save | share
    Column("value", Float),  # conversions: value; dwell: milliseconds
    Column("attributes", JsonType),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Only what readers use (migration 0011): every index is paid on each ingested row.
    Index("ix_events_ts", "ts"),
    Index("ix_events_user_ts", "user_key", "ts"),
    Index("ix_events_request", "request_id"),  # clicks -> the slate they came from
)

impressions = Table(
    "impressions",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("position", Integer, primary_key=True),  # 1-based
    Column("item_id", String(128), nullable=False),
    Column("request_id", String(64)),
    Column("user_key", String(140), nullable=False),
    Column("surface", String(16)),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("experiments", JsonType),
)
