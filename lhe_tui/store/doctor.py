"""`lhe-tui doctor`: a store's integrity report, and a recovered copy of what is readable in a NEW file.

The store is only ever opened read-only (lhe_tui.store.database.readonly_connection: `mode=ro`, else
`immutable=1`, else a temporary copy), so neither the check nor a recovery changes it: not even a WAL
checkpoint. A recovery is written to a temporary file beside OUT and renamed onto OUT once complete; OUT
must not exist.

Recovery, best first:
1. SQLite's own `.recover` (the `sqlite3` command-line shell, 3.29 or newer, if it is installed: an optional
   tool, never a dependency): it reads every page it can, rows of damaged b-trees included, and puts rows it
   cannot place in `lost_and_found`.
2. `VACUUM INTO`, which copies a store whose damage does not lie on its path (it stops at the first bad page).
3. Table by table, row by row in rowid order, skipping what cannot be read: after an error the scan goes on
   from a rowid further on (1, 2, 4, ... past the last row read), so a damaged leaf costs its rows only.
No Textual here.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from lhe_tui.common.errors import StoreError
from lhe_tui.store.database import OUR_TABLES, newer_writer, quick_check, readonly_connection, store_exists

MAX_FINDINGS = 20
TABLES = ("_sqlite_migrations", "sessions", "samples", "turns", "events")


@dataclass
class Report:
    path: Path
    size: int = 0
    pages: int = 0
    findings: list[str] = field(default_factory=list)
    rows: dict[str, int | str] = field(default_factory=dict)   # table -> rows counted, or why not
    newer: str | None = None   # written by a newer lhe-tui: which (lhe_tui.store.database.newer_writer)

    @property
    def sound(self) -> bool:
        return not self.findings

    def lines(self, *, hint: bool = True) -> list[str]:
        """`hint`: end a damaged store's report with how to recover it (not while it is being recovered)."""
        out = [f"store {self.path}: {self.size / 1e6:.1f} MB, {self.pages} pages"]
        if self.newer:
            out.append(f"this store was {self.newer}: this lhe-tui reads it but does not write it")
        if self.sound:
            out.append("integrity check: ok")
        else:
            out.append(f"integrity check: DAMAGED ({len(self.findings)} finding"
                       f"{'s' if len(self.findings) != 1 else ''}{', first ' + str(MAX_FINDINGS) if len(self.findings) >= MAX_FINDINGS else ''}):")
            out += [f"  {finding}" for finding in self.findings]
        out.append("rows: " + ", ".join(f"{table} {count}" for table, count in self.rows.items()))
        if not self.sound and hint:
            out.append(f"recover what is readable with: lhe-tui doctor --db {self.path} --recover NEW.db "
                       "(the store itself is never changed)")
        return out


def _connect(path: Path) -> tuple[sqlite3.Connection, object]:
    if not store_exists(path):     # (a folder or file this user may not read: one line)
        raise StoreError(f"no session store at {path}")
    try:
        return readonly_connection(path)
    except sqlite3.Error as exc:
        raise StoreError(f"{path} cannot be opened as an SQLite store ({exc})") from None
    except OSError as exc:
        raise StoreError(f"{path} cannot be opened ({exc.strerror or exc})") from None


def diagnose(path: str | Path) -> Report:
    path = Path(path)
    conn, keep = _connect(path)
    report = Report(path, size=path.stat().st_size)
    try:
        try:
            report.pages = conn.execute("PRAGMA page_count").fetchone()[0]
        except sqlite3.DatabaseError:
            pass
        report.findings = _findings(conn)
        try:
            report.newer = newer_writer(conn, {r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")})
        except sqlite3.DatabaseError:
            pass
        for table in TABLES:
            try:
                report.rows[table] = conn.execute(f"SELECT COUNT(*) FROM [{table}]").fetchone()[0]
            except sqlite3.DatabaseError as exc:
                report.rows[table] = f"unreadable ({exc})"
    finally:
        conn.close()
        del keep
    return report


def _findings(conn: sqlite3.Connection) -> list[str]:
    """integrity_check's findings, as many as come before it stops at damage it cannot walk past."""
    found: list[str] = []
    for pragma in ("integrity_check", "quick_check"):
        found = []
        try:
            for (line,) in conn.execute(f"PRAGMA {pragma}({MAX_FINDINGS})"):
                if line != "ok":
                    found += [part.strip() for part in line.splitlines() if part.strip() != "*** in database main ***"]
            return found
        except sqlite3.DatabaseError as exc:
            found.append(str(exc))
    return found


@dataclass
class Recovery:
    out: Path
    method: str
    rows: dict[str, int]
    skipped: dict[str, int]   # table -> read errors skipped over (row-by-row copy)
    sound: bool
    tried: list[str] = field(default_factory=list)   # the better methods that did not work, and why
    cut_short: list[str] = field(default_factory=list)   # sessions marked resumable (mark_cut_short)

    def lines(self) -> list[str]:
        rows = ", ".join(f"{table} {count}" for table, count in self.rows.items())
        out = [f"tried first: {reason}" for reason in self.tried]
        out.append(f"recovered into {self.out} ({self.method}): {rows}")
        if any(self.skipped.values()):
            out.append("unreadable ranges skipped: " + ", ".join(f"{t} {n}" for t, n in self.skipped.items() if n))
        out.append("the copy passes the integrity check" if self.sound else
                   "the copy does NOT pass the integrity check")
        if self.cut_short:
            shown = ", ".join(self.cut_short[:6]) + (f" and {len(self.cut_short) - 6} more" if len(self.cut_short) > 6
                                                     else "")
            out.append(f"{len(self.cut_short)} session{'s' if len(self.cut_short) != 1 else ''} cut short by the "
                       f"damage, marked interrupted: {shown}; `lhe-tui resume ID --db {self.out}` plays the rest")
        out.append(f"use it with --db {self.out}")
        return out


def recover(path: str | Path, out: str | Path, *, methods: tuple[str, ...] = ("recover", "vacuum", "rows")) -> Recovery:
    """What is readable of the store at `path`, into the new file `out` (never the store itself)."""
    path, out = Path(path), Path(out)
    if not path.exists():
        raise StoreError(f"no session store at {path}")
    if out.exists() or Path(str(out) + "-wal").exists():
        raise StoreError(f"{out} exists: doctor writes a recovery to a new file only")
    if out.resolve() == path.resolve():
        raise StoreError("the recovered copy must go to a new file, not over the store")
    store_exists(path)     # a store this user may not read: one line
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create {out.parent} ({exc.strerror or exc})") from None
    temporary = out.with_name(f".{out.name}.recovering-{os.getpid()}")
    try:   # a folder that cannot be written (a read-only file system): said before anything is tried
        os.close(os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except OSError as exc:
        raise StoreError(f"cannot write the recovery to {out} ({exc.strerror or exc}); give --recover a path "
                         "on a writable file system") from None
    errors: list[str] = []
    for method in methods:
        _remove(temporary)
        try:
            skipped = {"recover": _with_cli, "vacuum": _with_vacuum, "rows": _row_by_row}[method](path, temporary)
        except (sqlite3.Error, OSError, subprocess.SubprocessError, _Unavailable) as exc:
            errors.append(f"{method}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
            continue
        if skipped is None:
            continue
        conn = sqlite3.connect(temporary)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            cut_short = mark_cut_short(conn)
            sound = quick_check(conn) is None
            rows = {t: conn.execute(f"SELECT COUNT(*) FROM [{t}]").fetchone()[0] for t in TABLES
                    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [t]).fetchone()}
        finally:
            conn.close()
        if not sound and method != methods[-1]:
            errors.append(f"{method}: the copy was not sound")
            continue
        for suffix in ("-wal", "-shm"):
            _remove(Path(str(temporary) + suffix))
        os.replace(temporary, out)
        return Recovery(out, {"recover": "sqlite3 .recover", "vacuum": "VACUUM INTO",
                              "rows": "row by row"}[method], rows, skipped, sound, errors, cut_short)
    _remove(temporary)
    raise StoreError(f"nothing could be recovered from {path}: " + "; ".join(errors))


class _Unavailable(Exception):
    pass


def _remove(path: Path) -> None:
    for p in (path, Path(str(path) + "-wal"), Path(str(path) + "-shm"), Path(str(path) + "-journal")):
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def shell_that_recovers() -> str:
    """The sqlite3 shell, if it can `.recover`: that needs SQLite's sqlite_dbpage table, which Debian 12's
    libsqlite3 (3.40) is built without (its shell's `.recover` fails "SQL logic error" on every store)."""
    shell = shutil.which("sqlite3")
    if shell is None:
        raise _Unavailable("no sqlite3 command-line shell installed")
    probe = subprocess.run([shell, ":memory:", "SELECT COUNT(*) FROM sqlite_dbpage"], capture_output=True,
                           timeout=60, stdin=subprocess.DEVNULL)
    if probe.returncode != 0:
        raise _Unavailable("this sqlite3 shell cannot .recover: its SQLite has no sqlite_dbpage table "
                           "(built without SQLITE_ENABLE_DBPAGE_VTAB, as Debian 12's 3.40 is)")
    return shell


def _with_cli(path: Path, out: Path) -> dict[str, int]:
    """The sqlite3 shell's `.recover`, run on a copy of the store (and its WAL) beside `out`: the shell of
    Debian 12 (3.40) refuses a read-only URI, and a copy is never the store itself."""
    shell = shell_that_recovers()
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.copy-", dir=out.parent) as folder:
        copy = Path(folder) / "store.db"
        shutil.copyfile(path, copy)
        wal = Path(str(path) + "-wal")
        if wal.exists():
            shutil.copyfile(wal, str(copy) + "-wal")
        result = subprocess.run([shell, str(copy), ".recover"], capture_output=True, timeout=3600,
                                stdin=subprocess.DEVNULL)
    if result.returncode != 0 or not result.stdout.strip():
        raise _Unavailable(f"sqlite3 .recover failed ({result.stderr.decode(errors='replace').strip()[:200]})")
    _remove(out)   # (the empty file that proved the folder writable)
    load = subprocess.run([shell, str(out)], input=result.stdout, capture_output=True, timeout=3600)
    if load.returncode != 0 or not out.exists():
        raise _Unavailable(f"loading the recovered SQL failed ({load.stderr.decode(errors='replace').strip()[:200]})")
    return {}


def _with_vacuum(path: Path, out: Path) -> dict[str, int]:
    conn, keep = readonly_connection(path)
    try:
        conn.execute("VACUUM INTO ?", [str(out)])
    finally:
        conn.close()
        del keep
    return {}


def _row_by_row(path: Path, out: Path) -> dict[str, int]:
    conn, keep = readonly_connection(path)
    target = sqlite3.connect(out)
    skipped: dict[str, int] = {}
    try:
        schema = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL "
                              "AND name NOT LIKE 'sqlite_%'").fetchall()
        tables = [(name, sql) for kind, name, _, sql in schema if kind == "table"]
        for name, sql in tables:
            target.execute(sql)
        for name, _sql in tables:
            if name not in OUR_TABLES and name != "_sqlite_migrations":
                continue
            skipped[name] = _copy_table(conn, target, name)
        for kind, name, _, sql in schema:
            if kind in ("index", "trigger", "view"):
                try:
                    target.execute(sql)
                except sqlite3.IntegrityError:
                    pass   # a unique index the surviving rows break: left out, the rows kept
        target.commit()
    finally:
        target.close()
        conn.close()
        del keep
    return skipped


def _copy_table(conn: sqlite3.Connection, target: sqlite3.Connection, table: str) -> int:
    """Rows in rowid order; on an unreadable stretch, jump ahead (1, 2, 4, ... rowids) until reads work."""
    try:
        columns = [row[1] for row in conn.execute(f"PRAGMA table_info([{table}])")]
    except sqlite3.DatabaseError:
        return 1
    names = ", ".join(f"[{c}]" for c in columns)
    insert = f"INSERT OR IGNORE INTO [{table}] (rowid, {names}) VALUES ({', '.join('?' * (len(columns) + 1))})"
    try:
        top = conn.execute(f"SELECT MAX(rowid) FROM [{table}]").fetchone()[0]
    except sqlite3.DatabaseError:
        top = None
    after, errors, jump = -(2 ** 63), 0, 1
    while True:
        try:
            cursor = conn.execute(f"SELECT rowid, {names} FROM [{table}] WHERE rowid > ? ORDER BY rowid", [after])
            for row in cursor:
                target.execute(insert, row)
                after = row[0]
                jump = 1
            return errors
        except sqlite3.DatabaseError:
            errors += 1
            if after == -(2 ** 63):
                after = 0
            after += jump
            jump *= 2
            if (top is not None and after >= top) or errors > 10_000 or after > 2 ** 62:
                return errors


def mark_cut_short(conn: sqlite3.Connection) -> list[str]:
    """In a recovered copy, make the runs the damage cut short resumable; their ids.

    A sample that lost turns is cut back to its turns before the first one missing (resume continues a
    sample from an unbroken history; the damaged store still holds what lay past the gap) and marked
    `stopped`; its session, if it had ended, is marked `interrupted` with a message saying so, so `resume`
    plays the rest instead of calling it finished."""
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not {"sessions", "samples", "turns"} <= tables:
        return []
    marked = []
    runs = conn.execute("SELECT id, turns, status FROM sessions WHERE kind = 'run'").fetchall()
    with conn:
        for session_id, turns, status in runs:
            samples = dict(conn.execute("SELECT sample, status FROM samples WHERE session_id = ?", [session_id]))
            stored: dict[int, list[int]] = {index: [] for index in samples}
            for sample, turn in conn.execute("SELECT sample, turn FROM turns WHERE session_id = ? "
                                             "ORDER BY sample, turn", [session_id]):
                stored.setdefault(sample, []).append(turn)
            cut = []
            for sample, played in stored.items():
                unbroken = next((i for i, turn in enumerate(played) if turn != i + 1), len(played))
                lost_tail = samples.get(sample) == "finished" and unbroken < (turns or 0)
                if unbroken < len(played) or lost_tail:
                    cut.append(sample)
                    conn.execute("DELETE FROM turns WHERE session_id = ? AND sample = ? AND turn > ?",
                                 [session_id, sample, unbroken])
                    conn.execute("UPDATE samples SET status = 'stopped', message = ?, first_error_turn = "
                                 "(SELECT MIN(turn) FROM turns WHERE session_id = ? AND sample = ? AND correct = 0) "
                                 "WHERE session_id = ? AND sample = ?",
                                 [f"cut short by damage at turn {unbroken + 1} (recovered by lhe-tui doctor)",
                                  session_id, sample, session_id, sample])
            if not cut:
                continue
            marked.append(session_id)
            if any(row[1] == "token_totals_json" for row in conn.execute("PRAGMA table_info(sessions)")):
                conn.execute("UPDATE sessions SET token_totals_json = NULL WHERE id = ?", [session_id])
            conn.execute("UPDATE sessions SET status = 'interrupted', message = ? WHERE id = ?",
                         [f"recovered by lhe-tui doctor: {len(cut)} sample{'s' if len(cut) != 1 else ''} cut short "
                          f"by damage (was {status}); `lhe-tui resume {session_id}` plays the rest", session_id])
    return marked
