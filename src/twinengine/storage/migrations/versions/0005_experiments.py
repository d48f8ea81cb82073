"""experiments: experiment definitions (variants, traffic, layers, targeting, analysis)

Revision ID: 0005_experiments
Revises: 0001_catalog
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005_experiments"
down_revision = "0001_catalog"
branch_labels = ("experiments",)
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Ts = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("salt", sa.String(64), nullable=False),
        sa.Column("layer", sa.String(64)),
        sa.Column("layer_start", sa.Float, nullable=False, server_default="0"),
        sa.Column("layer_end", sa.Float, nullable=False, server_default="1"),
        sa.Column("traffic", sa.Float, nullable=False, server_default="1"),
        sa.Column("variants", Json, nullable=False),
        sa.Column("targeting", Json, nullable=False),
        sa.Column("metrics", Json, nullable=False),
        sa.Column("analysis", Json, nullable=False),
        sa.Column("decision", Json),
        sa.Column("created_at", Ts, nullable=False),
        sa.Column("started_at", Ts),
        sa.Column("stopped_at", Ts),
    )
    op.create_index("ix_experiments_status", "experiments", ["status"])


def downgrade() -> None:
    op.drop_table("experiments")
