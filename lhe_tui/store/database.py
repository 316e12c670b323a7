"""Open (or create) a store: SQLite in WAL mode, migrated to the current schema.

`open_database` returns a `Store`: the sqlite3 connection with the reads the app does most (SELECTs
through `execute` and `query`, `table_names`) answered directly, and everything else (`db["turns"]`,
writes, migrations) handed to a sqlite-utils `Database` over the same connection, made on first use.
Importing sqlite-utils imports numpy when it is installed (about 0.3 s here), and a replay's first frame
needs neither: opening a store and reading it does not import them (issue 6, replay first frame).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from lhe_tui.errors import StoreError

if TYPE_CHECKING:
    from sqlite_utils import Database

DEFAULT_DB = Path("sessions") / "lhe.db"
OUR_TABLES = {"sessions", "samples", "turns", "events"}
MIGRATION_SET = "lhe_tui"
MIGRATION_NAMES = ("m001_initial", "m002_turns_by_finish", "m003_step_from_last_stated_answer")
"""The names of lhe_tui.store.schema's migrations, in order (a test keeps the two in step): a store that has
them all is opened without importing the schema (nor sqlite-utils)."""

_READ = re.compile(r"\s*(SELECT|WITH)\b", re.IGNORECASE)


class Store:
    """A store's connection, used as a sqlite_utils.Database (which it hands anything but reads to)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._utils: Database | None = None

    @property
    def utils(self) -> Database:
        """The sqlite-utils Database over this connection (imports sqlite-utils on first use)."""
        if self._utils is None:
            from sqlite_utils import Database

            self._utils = Database(self.conn)
        return self._utils

    def execute(self, sql: str, parameters: Sequence | dict[str, Any] | None = None) -> sqlite3.Cursor:
        if not _READ.match(sql):
            return self.utils.execute(sql, parameters)
        return self.conn.execute(sql, parameters or ())

    def query(self, sql: str, params: Sequence | dict[str, Any] | None = None) -> Iterator[dict]:
        """Rows as dicts. A SELECT opens no transaction (as in sqlite-utils); other SQL goes to sqlite-utils."""
        if not _READ.match(sql):
            return self.utils.query(sql, params)
        cursor = self.conn.execute(sql, params or ())
        keys = [d[0] for d in cursor.description]
        return (dict(zip(keys, row)) for row in cursor)

    def table_names(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]

    def __getitem__(self, name: str):
        return self.utils[name]

    def __getattr__(self, name: str):
        if name.startswith("__") or name in ("conn", "_utils"):
            raise AttributeError(name)
        return getattr(self.utils, name)


def _migrations_pending(db: Store, tables: set[str]) -> bool:
    if "_sqlite_migrations" not in tables:
        return True
    applied = {r[0] for r in db.conn.execute("SELECT name FROM _sqlite_migrations WHERE migration_set = ?",
                                             [MIGRATION_SET])}
    return not applied.issuperset(MIGRATION_NAMES)


def open_database(path: str | Path = DEFAULT_DB, *, create: bool = True) -> Database:
    """The store at `path` (a `Store`, typed as the sqlite_utils.Database it stands in for)."""
    path = Path(path)
    if not path.exists():
        if not create:
            raise StoreError(f"no session store at {path} (run a session first, or pass --db)")
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(path, timeout=30.0, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 30000")
        db = Store(conn)
        tables = set(db.table_names())
        foreign = tables - OUR_TABLES - {"_sqlite_migrations"}
        if tables and not (tables & OUR_TABLES) and foreign:
            raise StoreError(f"{path} is an SQLite database but not an lhe-tui session store")
        db.conn.execute("PRAGMA journal_mode = WAL")
        db.conn.execute("PRAGMA synchronous = NORMAL")
        if _migrations_pending(db, tables):
            from lhe_tui.store.schema import MIGRATIONS

            if MIGRATIONS.pending(db.utils):
                MIGRATIONS.apply(db.utils)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} cannot be opened as an SQLite store ({exc})") from None
    except OSError as exc:
        raise StoreError(f"{path} cannot be opened ({exc.strerror or exc})") from None
    return cast("Database", db)
