"""Open (or create) a store: SQLite in WAL mode through sqlite-utils, migrated to the current schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlite_utils import Database

from lhe_tui.errors import StoreError
from lhe_tui.store.schema import MIGRATIONS

DEFAULT_DB = Path("sessions") / "lhe.db"
OUR_TABLES = {"sessions", "samples", "turns", "events"}


def open_database(path: str | Path = DEFAULT_DB, *, create: bool = True) -> Database:
    path = Path(path)
    if not path.exists():
        if not create:
            raise StoreError(f"no session store at {path} (run a session first, or pass --db)")
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(path, timeout=30.0, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 30000")
        db = Database(conn)
        tables = set(db.table_names())
        foreign = tables - OUR_TABLES - {"_sqlite_migrations"}
        if tables and not (tables & OUR_TABLES) and foreign:
            raise StoreError(f"{path} is an SQLite database but not an lhe-tui session store")
        db.conn.execute("PRAGMA journal_mode = WAL")
        db.conn.execute("PRAGMA synchronous = NORMAL")
        if MIGRATIONS.pending(db):
            MIGRATIONS.apply(db)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} cannot be opened as an SQLite store ({exc})") from None
    except OSError as exc:
        raise StoreError(f"{path} cannot be opened ({exc.strerror or exc})") from None
    return db
