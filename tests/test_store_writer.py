"""SessionWriter's prepared-statement hot path stores exactly what the sqlite-utils row (turn_row) held."""

import gc
import json
import threading
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from lhe_tui.core.events import (Injected, RetryScheduled, RunFinished, RunStarted, SampleFinished, TurnFinished,
                                 TurnRecord)
from lhe_tui.store.database import open_database
from lhe_tui.store.writer import (CHECKPOINT_PAGES, TURN_COLUMNS, WAL_RESTART_FRAMES, SessionWriter, turn_params,
                                  turn_row)

ints = st.integers(-10**6, 10**6)
records = st.builds(
    TurnRecord, sample=st.integers(0, 3), turn=st.integers(1, 50),
    keys=st.lists(st.text("abcdefgh", min_size=5, max_size=5), min_size=1, max_size=4).map(tuple),
    key_values=st.lists(st.integers(-10**20, 10**20) | st.booleans(), max_size=4).map(tuple), turn_sum=ints, gold_sum=ints,
    seen_previous=ints, expected_step=ints, raw_reply=st.text(max_size=40), reasoning=st.text(max_size=40),
    answer_status=st.sampled_from(["ok", "format", "invalid"]), model_answer=st.none() | ints,
    correct=st.booleans(), step_correct=st.booleans(), history_answer=st.none() | ints, injected=st.booleans(),
    tokens_in=st.none() | st.integers(0, 10**6), tokens_out=st.none() | st.integers(0, 10**6),
    latency_s=st.floats(0, 100), retries=st.integers(0, 9), started_at=st.floats(0, 2e9),
    finished_at=st.floats(0, 2e9))


def test_turn_columns_are_the_turns_table():
    db = open_database(":memory:")
    assert set(TURN_COLUMNS) == set(db["turns"].columns_dict)


@settings(max_examples=60, deadline=None)
@given(records)
def test_turn_params_are_turn_row_in_column_order(record):
    row = turn_row("s", record)
    assert set(row) == set(TURN_COLUMNS)
    assert turn_params("s", record) == tuple(row[c] for c in TURN_COLUMNS)


def test_writer_stores_turns_first_errors_and_events(tmp_path):
    db = open_database(tmp_path / "s.db")
    writer = SessionWriter(db, "s")
    writer(RunStarted(session_id="s", config={"provider": "sim", "turns": 2}, dictionary={"apple": 1},
                      sample_keys=(("apple",), ("apple",)), provider_label="sim", simulated=True))
    base = dict(keys=("apple",), key_values=(1,), turn_sum=1, seen_previous=0, expected_step=1,
                answer_status="ok", raw_reply="<answer>1</answer>", reasoning="")
    good = TurnRecord(sample=0, turn=1, gold_sum=1, model_answer=1, correct=True, step_correct=True,
                      history_answer=1, tokens_in=10, latency_s=0.5, **base)
    bad = TurnRecord(sample=1, turn=1, gold_sum=1, model_answer=3, correct=False, step_correct=False,
                     history_answer=3, **base)
    writer(TurnFinished(good))
    writer(TurnFinished(bad))
    writer(RetryScheduled(sample=0, turn=2, attempt=1, delay_s=0.1, message="503"))
    writer(Injected(sample=0, turn=1, original=1, injected=5, source="manual"))
    rows = {r["sample"]: r for r in db["turns"].rows}
    assert rows[1] == turn_row("s", bad)
    assert rows[0] == {**turn_row("s", good), "history_answer": 5, "injected": 1}
    first_errors = {r["sample"]: r["first_error_turn"] for r in db["samples"].rows}
    assert first_errors == {0: None, 1: 1}
    events = [(e["kind"], e["sample"], e["turn"], json.loads(e["payload_json"]))
              for e in db.query("SELECT * FROM events ORDER BY id")]
    assert [e[:3] for e in events] == [("run_started", None, None), ("retry", 0, 2), ("injected", 0, 1)]
    assert events[2][3]["injected"] == 5
    assert not db.conn.in_transaction, "every event is committed when handled"


def _checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "lhe-checkpoint"]


def _turn(turn: int) -> TurnFinished:
    return TurnFinished(TurnRecord(
        sample=0, turn=turn, keys=("apple",), key_values=(1,), turn_sum=1, gold_sum=turn, seen_previous=0,
        expected_step=1, raw_reply="<answer>1</answer>", reasoning="", answer_status="ok", model_answer=1,
        correct=turn == 1, step_correct=True, history_answer=1))


def test_checkpoints_run_off_the_writers_connection_during_a_run(tmp_path):
    """The writer's connection does no automatic checkpoint (its fsyncs would stall the runner's loop); a
    thread checkpoints instead, the writer checkpoints what was written meanwhile once the WAL is long, so
    that it starts over, and the connection gets its automatic checkpoints back at the end."""
    gc.collect()  # writers of other tests that never finished a run
    path = tmp_path / "s.db"
    wal = tmp_path / "s.db-wal"
    db = open_database(path)
    writer = SessionWriter(db, "s")
    turns = WAL_RESTART_FRAMES  # ~3 pages a turn: three times the WAL's limit in frames
    writer(RunStarted(session_id="s", config={"provider": "sim", "turns": turns},
                      dictionary={"apple": 1}, sample_keys=(("apple",) * turns,),
                      provider_label="sim", simulated=True))
    assert db.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    assert len(_checkpoint_threads()) == 1
    size = path.stat().st_size
    for turn in range(1, turns + 1):  # the thread's checkpoints overlap these commits
        writer(_turn(turn))
        if turn % 100 == 0:  # a loaded machine may starve the thread: let it keep up, as it does when idle
            assert writer._checkpointer.wait_idle(30)
    assert path.stat().st_size > size, "the thread copied the WAL's pages into the database"
    # Without the catch-up the WAL would never start over and hold every frame written.
    assert wal.stat().st_size < (WAL_RESTART_FRAMES + 3 * CHECKPOINT_PAGES) * 4096
    writer(RunFinished(status="finished", wall_time_s=1.0))
    assert db.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
    assert not _checkpoint_threads()
    assert db.execute("SELECT count(*) FROM turns").fetchone()[0] == turns


def test_a_writer_dropped_mid_run_ends_its_checkpoint_thread(tmp_path):
    gc.collect()
    writer = SessionWriter(open_database(tmp_path / "s.db"), "s")
    writer(RunStarted(session_id="s", config={"provider": "sim", "turns": 1}, dictionary={"apple": 1},
                      sample_keys=(("apple",),), provider_label="sim", simulated=True))
    assert len(_checkpoint_threads()) == 1
    del writer
    gc.collect()
    deadline = time.monotonic() + 10
    while _checkpoint_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _checkpoint_threads()


def test_no_checkpoint_thread_without_a_wal():
    db = open_database(":memory:")
    writer = SessionWriter(db, "s")
    writer(RunStarted(session_id="s", config={"provider": "sim", "turns": 1}, dictionary={"apple": 1},
                      sample_keys=(("apple",),), provider_label="sim", simulated=True))
    assert not _checkpoint_threads()
    writer(RunFinished(status="finished", wall_time_s=1.0))


def test_a_finished_sample_stores_its_status_and_its_event_in_one_commit(tmp_path):
    db = open_database(tmp_path / "s.db")
    writer = SessionWriter(db, "s")
    writer(RunStarted(session_id="s", config={"provider": "sim", "turns": 2}, dictionary={"apple": 1},
                      sample_keys=(("apple",), ("apple",)), provider_label="sim", simulated=True))
    commits = []
    db.conn.set_trace_callback(lambda sql: commits.append(sql) if sql.strip().upper() == "COMMIT" else None)
    writer(SampleFinished(sample=1, status="failed", message="the provider failed 3 turns in a row"))
    db.conn.set_trace_callback(None)
    assert len(commits) == 1
    assert not db.conn.in_transaction
    assert [(r["sample"], r["status"], r["message"]) for r in db.query("SELECT * FROM samples ORDER BY sample")] == [
        (0, "running", None), (1, "failed", "the provider failed 3 turns in a row")]
    (event,) = db.query("SELECT * FROM events WHERE kind = 'sample_finished'")
    assert (event["sample"], json.loads(event["payload_json"])) == (
        1, {"sample": 1, "status": "failed", "message": "the provider failed 3 turns in a row"})
