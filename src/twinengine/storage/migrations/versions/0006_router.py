"""router: LLM cost ledger and response cache

Revision ID: 0006_router
Revises: 0001_catalog
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_router"
down_revision = "0001_catalog"
branch_labels = ("router",)
depends_on = None

Ts = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "llm_ledger",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("ts", Ts, nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("task", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(128)),
        sa.Column("step", sa.String(128)),
        sa.Column("idem_key", sa.String(64)),
        sa.Column("cache_key", sa.String(64)),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("tokens_in", sa.Integer, nullable=False, server_default="0"),
        sa.Column("tokens_out", sa.Integer, nullable=False, server_default="0"),
        sa.Column("cost_usd", sa.Float, nullable=False, server_default="0"),
        sa.Column("latency_ms", sa.Float, nullable=False, server_default="0"),
        sa.Column("cached", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="1"),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_llm_ledger_day", "llm_ledger", ["day"])
    op.create_index("ix_llm_ledger_run", "llm_ledger", ["run_id"])
    op.create_index("ix_llm_ledger_idem", "llm_ledger", ["idem_key"])
    op.create_table(
        "llm_cache",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("response", sa.Text, nullable=False),
        sa.Column("tokens_in", sa.Integer, nullable=False, server_default="0"),
        sa.Column("tokens_out", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", Ts, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("llm_cache")
    op.drop_table("llm_ledger")
