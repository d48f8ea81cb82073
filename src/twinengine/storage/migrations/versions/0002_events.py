"""events: raw event log and per-item impressions

Revision ID: 0002_events
Revises: 0001_catalog
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002_events"
down_revision = "0001_catalog"
branch_labels = ("events",)
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Ts = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("ts", Ts, nullable=False),
        sa.Column("user_id", sa.String(128)),
        sa.Column("session_id", sa.String(128)),
        sa.Column("user_key", sa.String(140), nullable=False),
        sa.Column("request_id", sa.String(64)),
        sa.Column("surface", sa.String(16)),
        sa.Column("item_id", sa.String(128)),
        sa.Column("position", sa.Integer),
        sa.Column("slate", Json),
        sa.Column("experiments", Json),
        sa.Column("kind", sa.String(16)),
        sa.Column("value", sa.Float),
        sa.Column("attributes", Json),
        sa.Column("received_at", Ts, nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_events_ts", "events", ["ts"])
    op.create_index("ix_events_user_ts", "events", ["user_key", "ts"])
    op.create_index("ix_events_item_type", "events", ["item_id", "type"])
    op.create_index("ix_events_request", "events", ["request_id"])
    op.create_table(
        "impressions",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("item_id", sa.String(128), nullable=False),
        sa.Column("request_id", sa.String(64)),
        sa.Column("user_key", sa.String(140), nullable=False),
        sa.Column("surface", sa.String(16)),
        sa.Column("ts", Ts, nullable=False),
        sa.Column("experiments", Json),
    )
    op.create_index("ix_impressions_item_ts", "impressions", ["item_id", "ts"])
    op.create_index("ix_impressions_request", "impressions", ["request_id"])
    op.create_index("ix_impressions_user_ts", "impressions", ["user_key", "ts"])


def downgrade() -> None:
    op.drop_table("impressions")
    op.drop_table("events")
