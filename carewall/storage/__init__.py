"""Storage: one SQLAlchemy engine pair per database, SQLite by default, PostgreSQL in production."""

from carewall.storage.db import DEFAULT_URL, Store, open_store

__all__ = ["DEFAULT_URL", "Store", "open_store"]
