"""Storage: one ``Database`` interface, SQLite and Postgres behind it, chosen by URL."""

from twinengine.storage.database import Database, open_database
from twinengine.storage.schema import metadata

__all__ = ["Database", "metadata", "open_database"]
