"""The m003 migration (issue 13): a store written before step accuracy was fixed gets the new scores."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from lhe_tui.store.database import open_database
from lhe_tui.store.schema import _rescore_steps
from lhe_tui.store.summary import session_summary
from lhe_tui.testing.stores import insert_unscored_turns

from tests.step_scenarios import SESSIONS, run_scenario

FIXTURE = Path(__file__).parent / "data" / "store_before_issue13.db"
STEP_COLUMNS = "session_id, sample, turn, seen_previous, expected_step, step_correct"


def rows(conn, columns=STEP_COLUMNS, session=None):
    where = "" if session is None else f" WHERE session_id = '{session}'"
    return conn.execute(f"SELECT {columns} FROM turns{where} ORDER BY session_id, sample, turn").fetchall()


@pytest.fixture()
def old_store(tmp_path):
    path = tmp_path / "old.db"
    shutil.copy(FIXTURE, path)
    return path


def test_fixture_is_a_store_of_the_version_before(old_store):
    conn = sqlite3.connect(old_store)
    names = [r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations ORDER BY rowid")]
    assert names == ["m001_initial", "m002_turns_by_finish"]
    # the old rule: after sample 0's missing answer at turn 2, turn 3 was scored from turn 2's gold sum
    seen, gold2 = conn.execute("SELECT t3.seen_previous, t2.gold_sum FROM turns t3 JOIN turns t2 ON "
                               "t2.session_id = t3.session_id AND t2.sample = t3.sample AND t2.turn = 2 "
                               "WHERE t3.session_id = 'steps-k1' AND t3.sample = 0 AND t3.turn = 3").fetchone()
    assert seen == gold2


def test_migration_gives_what_todays_runner_scores(old_store, tmp_path):
    before = sqlite3.connect(old_store)
    old_rows = rows(before)
    old_p = dict(before.execute("SELECT id, fitted_p FROM sessions").fetchall())
    before.close()

    db = open_database(old_store)   # migrates
    migrated = rows(db.conn)
    # The same scenarios, run by today's runner into a new store.
    fresh = open_database(tmp_path / "new.db")
    for session_id in SESSIONS:
        run_scenario(fresh, session_id)
    assert migrated == rows(fresh.conn)
    # Everything else in the turns is untouched.
    other = "session_id, sample, turn, model_answer, history_answer, correct, injected, turn_sum, gold_sum"
    assert rows(db.conn, other) == rows(fresh.conn, other)
    assert migrated != old_rows
    changed = {(r[0], r[1], r[2]) for r, o in zip(migrated, old_rows) if r != o}
    # after a missing answer (sample 0 turn 3; sample 4 turn 5, after an in-flight injection and a miss)
    assert {("steps-k1", 0, 3), ("steps-k1", 4, 5)} <= changed
    # the in-flight injection (sample 2, turn 3 injected while turn 4 was sent): turn 4 keeps its score
    assert ("steps-k1", 2, 4) not in changed

    # The sessions' stored metrics are recomputed from the migrated flags, and are today's summary.
    for session_id in SESSIONS:
        stored = db.conn.execute("SELECT fitted_p, horizon_05, final_task_accuracy FROM sessions WHERE id = ?",
                                 [session_id]).fetchone()
        summary = session_summary(db, session_id)
        assert stored == (summary.mean_turn_accuracy, summary.horizon_measured, summary.final_task_accuracy)
        assert stored == fresh.conn.execute("SELECT fitted_p, horizon_05, final_task_accuracy FROM sessions "
                                            "WHERE id = ?", [session_id]).fetchone()
    assert old_p["steps-k1"] != db.conn.execute("SELECT fitted_p FROM sessions WHERE id = 'steps-k1'").fetchone()[0]


def test_migration_runs_once_and_is_recorded(old_store):
    open_database(old_store).conn.close()
    db = open_database(old_store)
    names = [r[0] for r in db.conn.execute("SELECT name FROM _sqlite_migrations WHERE migration_set = 'lhe_tui'")]
    assert names.count("m003_step_from_last_stated_answer") == 1


def test_rescoring_a_big_store_scores_every_turn(tmp_path):
    """100 samples x 1,000 turns, every fifth answer missing (its time: bench/suite_timings.py)."""
    db = open_database(tmp_path / "big.db")
    conn = db.conn
    insert_unscored_turns(conn)
    with conn:
        _rescore_steps(db.utils)
    assert conn.execute("SELECT COUNT(*) FROM turns WHERE step_correct = 1").fetchone()[0] == 100 * 800
    # the turn after each miss builds on the answer before the miss plus the missed turn's keys: correct
    assert conn.execute("SELECT step_correct, seen_previous = gold_sum - turn_sum FROM turns "
                        "WHERE sample = 3 AND turn = 6").fetchone() == (1, 1)
