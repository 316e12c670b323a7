"""The SQLite session store (sqlite-utils, WAL): schema, writer subscriber, queries."""

from lhe_tui.store.database import DEFAULT_DB, open_database

__all__ = ["DEFAULT_DB", "SessionWriter", "open_database"]


def __getattr__(name: str):
    # The writer is imported when asked for: reading a store (a replay) does not need it.
    if name == "SessionWriter":
        from lhe_tui.store.writer import SessionWriter

        return SessionWriter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
