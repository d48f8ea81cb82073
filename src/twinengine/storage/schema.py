"""The one SQLAlchemy ``MetaData`` every domain's tables register on.

Each domain declares its tables in its own ``models.py``; migrations create them.
"""

from sqlalchemy import JSON, MetaData
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# JSON on SQLite, JSONB on Postgres: same Python values on both.
JsonType = JSON().with_variant(JSONB(), "postgresql")
