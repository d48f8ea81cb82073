"""Router tables: the per-call cost ledger and the response cache (SQLAlchemy Core)."""

from sqlalchemy import Boolean, Column, DateTime, Float, Index, Integer, String, Table, Text, false

from twinengine.storage.schema import metadata

# One row per routed call, whatever its outcome: the spend shown by CLI and page, the budget
# sums, and the idempotency proof ("no completed call repeated") all read this table.
llm_ledger = Table(
    "llm_ledger",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("day", String(10), nullable=False),
    Column("task", String(64), nullable=False),
    Column("run_id", String(128)),
    Column("step", String(128)),
    # sha256(run_id, task, step, input): a resumed run finds its completed call here
    Column("idem_key", String(64)),
    Column("cache_key", String(64)),
    Column("provider", String(64), nullable=False),
    Column("model", String(128), nullable=False),
    Column("tokens_in", Integer, nullable=False, server_default="0"),
    Column("tokens_out", Integer, nullable=False, server_default="0"),
    Column("cost_usd", Float, nullable=False, server_default="0"),
    Column("latency_ms", Float, nullable=False, server_default="0"),
    Column("cached", Boolean, nullable=False, server_default=false()),
    # ok | error | invalid (schema failed) | budget (refused) | replayed (idempotent hit)
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="1"),
    Column("error", Text),
    Index("ix_llm_ledger_day", "day"),
    Index("ix_llm_ledger_run", "run_id"),
    Index("ix_llm_ledger_idem", "idem_key"),
)

llm_cache = Table(
    "llm_cache",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("provider", String(64), nullable=False),
    Column("model", String(128), nullable=False),
    Column("response", Text, nullable=False),
    Column("tokens_in", Integer, nullable=False, server_default="0"),
    Column("tokens_out", Integer, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
