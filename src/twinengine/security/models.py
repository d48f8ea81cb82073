"""API key table: only a hash of each secret is stored."""

from sqlalchemy import Column, DateTime, String, Table, func

from twinengine.storage.schema import JsonType, metadata

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),  # the public prefix shown in lists
    Column("name", String(200), nullable=False),
    Column("kind", String(16), nullable=False),  # secret | publishable
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("scopes", JsonType, nullable=False),
    Column("allowed_origins", JsonType, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True)),
)
