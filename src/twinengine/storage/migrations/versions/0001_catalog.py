"""catalog: items, languages, facets, topics, item-topic links, users

Revision ID: 0001_catalog
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001_catalog"
down_revision = None
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Ts = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "items",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("body", sa.Text, nullable=False, server_default=""),
        sa.Column("media", sa.String(16), nullable=False, server_default="image"),
        sa.Column("languages", Json, nullable=False),
        sa.Column("author", sa.Text),
        sa.Column("author_url", sa.Text),
        sa.Column("source_url", sa.Text),
        sa.Column("licence", sa.String(64)),
        sa.Column("collection", sa.String(200)),
        sa.Column("published", sa.Date),
        sa.Column("image_urls", Json, nullable=False),
        sa.Column("attributes", Json, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("created_at", Ts, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", Ts, nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_items_published", "items", ["published"])
    op.create_index("ix_items_collection", "items", ["collection"])
    op.create_index("ix_items_media", "items", ["media"])
    op.create_table(
        "item_languages",
        sa.Column(
            "item_id",
            sa.String(128),
            sa.ForeignKey("items.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("lang", sa.String(16), primary_key=True),
    )
    op.create_index("ix_item_languages_lang", "item_languages", ["lang"])
    op.create_table(
        "facets",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("position", sa.Float, nullable=False, server_default="0"),
    )
    op.create_table(
        "topics",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column(
            "facet_id",
            sa.String(64),
            sa.ForeignKey("facets.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("definition", sa.Text, nullable=False, server_default=""),
        sa.Column("keywords", Json, nullable=False),
    )
    op.create_index("ix_topics_facet", "topics", ["facet_id"])
    op.create_table(
        "item_topics",
        sa.Column(
            "item_id",
            sa.String(128),
            sa.ForeignKey("items.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "topic_id",
            sa.String(128),
            sa.ForeignKey("topics.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("source", sa.String(16), primary_key=True),
        sa.Column("confidence", sa.Float, nullable=False, server_default="1"),
        sa.Column("created_at", Ts, nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_item_topics_topic", "item_topics", ["topic_id"])
    op.create_table(
        "users",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("attributes", Json, nullable=False),
        sa.Column("created_at", Ts, nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    for name in ("users", "item_topics", "topics", "facets", "item_languages", "items"):
        op.drop_table(name)
