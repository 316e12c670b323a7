"""Open (or create) a store: SQLite in WAL mode, migrated to the current schema.

`open_database` returns a `Store`: the sqlite3 connection with the reads the app does most (SELECTs
through `execute` and `query`, `table_names`) answered directly, and everything else (`db["turns"]`,
writes, migrations) handed to a sqlite-utils `Database` over the same connection, made on first use.
Importing sqlite-utils imports numpy when it is installed (about 0.3 s here), and a replay's first frame
needs neither: opening a store and reading it does not import them (issue 6, replay first frame).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import sqlite3
import urllib.parse
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from lhe_tui.common.errors import StoreError

if TYPE_CHECKING:
    from sqlite_utils import Database

DEFAULT_DB = Path("sessions") / "lhe.db"
OUR_TABLES = {"sessions", "samples", "turns", "events", "sweeps"}
MIGRATION_SET = "lhe_tui"
MIGRATION_NAMES = ("m001_initial", "m002_turns_by_finish", "m003_step_from_last_stated_answer",
                   "m004_turn_token_details", "m005_lineage", "m006_failed_turns_and_no_data",
                   "m007_session_token_totals", "m008_sweeps")
"""The names of lhe_tui.store.schema's migrations, in order (a test keeps the two in step): a store that has
them all is opened without importing the schema (nor sqlite-utils)."""
SCHEMA_VERSION = len(MIGRATION_NAMES)
"""The store's `PRAGMA user_version` once migrated: a higher one (or a migration not named above) was written
by a newer lhe-tui, which this one reads but never writes."""

_READ = re.compile(r"\s*(SELECT|WITH)\b", re.IGNORECASE)


class Store:
    """A store's connection, used as a sqlite_utils.Database (which it hands anything but reads to)."""

    def __init__(self, conn: sqlite3.Connection, path: str | Path | None = None, *, readonly: bool = False,
                 keep: Any = None) -> None:
        self.conn = conn
        self.path = Path(path) if path is not None else None   # the store's file (for locks and messages)
        self.readonly = readonly    # opened read-only (a read-only folder or file system): never migrated
        self._keep = keep           # a temporary copy a read-only store is read from, if any
        self.checked = False        # found sound as opened (quick_check, or remembered: lhe_tui.store.checked)
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
        if name.startswith("__") or name in ("conn", "_utils", "path", "readonly", "_keep", "checked"):
            raise AttributeError(name)
        return getattr(self.utils, name)


def _applied(conn: sqlite3.Connection, tables: set[str]) -> set[str]:
    if "_sqlite_migrations" not in tables:
        return set()
    return {r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations WHERE migration_set = ?",
                                       [MIGRATION_SET])}


def _migrations_pending(db: Store, tables: set[str]) -> bool:
    return not _applied(db.conn, tables).issuperset(MIGRATION_NAMES)


def newer_writer(conn: sqlite3.Connection, tables: set[str]) -> str | None:
    """None for a store this lhe-tui knows; else what wrote it, for a message: a store migrated by a newer
    lhe-tui (a higher user_version, or a migration this one does not have)."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    unknown = sorted(_applied(conn, tables) - set(MIGRATION_NAMES))
    if version <= SCHEMA_VERSION and not unknown:
        return None
    app = None
    if "sessions" in tables:
        try:
            app = conn.execute("SELECT app_version FROM sessions WHERE app_version IS NOT NULL "
                               "ORDER BY created_at DESC, rowid DESC LIMIT 1").fetchone()
        except sqlite3.Error:
            app = None
    schema = f"schema {version}" if version > SCHEMA_VERSION else f"migration {unknown[0]}"
    from lhe_tui import __version__

    return (f"written by a newer lhe-tui ({'lhe-tui ' + str(app[0]) + ', ' if app else ''}{schema}; this is "
            f"lhe-tui {__version__}, schema {SCHEMA_VERSION})")


# SQLite's primary result codes (sqlite3.Error.sqlite_errorcode & 0xff).
SQLITE_READONLY, SQLITE_CORRUPT, SQLITE_CANTOPEN, SQLITE_FULL, SQLITE_NOTADB = 8, 11, 14, 13, 26
SQLITE_IOERR, SQLITE_PERM = 10, 3


def sqlite_code(exc: BaseException) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def is_damage(exc: BaseException) -> bool:
    return sqlite_code(exc) == SQLITE_CORRUPT or "malformed" in str(exc)


def damaged_message(path: str | Path, detail: str = "database disk image is malformed") -> str:
    return f"{path} is damaged ({detail}); lhe-tui doctor --db {path} can recover what is readable"


def store_error(path: str | Path, exc: BaseException) -> StoreError:
    """The one line an SQLite error on the store at `path` is said in."""
    code = sqlite_code(exc)
    text = str(exc) or type(exc).__name__
    if is_damage(exc):
        return StoreError(damaged_message(path, text))
    if code == SQLITE_FULL or (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)):
        return StoreError(f"the disk holding {path} is full ({text})")
    if code == SQLITE_READONLY or (isinstance(exc, OSError) and exc.errno == errno.EROFS):
        return StoreError(f"{path} is read-only ({text}); lhe-tui can read it but not store runs there")
    if code == SQLITE_NOTADB:
        return StoreError(f"{path} cannot be opened as an SQLite store ({text})")
    if isinstance(exc, OSError):
        return StoreError(f"{path} cannot be opened ({exc.strerror or exc})")
    return StoreError(f"{path}: {text}")


def quick_check(conn: sqlite3.Connection) -> str | None:
    """None if SQLite's quick_check finds the store sound, else its first finding. Reads every page
    (about 1 ms a MB here when cached: 0.10-0.13 s for a 90 MB store), checks no index against its table."""
    rows = conn.execute("PRAGMA quick_check(1)").fetchall()
    return None if rows == [("ok",)] else str(rows[0][0] if rows else "no answer")


def permission_error(path: Path) -> StoreError:
    """The one line for a store this user may not reach or read."""
    blocked = next((p for p in reversed(path.absolute().parents) if not os.access(p, os.X_OK)), None)
    if blocked is not None:
        return StoreError(f"cannot open {path}: permission denied (this user cannot enter the folder {blocked})")
    return StoreError(f"cannot open {path}: permission denied (this user cannot read the file)")


def store_exists(path: Path) -> bool:
    """Whether there is a file at `path`; one line (a StoreError) when its folder cannot be entered."""
    try:
        path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return False
    except PermissionError:
        raise permission_error(path) from None
    except OSError as exc:
        raise store_error(path, exc) from None
    if not os.access(path, os.R_OK):
        raise permission_error(path)
    return True


def _writable(path: Path) -> bool:
    folder = path.parent if str(path.parent) else Path(".")
    return os.access(folder, os.W_OK) and (not path.exists() or os.access(path, os.W_OK))


def open_database(path: str | Path = DEFAULT_DB, *, create: bool = True, write: bool = True,
                  check: bool = True) -> Database:
    """The store at `path` (a `Store`, typed as the sqlite_utils.Database it stands in for).

    `write=False` (the reading commands): a store that cannot be written (a read-only folder or file
    system) is opened read-only instead, unmigrated, and `store.readonly` says so. `write=True`: such a
    store is refused in one line saying "read-only". `check`: SQLite's quick_check first, so a damaged
    store is said to be damaged (and where doctor is) before anything reads or writes it.
    Every SQLite or OS error comes out as a one-line StoreError.
    """
    path = Path(path)
    if not store_exists(path):
        if not create:
            raise StoreError(f"no session store at {path} (run a session first, or pass --db)")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise StoreError(f"cannot create the store {path}: {path.parent} is read-only "
                                 f"({exc.strerror}); pass --db to a writable place") from None
            raise StoreError(f"cannot create the store {path} ({exc.strerror or exc})") from None
    writable = _writable(path)
    if not writable:
        if write:
            raise StoreError(f"{path} is read-only (its folder or file cannot be written); lhe-tui can read it "
                             "but not store runs there: pass --db to a writable place")
        return _open_readonly(path, check=check)
    try:
        conn = sqlite3.connect(path, timeout=30.0, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 30000")
        db = Store(conn, path)
        tables = set(db.table_names())
        _refuse_foreign(path, tables)
        newer = newer_writer(conn, tables)
        if newer is not None:
            conn.close()
            if write:
                raise StoreError(f"{path} was {newer}: this lhe-tui reads it but does not store runs there; "
                                 "upgrade lhe-tui, or pass --db to another store")
            return _open_readonly(path, check=check)
        if check:
            _check(db, path)
        if _migrations_pending(db, tables) or not tables or \
                conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION or \
                conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            # Creating or migrating: one process at a time (two at once failed "database is locked").
            from lhe_tui.store.locks import store_lock

            with store_lock(path):
                tables = set(db.table_names())
                db.conn.execute("PRAGMA journal_mode = WAL")
                if _migrations_pending(db, tables):
                    from lhe_tui.store.schema import MIGRATIONS

                    if MIGRATIONS.pending(db.utils):
                        MIGRATIONS.apply(db.utils)
                if newer_writer(db.conn, set(db.table_names())) is None:
                    db.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                if db.checked:    # sound before its migration, sound after: remembered as the file is now
                    remember_after_writes(db.conn, path)
        db.conn.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.Error as exc:
        if not write and sqlite_code(exc) in (SQLITE_READONLY, SQLITE_CANTOPEN, SQLITE_PERM):
            return _open_readonly(path, check=check)
        raise store_error(path, exc) from None
    except OSError as exc:
        raise store_error(path, exc) from None
    return cast("Database", db)


def _refuse_foreign(path: Path, tables: set[str]) -> None:
    foreign = tables - OUR_TABLES - {"_sqlite_migrations"}
    if tables and not (tables & OUR_TABLES) and foreign:
        raise StoreError(f"{path} is an SQLite database but not an lhe-tui session store")


def remember_after_writes(conn: sqlite3.Connection, path: Path) -> None:
    """A store known sound that this process wrote: checkpointed (passively: no reader is waited for) and,
    once its WAL is all in the file, remembered sound as the file now is (lhe_tui.store.checked)."""
    from lhe_tui.store import checked

    try:
        busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    except sqlite3.Error:
        return
    if not busy and frames == copied:
        checked.remember_sound(path)


def _check(db: Store, path: Path) -> None:
    """quick_check, unless the file is as it was when last found sound (lhe_tui.store.checked)."""
    from lhe_tui.store import checked

    if checked.known_sound(path):
        db.checked = True
        return
    if quick_check(db.conn) is not None:     # (the findings themselves: lhe-tui doctor)
        checked.forget(path)
        raise StoreError(damaged_message(path))
    checked.remember_sound(path)
    db.checked = True


def readonly_connection(path: Path) -> tuple[sqlite3.Connection, Any]:
    """A read-only connection that sees everything stored, whatever the folder allows, and what must be
    kept alive with it (a temporary copy, or None). See `readonly_uri`."""
    uri, keep = readonly_uri(path)
    return sqlite3.connect(uri, uri=True, check_same_thread=False), keep


def readonly_uri(path: Path) -> tuple[str, Any]:
    """A URI that opens the store at `path` read-only and sees everything stored, and what must be kept
    alive while it is used (a temporary copy, or None).

    `mode=ro` needs the WAL's `-shm` file (or a folder it can be made in); failing that, a store with no
    WAL left is opened `immutable=1`; a store whose WAL still holds commits (its writer crashed) is copied,
    WAL and all, to a temporary folder and read there (immutable would not see those commits)."""
    base = "file:" + urllib.parse.quote(str(Path(path).resolve()))
    for uri in (base + "?mode=ro", base + "?immutable=1"):
        if uri.endswith("immutable=1"):
            wal = Path(str(path) + "-wal")
            if wal.exists() and wal.stat().st_size > 0:
                break
        try:
            conn = sqlite3.connect(uri, uri=True)
            try:
                conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            finally:
                conn.close()
            return uri, None
        except sqlite3.Error as exc:
            # CANTOPEN: no -shm and no folder to make it in; READONLY: a -shm this user cannot write
            if sqlite_code(exc) not in (SQLITE_CANTOPEN, SQLITE_READONLY):
                raise
    import tempfile

    keep = tempfile.TemporaryDirectory(prefix="lhe-tui-ro-")
    copy = Path(keep.name) / Path(path).name
    shutil.copyfile(path, copy)
    shutil.copyfile(str(path) + "-wal", str(copy) + "-wal")
    return "file:" + urllib.parse.quote(str(copy)) + "?mode=ro", keep


def _open_readonly(path: Path, *, check: bool) -> Database:
    try:
        conn, keep = readonly_connection(path)
        db = Store(conn, path, readonly=True, keep=keep)
        _refuse_foreign(path, set(db.table_names()))
        if check:
            _check(db, path)
    except sqlite3.Error as exc:
        raise store_error(path, exc) from None
    except OSError as exc:
        raise store_error(path, exc) from None
    return cast("Database", db)
