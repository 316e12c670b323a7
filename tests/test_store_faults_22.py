"""Issue 22 §6, stores: each fault made for real (file permissions that bind, a read-only mount, a store a
newer lhe-tui wrote, a real SIGKILL of a real run, a real damaged page), each ending in one line (or working),
a non-zero exit where it is a command, nothing stored lost.

Permissions as root: the files are given to another user and the command runs as root without the
capabilities that override permissions (tests.store_faults.cli_unprivileged); as anyone else, as is."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from lhe_tui import __version__
from lhe_tui.store import checked
from lhe_tui.store.database import SCHEMA_VERSION, open_database
from lhe_tui.store.doctor import recover, shell_that_recovers

from tests.store_faults import (ROOT, cli, cli_unprivileged, corrupt_middle_page, give_away, read_only_view,
                                stored_run)
from tests.test_store_faults import one_line


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rows(path, sql, params=()):
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


# ---- permissions ---------------------------------------------------------------------------------------
def test_a_store_in_a_folder_this_user_cannot_enter_is_one_line_per_command(tmp_path):
    folder = tmp_path / "private"
    sid = stored_run(folder / "lhe.db", samples=1, turns=5)
    db = folder / "lhe.db"
    before = digest(db)
    give_away(folder)
    folder.chmod(0o000)     # (as root: another user's folder; as anyone else: their own, shut)
    try:
        for args in (["sessions"], ["show", sid], ["export", sid], ["run", "--headless", "--turns", "2"],
                     ["doctor"], ["resume", "--headless", sid], ["replay", sid]):
            done = cli_unprivileged(*args, "--db", str(db))
            assert done.returncode != 0, args
            line = one_line(done)
            assert f"cannot open {db}: permission denied" in line and f"cannot enter the folder {folder}" in line, \
                (args, line)
    finally:
        folder.chmod(0o755)
    assert digest(db) == before


def test_doctor_and_sessions_on_a_file_this_user_cannot_read(tmp_path):
    db = tmp_path / "lhe.db"
    stored_run(db, samples=1, turns=5)
    before = digest(db)
    give_away(db)
    db.chmod(0o000)
    try:
        for args in (["doctor"], ["doctor", "--recover", str(tmp_path / "out.db")], ["sessions"]):
            done = cli_unprivileged(*args, "--db", str(db))
            assert done.returncode != 0, args
            assert one_line(done) == (f"lhe-tui: error: cannot open {db}: permission denied (this user cannot "
                                      "read the file)"), args
        assert not (tmp_path / "out.db").exists()
    finally:
        db.chmod(0o644)
    assert digest(db) == before


def test_doctor_recover_onto_a_read_only_file_system_is_one_line(tmp_path):
    db = tmp_path / "lhe.db"
    stored_run(db, samples=1, turns=5)
    target = tmp_path / "target"
    target.mkdir()
    with read_only_view(target, tmp_path / "ro") as ro:
        done = cli("doctor", "--db", str(db), "--recover", str(ro / "out.db"))
        assert done.returncode != 0
        line = one_line(done)
        assert line.startswith(f"lhe-tui: error: cannot write the recovery to {ro / 'out.db'} (")
        assert "Read-only file system" in line or "Permission denied" in line
        assert "integrity check: ok" in done.stdout and "--recover" not in done.stdout
        assert list(ro.iterdir()) == []


def test_a_store_in_a_read_only_folder_of_another_user_with_a_crashed_writers_wal_is_read(tmp_path):
    """Its -wal still holds a commit and its -shm is not this user's: every reading command reads it all."""
    folder = tmp_path / "theirs"
    folder.mkdir()
    code = ("import os, sys; from tests.store_faults import stored_run; from lhe_tui.store.database import "
            "open_database; p = sys.argv[1]; sid = stored_run(p, samples=1, turns=10); db = open_database(p); "
            "db.conn.execute('PRAGMA wal_autocheckpoint = 0'); "
            "db.conn.execute(\"UPDATE sessions SET model = 'in-the-wal' WHERE id = ?\", [sid]); db.conn.commit(); "
            "print(sid, flush=True); os.kill(os.getpid(), 9)")
    done = subprocess.run([sys.executable, "-c", code, str(folder / "lhe.db")], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == -signal.SIGKILL, done.stderr
    sid = done.stdout.strip()
    assert (folder / "lhe.db-wal").stat().st_size > 0 and (folder / "lhe.db-shm").exists()
    shutil.rmtree(folder / "lhe.db-locks", ignore_errors=True)
    give_away(folder)
    folder.chmod(0o555 if os.geteuid() != 0 else 0o755)
    try:
        db = folder / "lhe.db"
        listed = cli_unprivileged("sessions", "--db", str(db))
        assert listed.returncode == 0 and "in-the-wal" in listed.stdout and listed.stderr == "", listed.stderr
        for args in (["show", sid], ["export", sid], ["doctor"]):
            done = cli_unprivileged(*args, "--db", str(db))
            assert done.returncode == 0 and done.stderr == "", (args, done.stderr)
        assert "integrity check: ok" in cli_unprivileged("doctor", "--db", str(db)).stdout
        refused = cli_unprivileged("run", "--headless", "--turns", "2", "--db", str(db))
        assert refused.returncode != 0 and "read-only" in one_line(refused)
    finally:
        folder.chmod(0o755)


# ---- the integrity check, once per change --------------------------------------------------------------
def test_the_integrity_check_is_remembered_until_the_file_changes(tmp_path):
    path = tmp_path / "lhe.db"
    stored_run(path, samples=4, turns=200)
    assert cli("sessions", "--db", str(path)).returncode == 0
    assert checked.known_sound(path)
    # A run on a store known sound leaves it known sound (its own writes), though the file changed.
    key = checked.file_key(path)
    assert cli("run", "--headless", "--turns", "3", "--db", str(path)).returncode == 0
    assert checked.file_key(path) != key and checked.known_sound(path)
    # A garbage page written with the file's mtime put back (no real change does that): the remembered
    # result stands, so opening it reads no page beyond what it asks for ...
    stat = os.stat(path)
    corrupt_middle_page(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    open_database(path, create=False, write=False).conn.close()
    # ... while doctor checks the whole store, always,
    done = cli("doctor", "--db", str(path))
    assert done.returncode == 1 and "DAMAGED" in done.stdout
    # and once the file has changed (its mtime), the next command checks it again and says so.
    os.utime(path)
    done = cli("sessions", "--db", str(path))
    assert done.returncode != 0 and "is damaged" in one_line(done)
    assert not checked.known_sound(path)


# ---- a store written by a newer lhe-tui ----------------------------------------------------------------
def test_a_store_from_a_newer_lhe_tui_is_read_and_never_written(tmp_path):
    path = tmp_path / "lhe.db"
    sid = stored_run(path, samples=1, turns=5)
    assert rows(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 42")
    conn.close()
    before = digest(path)
    for args in (["run", "--headless", "--turns", "2"], ["resume", "--headless", sid],
                 ["fork", sid, "--turn", "2", "--headless"], ["probe", "--headless", "--target-turn", "3"]):
        done = cli(*args, "--db", str(path))
        assert done.returncode != 0, args
        line = one_line(done)
        assert (f"{path} was written by a newer lhe-tui (lhe-tui {__version__}, schema 42; this is lhe-tui "
                f"{__version__}, schema {SCHEMA_VERSION})") in line and "does not store runs there" in line, line
    for args in (["sessions"], ["show", sid], ["export", sid]):
        done = cli(*args, "--db", str(path))
        assert done.returncode == 0 and done.stderr == "", (args, done.stderr)
        assert sid in done.stdout or "sample" in done.stdout
    done = cli("doctor", "--db", str(path))
    assert done.returncode == 0 and "written by a newer lhe-tui" in done.stdout
    assert digest(path) == before and rows(path, "SELECT COUNT(*) FROM sessions") == [(1,)]
    # A migration this lhe-tui does not know: the same.
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    conn.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
                 "VALUES ('lhe_tui', 'm099_from_the_future', '2030-01-01')")
    conn.commit()
    conn.close()
    done = cli("run", "--headless", "--turns", "2", "--db", str(path))
    assert done.returncode != 0 and "migration m099_from_the_future" in one_line(done)
    assert rows(path, "SELECT COUNT(*) FROM sessions") == [(1,)]


# ---- a run killed after its last turn ------------------------------------------------------------------
KILL_AT_THE_END = """
import asyncio, os, signal, sys
from lhe_tui.core.config import RunConfig
from lhe_tui.core.events import RunFinished
from lhe_tui.runs.session import prepare_run
from lhe_tui.store.database import open_database

db = open_database(sys.argv[1])
prepared = prepare_run(RunConfig(samples=2, turns=20, seed=5, sim_delay=0.0), db, stream_deltas=False)

def killed_before_the_end_record(event):
    if isinstance(event, RunFinished):
        os.kill(os.getpid(), signal.SIGKILL)

prepared.bus.subscribers.insert(0, killed_before_the_end_record)   # before the store's writer
print(prepared.session_id, flush=True)
asyncio.run(prepared.runner.run())
"""


def test_a_run_killed_after_its_last_turn_is_finished_by_resume(tmp_path):
    path = tmp_path / "lhe.db"
    done = subprocess.run([sys.executable, "-c", KILL_AT_THE_END, str(path)], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    sid = done.stdout.strip()
    turns = rows(path, "SELECT * FROM turns ORDER BY sample, turn")
    assert len(turns) == 40
    assert rows(path, "SELECT status, ended_at, token_totals_json FROM sessions") == [("running", None, None)]
    assert "crashed" in cli("sessions", "--db", str(path)).stdout
    exported = json.loads(cli("export", sid, "--db", str(path)).stdout)
    assert exported["session"]["status"] == "crashed"
    assert {s["status"] for s in exported["samples"]} == {"finished"}   # they did, before the kill
    resumed = cli("resume", "--headless", sid, "--db", str(path))
    assert resumed.returncode == 0, resumed.stderr
    status, ended, accuracy = rows(path, "SELECT status, ended_at, final_task_accuracy FROM sessions")[0]
    assert status == "finished" and ended is not None and accuracy is not None
    assert rows(path, "SELECT COUNT(*) FROM events WHERE kind = 'run_finished'") == [(1,)]
    assert_totals_stored(path, sid)
    assert rows(path, "SELECT * FROM turns ORDER BY sample, turn") == turns      # nothing played, nothing lost
    listed = cli("sessions", "--db", str(path)).stdout
    assert "finished" in listed and "crashed" not in listed
    again = cli("resume", "--headless", sid, "--db", str(path))
    assert again.returncode != 0 and "already finished" in one_line(again)


# ---- doctor --recover ----------------------------------------------------------------------------------
def test_doctor_recover_marks_the_sessions_it_cut_short_and_they_resume(tmp_path):
    path = tmp_path / "lhe.db"
    sid = stored_run(path, samples=4, turns=200)
    corrupt_middle_page(path)
    before = digest(path)
    out = tmp_path / "recovered.db"
    done = cli("doctor", "--db", str(path), "--recover", str(out))
    assert done.returncode == 0, done.stdout + done.stderr        # the recovery worked: success
    assert "DAMAGED" in done.stdout and "recover what is readable with" not in done.stdout
    assert "recovered into" in done.stdout and "the copy passes the integrity check" in done.stdout
    if not shell_recovers():   # (Debian 12's: said, then the next method recovers it, and the exit is still 0)
        assert "tried first: recover: " in done.stdout
    assert f"cut short by the damage, marked interrupted: {sid}" in done.stdout
    assert digest(path) == before
    assert rows(out, "SELECT status, token_totals_json FROM sessions") == [("interrupted", None)]
    kept = rows(out, "SELECT COUNT(*) FROM turns")[0][0]
    assert 0 < kept < 800
    resumed = cli("resume", "--headless", sid, "--db", str(out), timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert rows(out, "SELECT status FROM sessions") == [("finished",)]
    assert rows(out, "SELECT COUNT(*) FROM turns") == [(800,)]
    assert_totals_stored(out, sid)


def assert_totals_stored(path, sid) -> None:
    """The ended session's stored token totals are its turns' sums (what `sessions` prices it by)."""
    stored = json.loads(rows(path, "SELECT token_totals_json FROM sessions WHERE id = ?", [sid])[0][0])
    turns, tokens_in, tokens_out = rows(path, "SELECT COUNT(*), SUM(tokens_in), SUM(tokens_out) FROM turns "
                                              "WHERE session_id = ? AND inherited IS NOT 1", [sid])[0]
    assert stored[:3] == [turns, tokens_in, tokens_out] and turns > 0


def shell_recovers() -> bool:
    try:
        shell_that_recovers()
    except Exception:   # noqa: BLE001 - no shell, or one that cannot .recover
        return False
    return True


def test_sqlite3_recover_works_on_a_sound_store_or_doctor_copies_row_by_row(tmp_path):
    """Where the sqlite3 shell can .recover, doctor uses it; where it cannot (Debian 12's 3.40 lacks
    sqlite_dbpage: CI's machine), that is detected and the row-by-row copy recovers the same rows. Either
    way this runs: no skip."""
    path = tmp_path / "lhe.db"
    stored_run(path, samples=1, turns=20)
    if shell_recovers():
        result = recover(path, tmp_path / "copy.db", methods=("recover",))
        assert result.method == "sqlite3 .recover"
    else:
        result = recover(path, tmp_path / "copy.db")
        assert result.method != "sqlite3 .recover"
    assert result.sound and result.rows["turns"] == 20
    assert result.cut_short == []


# ---- a killed fork -------------------------------------------------------------------------------------
def test_a_sigkilled_fork_says_crashed_not_not_run_yet(tmp_path):
    path = tmp_path / "lhe.db"
    parent = stored_run(path, samples=2, turns=200)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "lhe_tui", "fork", parent, "--turn", "10", "--headless",
                             "--sim-delay", "0.02", "--db", str(path)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        fork = None
        while time.monotonic() < deadline:
            time.sleep(0.1)
            try:
                found = rows(path, "SELECT id FROM sessions WHERE parent_id = ?", [parent])
                if found and rows(path, "SELECT COUNT(*) FROM turns WHERE session_id = ? AND inherited IS NOT 1",
                                  [found[0][0]])[0][0] > 4:
                    fork = found[0][0]
                    break
            except sqlite3.OperationalError:
                continue
        assert fork is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    exported = json.loads(cli("export", fork, "--db", str(path)).stdout)
    assert exported["session"]["status"] == "crashed"
    assert "not run yet" not in (exported["session"]["message"] or "")
    assert not any("not run yet" in (s["message"] or "") for s in exported["samples"])
    shown = cli("show", fork, "--db", str(path)).stdout
    assert "crashed" in shown and "not run yet" not in shown


def test_an_older_store_is_migrated_with_its_ended_sessions_totals(tmp_path):
    path = tmp_path / "old.db"
    shutil.copy(ROOT / "tests" / "data" / "store_before_issue13.db", path)
    assert rows(path, "PRAGMA user_version") == [(0,)]
    open_database(path).conn.close()
    assert rows(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    ended = [sid for (sid,) in rows(path, "SELECT id FROM sessions WHERE ended_at IS NOT NULL")]
    assert ended
    for sid in ended:
        assert_totals_stored(path, sid)
