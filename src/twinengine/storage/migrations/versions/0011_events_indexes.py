"""events: leaner indexes for the ingest path

Every index is one more B-tree insert per row, and the impressions table gets one row per
shown item, so its indexes dominated the cost of a batch. Kept are the ones the readers use:
events by time and by (user, time); impressions by time and by (request, item), which is the
join from clicks and conversions to what was shown. The others had no reader.

Revision ID: 0011_events_indexes
Revises: 0002_events
"""

from alembic import op

revision = "0011_events_indexes"
down_revision = "0002_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_events_item_type", table_name="events")
    op.drop_index("ix_events_request", table_name="events")
    op.drop_index("ix_impressions_item_ts", table_name="impressions")
    op.drop_index("ix_impressions_request", table_name="impressions")
    op.drop_index("ix_impressions_user_ts", table_name="impressions")
    op.create_index("ix_impressions_ts", "impressions", ["ts"])
    op.create_index("ix_impressions_request_item", "impressions", ["request_id", "item_id"])


def downgrade() -> None:
    op.drop_index("ix_impressions_request_item", table_name="impressions")
    op.drop_index("ix_impressions_ts", table_name="impressions")
    op.create_index("ix_impressions_user_ts", "impressions", ["user_key", "ts"])
    op.create_index("ix_impressions_request", "impressions", ["request_id"])
    op.create_index("ix_impressions_item_ts", "impressions", ["item_id", "ts"])
    op.create_index("ix_events_request", "events", ["request_id"])
    op.create_index("ix_events_item_type", "events", ["item_id", "type"])
