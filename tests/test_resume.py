"""Crash safety: a run killed with SIGKILL mid-way and resumed ends with the same turns as an uninterrupted run."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

from lhe_tui.cli.main import main

RUN = ["run", "--headless", "--provider", "sim", "--turns", "60", "--samples", "3", "--seed", "11",
       "--induced-error-rate", "0.1", "--inject-at", "7:5"]


def turns(db):
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT sample, turn, keys, model_answer, history_answer, injected, correct, step_correct "
                            "FROM turns ORDER BY sample, turn").fetchall()


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path, capsys):
    reference = tmp_path / "ref.db"
    assert main(RUN + ["--sim-delay", "0", "--db", str(reference)]) == 0

    crashed = tmp_path / "crash.db"
    proc = subprocess.Popen([sys.executable, "-m", "lhe_tui", *RUN, "--sim-delay", "0.004", "--db", str(crashed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    count = 0
    while time.time() < deadline and count < 40:
        time.sleep(0.05)
        if crashed.exists():
            try:
                with sqlite3.connect(crashed) as conn:
                    count = conn.execute("SELECT COUNT(*) FROM turns").fetchone()[0]
            except sqlite3.OperationalError:
                pass
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    partial = turns(crashed)
    assert 0 < len(partial) < 180, "the kill must land mid-run"
    with sqlite3.connect(crashed) as conn:
        (sid, status), = conn.execute("SELECT id, status FROM sessions").fetchall()
    assert status == "running"

    assert main(["resume", sid, "--headless", "--db", str(crashed)]) == 0
    assert turns(crashed) == turns(reference)
    with sqlite3.connect(crashed) as conn:
        assert conn.execute("SELECT status FROM sessions").fetchone()[0] == "finished"
        assert conn.execute("SELECT COUNT(*) FROM events WHERE kind = 'injected'").fetchone()[0] == 3


def test_resume_of_finished_session_adds_nothing(tmp_path, capsys):
    db = tmp_path / "lhe.db"
    assert main(RUN + ["--sim-delay", "0", "--db", str(db)]) == 0
    before = turns(db)
    with sqlite3.connect(db) as conn:
        sid = conn.execute("SELECT id FROM sessions").fetchone()[0]
    # Refused in one line (issue 14, item 18: it used to end "finished" again, its wall time rewritten).
    assert main(["resume", sid[:10], "--headless", "--db", str(db)]) != 0
    assert "already finished" in capsys.readouterr().err
    assert turns(db) == before
