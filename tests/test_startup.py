"""Start-up of `lhe-tui replay ID` (issue 6, replay first frame < 1 s): what it imports and how the store opens.

numpy (0.2-0.3 s to import) and sqlite-utils (which imports numpy) are not needed to show a replay's first
frame; the store opens through `Store` and the metrics wait for the first frame.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

from lhe_tui.core.config import RunConfig
from lhe_tui.runs.session import prepare_run
from lhe_tui.store.database import MIGRATION_NAMES, Store, open_database


def _stored_session(path) -> str:
    db = open_database(path)
    prepared = prepare_run(RunConfig(provider="sim", turns=6, samples=2, seed=3), db)
    asyncio.run(prepared.runner.run())
    db.conn.close()
    return prepared.session_id


def test_migration_names_follow_the_schema():
    from lhe_tui.store.schema import MIGRATIONS

    assert tuple(m.name for m in MIGRATIONS._migrations) == MIGRATION_NAMES


def test_a_replay_opens_without_numpy_or_sqlite_utils(tmp_path):
    path = tmp_path / "s.db"
    session_id = _stored_session(path)
    script = f"""
import json, sys
import lhe_tui.cli.main, lhe_tui.ui.launch, lhe_tui.ui.app
from lhe_tui.store.database import open_database
from lhe_tui.store.queries import resolve_session_id
from lhe_tui.store.replay import SessionReplay
db = open_database({str(path)!r}, create=False)
replay = SessionReplay(db, resolve_session_id(db, {session_id[:10]!r}))
replay.step(3)
unneeded = ("lhe_tui.ui.screens.sessions", "lhe_tui.ui.screens.new_run")  # screens not shown by a replay
print(json.dumps([len(replay), "numpy" in sys.modules, "sqlite_utils" in sys.modules,
                  [name for name in unneeded if name in sys.modules], replay.index_reads]))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == [12, False, False, [], 1]


def test_store_reads_directly_and_hands_the_rest_to_sqlite_utils(tmp_path):
    path = tmp_path / "s.db"
    session_id = _stored_session(path)
    db = open_database(path, create=False)
    assert isinstance(db, Store)
    assert db._utils is None                                 # reads need no sqlite-utils
    rows = list(db.query("SELECT id, status FROM sessions WHERE id = ?", [session_id]))
    assert rows == [{"id": session_id, "status": "finished"}]
    assert db.execute("  select count(*) from turns").fetchone() == (12,)
    assert {"sessions", "samples", "turns", "events"} <= set(db.table_names())
    assert db._utils is None
    # Writes, tables and the rest go to sqlite-utils (committed as it commits them).
    db.execute("UPDATE sessions SET message = ? WHERE id = ?", ["edited", session_id])
    assert db["sessions"].get(session_id)["message"] == "edited"
    assert db._utils is not None
    other = open_database(path, create=False)
    assert next(other.query("SELECT message FROM sessions"))["message"] == "edited"


def test_a_new_store_is_migrated_and_an_old_one_catches_up(tmp_path):
    db = open_database(tmp_path / "new.db")
    applied = [r[0] for r in db.conn.execute("SELECT name FROM _sqlite_migrations ORDER BY rowid")]
    assert tuple(applied) == MIGRATION_NAMES
    # m002 made the index (it is no longer the last migration since m003)
    db.conn.execute("DELETE FROM _sqlite_migrations WHERE name = ?", ["m002_turns_by_finish"])
    db.conn.execute("DROP INDEX IF EXISTS turns_by_finish")
    db.conn.commit()
    again = open_database(tmp_path / "new.db")
    assert [r[0] for r in again.conn.execute("SELECT name FROM sqlite_master WHERE name = 'turns_by_finish'")]
