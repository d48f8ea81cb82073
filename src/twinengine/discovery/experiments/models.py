"""Experiment tables.

An experiment is data: its variants (each with a config serving applies), traffic, layer slot,
targeting, metrics and analysis settings. Exposures are not stored here: serving logs the
assignment with every impression (``events.experiments``), and analysis reads the event log.
"""

from sqlalchemy import Column, DateTime, Float, Index, String, Table, Text

from twinengine.storage.schema import JsonType, metadata

STATUSES = ("draft", "running", "stopped")
KINDS = ("ab", "interleaving")

experiments = Table(
    "experiments",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("kind", String(16), nullable=False),  # ab | interleaving
    Column("status", String(16), nullable=False),  # draft | running | stopped
    # Hash seed: fixed at creation so assignment is stable across processes and restarts.
    Column("salt", String(64), nullable=False),
    # Experiments in one layer own disjoint slices [layer_start, layer_end) of the layer's
    # hash space, so a user is in at most one of them.
    Column("layer", String(64)),
    Column("layer_start", Float, nullable=False, default=0.0),
    Column("layer_end", Float, nullable=False, default=1.0),
    Column("traffic", Float, nullable=False, default=1.0),
    Column("variants", JsonType, nullable=False),  # [{"key", "weight", "config"}]; first = control
    Column("targeting", JsonType, nullable=False),  # {"surfaces": [...], "languages": [...]}
    Column("metrics", JsonType, nullable=False),  # {"primary": [...], "guardrails": [...]}
    Column("analysis", JsonType, nullable=False),  # engine, alpha, sequential, correction, ...
    Column("decision", JsonType),  # the decision recorded when the experiment was stopped
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("stopped_at", DateTime(timezone=True)),
    Index("ix_experiments_status", "status"),
)
