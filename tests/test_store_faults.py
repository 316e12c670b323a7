"""Issue 14, store items 2-5, each with the fault made for real: a full file system (a small tmpfs), a
read-only mount, a SIGKILLed writer, processes creating one store at once."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from lhe_tui.store.database import MIGRATION_NAMES, open_database
from lhe_tui.store.locks import SessionLock, writer_alive
from lhe_tui.store.queries import list_sessions
from lhe_tui.ui.resume import resume_problem

from tests.store_faults import ROOT, cli, read_only_view, stored_run, tmpfs


def one_line(done: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("lhe-tui:")]
    assert len(lines) == 1, done.stderr
    return lines[0]


def count_turns(path, session_id) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT COUNT(*) FROM turns WHERE session_id = ?", [session_id]).fetchone()[0]
    finally:
        conn.close()


# ---- 2. a full disk ------------------------------------------------------------------------------------
def test_full_disk_stops_the_run_in_one_line_and_resume_finishes_it(tmp_path):
    with tmpfs(tmp_path / "small", "8m") as fs:
        db = fs / "lhe.db"
        assert cli("run", "--headless", "--turns", "2", "--db", str(db)).returncode == 0   # a store exists
        filler = fs / "filler"
        # fill the file system, then give back a little room (unbuffered: no partial block left to flush
        # at close, whatever room the store's side files took)
        with open(filler, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
            except OSError:
                pass
        with open(filler, "r+b") as f:
            f.truncate(max(0, filler.stat().st_size - 160 * 1024))
        done = cli("run", "--headless", "--samples", "4", "--turns", "150", "--sim-delay", "0", "--db", str(db))
        assert done.returncode == 1
        line = one_line(done)
        assert f"the disk holding {db} is full" in line and "lhe-tui resume" in line
        sid = line.split("lhe-tui resume ")[1].strip("`").split("`")[0]
        stored = count_turns(db, sid)
        assert 0 < stored < 600
        status = next(r["status"] for r in list_sessions(open_database(db, create=False, write=False, check=False))
                      if r["id"] == sid)
        assert status in ("interrupted", "crashed")          # resumable either way
        filler.unlink()                                     # space again, and more: during a run the WAL
        # grows to ~40 MB before it starts over (WAL_RESTART_FRAMES, lhe_tui/store/writer.py), ~14 KB a
        # turn here, so the 8 MB this test filled cannot hold the rest of the run (it failed at 583 of 596)
        subprocess.run(["mount", "-o", "remount,size=64m", str(fs)], check=True, capture_output=True)
        resumed = cli("resume", "--headless", sid, "--db", str(db))
        assert resumed.returncode == 0, resumed.stderr
        assert count_turns(db, sid) == 600


# ---- 3. read-only --------------------------------------------------------------------------------------
def test_a_store_on_a_read_only_mount_is_read_and_never_written(tmp_path):
    src = tmp_path / "src"
    sid = stored_run(src / "lhe.db", samples=2, turns=30)
    with read_only_view(src, tmp_path / "ro") as ro:
        db = ro / "lhe.db"
        for args in (["sessions"], ["show", sid], ["export", sid], ["export", sid, "--format", "csv"],
                     ["compare", sid]):
            done = cli(*args, "--db", str(db))
            assert done.returncode == 0 and done.stderr == "", (args, done.stderr)
            assert sid[:8] in done.stdout or "sample" in done.stdout
        for args in (["run", "--headless", "--turns", "2"], ["resume", "--headless", sid],
                     ["probe", "--headless", "--target-turn", "3"], ["run", "--turns", "2"]):
            done = cli(*args, "--db", str(db))
            assert done.returncode != 0 and "read-only" in one_line(done), (args, done.stderr)
        done = cli("run", "--headless", "--turns", "2", "--db", str(ro / "new" / "lhe.db"))
        assert done.returncode != 0 and "read-only" in one_line(done)
        # replay reads it as the TUI does
        from lhe_tui.store.replay import SessionReplay

        replay = SessionReplay(open_database(db, create=False, write=False), sid)
        assert len(replay) == 60 and len(list(replay.iter_events())) > 60


def test_a_read_only_store_whose_wal_still_holds_commits_shows_them(tmp_path):
    """A writer that died with commits in its WAL, then the store mounted read-only: `immutable` would
    miss those commits; they are read from a temporary copy instead."""
    live = tmp_path / "live"
    live.mkdir()
    src = tmp_path / "src"
    src.mkdir()
    code = ("import sys, shutil; from tests.store_faults import stored_run; from lhe_tui.store.database import "
            "open_database; p = sys.argv[1]; sid = stored_run(p, samples=1, turns=10); db = open_database(p); "
            "db.conn.execute('PRAGMA wal_autocheckpoint = 0'); "
            "db.conn.execute(\"UPDATE sessions SET model = 'in-the-wal' WHERE id = ?\", [sid]); db.conn.commit(); "
            "shutil.copy(p, sys.argv[2]); shutil.copy(p + '-wal', sys.argv[2] + '-wal'); print(sid)")
    done = subprocess.run([sys.executable, "-c", code, str(live / "lhe.db"), str(src / "lhe.db")], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert (src / "lhe.db-wal").stat().st_size > 0
    with read_only_view(src, tmp_path / "ro") as ro:
        listed = cli("sessions", "--db", str(ro / "lhe.db"))
        assert listed.returncode == 0 and "in-the-wal" in listed.stdout, listed.stderr


# ---- 4. live and crashed sessions ----------------------------------------------------------------------
def test_a_killed_run_shows_crashed_a_live_one_refuses_resume(tmp_path):
    db = tmp_path / "lhe.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "lhe_tui", "run", "--headless", "--samples", "2", "--turns",
                             "300", "--sim-delay", "0.02", "--db", str(db)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        sid = None
        for _ in range(300):
            time.sleep(0.1)
            if db.exists():
                try:
                    rows = list_sessions(open_database(db, create=False, check=False))
                except Exception:   # noqa: BLE001 - being created
                    continue
                if rows and count_turns(db, rows[0]["id"]) > 2:
                    sid = rows[0]["id"]
                    break
        assert sid is not None
        assert list_sessions(open_database(db, check=False))[0]["status"] == "running"
        assert writer_alive(db, sid) is True
        refused = cli("resume", "--headless", sid, "--db", str(db))
        assert refused.returncode != 0 and "is being run by another process" in one_line(refused)
        assert "being run by another process" in resume_problem(open_database(db, check=False), sid)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert writer_alive(db, sid) is False
        listed = cli("sessions", "--db", str(db))
        assert "crashed" in listed.stdout
        assert list_sessions(open_database(db))[0]["status"] == "crashed"
        assert resume_problem(open_database(db), sid) is None
        # resume a crashed one: it finishes (quickly: the rest without the delay is not an option, so wait)
        resumed = cli("resume", "--headless", sid, "--db", str(db), timeout=300)
        assert resumed.returncode == 0, resumed.stderr
        assert count_turns(db, sid) == 600
        assert list_sessions(open_database(db))[0]["status"] == "finished"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_the_session_lock_refuses_a_second_writer_and_is_gone_with_it(tmp_path):
    db = tmp_path / "lhe.db"
    open_database(db).conn.close()
    lock = SessionLock.acquire(db, "s1")
    with pytest.raises(Exception, match="being run by another process"):
        SessionLock.acquire(db, "s1", tries=2)
    lock.release()
    SessionLock.acquire(db, "s1").release()


# ---- 5. two processes creating one store ---------------------------------------------------------------
CREATE = ("import sys; from lhe_tui.store.database import open_database; db = open_database(sys.argv[1]); "
          "db.conn.close()")


def test_processes_creating_one_new_store_at_once_all_succeed(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for attempt in range(12):
        db = tmp_path / f"try{attempt}" / "sessions" / "lhe.db"
        procs = [subprocess.Popen([sys.executable, "-c", CREATE, str(db)], cwd=ROOT, env=env,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        errors = [p.communicate(timeout=120)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], (attempt, errors)
        conn = sqlite3.connect(db)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT COUNT(*) FROM _sqlite_migrations").fetchone()[0] == len(MIGRATION_NAMES)
        conn.close()
