"""events: impressions become a view over the impression events' slates

The ``impressions`` table held one row per shown item, copied from each impression event's
slate: two to twenty rows and their index entries written per event, most of the ingest
cost. The same rows are now expanded from ``events.slate`` when read (SQLite's json_each,
Postgres's jsonb_array_elements_text), under the same name and columns, so readers do not
change. ``ix_events_request`` comes back: the join from clicks to the slate they came from
goes through it. Nothing is lost: the table's rows were derived from the events.

Revision ID: 0012_events_impressions_view
Revises: 0011_events_indexes
"""

from alembic import op

revision = "0012_events_impressions_view"
down_revision = "0011_events_indexes"
branch_labels = None
depends_on = None

_COLS = "e.event_id, {position} AS position, {item} AS item_id, e.request_id, e.user_key, " \
    "e.surface, e.ts, e.experiments"  # fmt: skip
SQLITE_VIEW = (
    "CREATE VIEW impressions AS SELECT "
    + _COLS.format(position="COALESCE(e.position, 1) + j.key", item="j.value")
    + " FROM events e, json_each(e.slate) j WHERE e.type = 'impression'"
)
POSTGRES_VIEW = (
    "CREATE VIEW impressions AS SELECT "
    + _COLS.format(position="(COALESCE(e.position, 1) + j.n - 1)::integer", item="j.item")
    + " FROM events e CROSS JOIN LATERAL jsonb_array_elements_text(e.slate)"
    " WITH ORDINALITY AS j(item, n) WHERE e.type = 'impression'"
)


def upgrade() -> None:
    op.drop_table("impressions")
    op.create_index("ix_events_request", "events", ["request_id"])
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.execute(SQLITE_VIEW if sqlite else POSTGRES_VIEW)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    view = SQLITE_VIEW if sqlite else POSTGRES_VIEW
    op.execute("DROP VIEW impressions")
    # The table again, filled from the events it was always derived from.
    op.execute("CREATE TABLE impressions AS " + view.split(" AS ", 1)[1])
    op.create_index("ix_impressions_pk", "impressions", ["event_id", "position"], unique=True)
    op.create_index("ix_impressions_ts", "impressions", ["ts"])
    op.create_index("ix_impressions_request_item", "impressions", ["request_id", "item_id"])
    op.drop_index("ix_events_request", table_name="events")
