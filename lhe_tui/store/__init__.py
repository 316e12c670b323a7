"""The SQLite session store (sqlite-utils, WAL): schema, writer subscriber, queries."""

from lhe_tui.store.database import DEFAULT_DB, open_database
from lhe_tui.store.writer import SessionWriter

__all__ = ["DEFAULT_DB", "SessionWriter", "open_database"]
