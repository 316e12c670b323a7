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


def test_a_scripted_injection_due_at_the_crash_turn_is_made_on_resume(tmp_path):
    """The process dies after turn 3 is committed and before its scripted injection is stored: resumed, the
    injection is made before turn 4 is sent, and the run ends as an uninterrupted one does."""
    import asyncio

    from lhe_tui.core.config import RunConfig
    from lhe_tui.core.events import TurnFinished
    from lhe_tui.core.config import Injection
    from lhe_tui.runs.session import prepare_resume, prepare_run
    from lhe_tui.store.database import open_database

    config = RunConfig(provider="sim", samples=1, turns=6, seed=3, sim_delay=0,
                       inject_at=(Injection(turn=3, offset=40),))
    reference = tmp_path / "ref.db"
    db = open_database(reference)
    assert asyncio.run(prepare_run(config, db).runner.run()) == "finished"
    db.conn.close()

    crashed = tmp_path / "crash.db"
    db = open_database(crashed)
    prepared = prepare_run(config, db)
    writer = prepared.writer
    dead = False

    def store_until_the_crash(event) -> None:   # the store's subscriber in a process that dies after turn 3
        nonlocal dead
        if not dead:
            writer(event)
            dead = isinstance(event, TurnFinished) and event.record.turn == 3

    prepared.bus.subscribers[prepared.bus.subscribers.index(writer)] = store_until_the_crash
    asyncio.run(prepared.runner.run())
    writer.lock.release()                         # what the kernel does when the process dies
    with sqlite3.connect(crashed) as conn:
        assert conn.execute("SELECT MAX(turn), SUM(injected) FROM turns").fetchone() == (3, 0)
        assert conn.execute("SELECT status FROM sessions").fetchone()[0] == "running"
    resumed = prepare_resume(db, prepared.session_id)
    assert asyncio.run(resumed.runner.run()) == "finished"
    db.conn.close()
    assert turns(crashed) == turns(reference)
    ((turn, model_answer, history_answer),) = sqlite3.connect(crashed).execute(
        "SELECT turn, model_answer, history_answer FROM turns WHERE injected = 1").fetchall()
    assert turn == 3 and history_answer == model_answer + 40
