"""Catalog tables (SQLAlchemy Core)."""

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    func,
)

from twinengine.storage.schema import JsonType, metadata

TOPIC_SOURCES = ("human", "rule", "model", "llm")

items = Table(
    "items",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("body", Text, nullable=False, server_default=""),
    Column("media", String(16), nullable=False, server_default="image"),
    Column("languages", JsonType, nullable=False),
    Column("author", Text),
    Column("author_url", Text),
    Column("source_url", Text),
    Column("licence", String(64)),
    Column("collection", String(200)),
    Column("published", Date),
    Column("image_urls", JsonType, nullable=False),
    Column("attributes", JsonType, nullable=False),
    # sha256 of the canonical item: re-ingesting an unchanged row is detected without diffing
    Column("content_hash", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_items_published", "published"),
    Index("ix_items_collection", "collection"),
    Index("ix_items_media", "media"),
)

# One row per (item, language): language filters use an index instead of JSON functions.
item_languages = Table(
    "item_languages",
    metadata,
    Column("item_id", String(128), ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    Column("lang", String(16), primary_key=True),
    Index("ix_item_languages_lang", "lang"),
)

facets = Table(
    "facets",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("position", Float, nullable=False, server_default="0"),
)

topics = Table(
    "topics",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("facet_id", String(64), ForeignKey("facets.id", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    Column("definition", Text, nullable=False, server_default=""),
    Column("keywords", JsonType, nullable=False),
    Index("ix_topics_facet", "facet_id"),
)

item_topics = Table(
    "item_topics",
    metadata,
    Column("item_id", String(128), ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    Column("topic_id", String(128), ForeignKey("topics.id", ondelete="CASCADE"), primary_key=True),
    # human | rule | model | llm; several sources may tag the same pair, a human one wins
    Column("source", String(16), primary_key=True),
    Column("confidence", Float, nullable=False, server_default="1"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_item_topics_topic", "topic_id"),
)

users = Table(
    "users",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("attributes", JsonType, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
