"""Issue 15, fork: a stored run's history up to turn T, edited or not, continued live as a new session.

The scripted model is a self-consistent adder: it adds the keys of the new turn to the last answer its
history shows (0 before any), with a slip of +1 at one turn, so every request's content and every score
after an edit is known exactly."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lhe_tui.cli.main import main
from lhe_tui.core.config import RunConfig
from lhe_tui.core.lineage import Lineage
from lhe_tui.runs.session import build_task
from lhe_tui.store.database import open_database
from lhe_tui.store.queries import load_session, session_token_totals
from lhe_tui.testing.fake_llm_server import FakeLLMServer, ScriptedReply
from tests.store_faults import cli

SEED, TURNS = 5, 10
TASK = build_task(RunConfig(seed=SEED, turns=TURNS + 10, samples=2))
DICTIONARY = TASK.dictionary
SLIP_AT = 4           # the adder answers one too many here: the first error
NO_ANSWER_AT = 2      # ... and gives no answer here (a format miss; the history shows the placeholder)
ANSWER = re.compile(r"<answer>\s*([+-]?\d+)\s*</answer>")


def keys_in(text: str) -> int:
    words = re.findall(r"[a-z]+", text.split("\n")[-1].lower())
    return sum(DICTIONARY[w] for w in words if w in DICTIONARY)


def adder(body) -> ScriptedReply:
    """The last answer its history shows plus every key given since (a self-consistent update)."""
    messages = body["messages"]
    turn = sum(1 for m in messages if m["role"] == "user")
    total = 0
    for message in messages[1:]:
        if message["role"] == "user":
            total += keys_in(message["content"])
        else:
            found = ANSWER.search(message["content"])
            if found:
                total = int(found.group(1))
    if turn == NO_ANSWER_AT:
        return ScriptedReply(text="I lost count.")
    return ScriptedReply(text=f"<answer>{total + (1 if turn == SLIP_AT else 0)}</answer>")


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with FakeLLMServer(adder) as srv:
        yield srv


def run_parent(server, db: Path, capsys, *extra: str, samples: int = 1) -> str:
    code = main(["run", "--headless", "--provider", "openai", "--model", "m", "--base-url", server.openai_base_url,
                 "--turns", str(TURNS), "--samples", str(samples), "--seed", str(SEED), "--concurrency", "1",
                 "--db", str(db), *extra])
    err = capsys.readouterr().err
    assert code == 0, err
    return sqlite3.connect(db).execute("SELECT id FROM sessions ORDER BY rowid DESC").fetchone()[0]


def fork(db: Path, capsys, *args: str) -> tuple[str, str]:
    """`lhe-tui fork ... --headless`; returns the fork's id and what it printed on stderr."""
    code = main(["fork", *args, "--headless", "--db", str(db)])
    err = capsys.readouterr().err
    assert code == 0, err
    return sqlite3.connect(db).execute("SELECT id FROM sessions ORDER BY rowid DESC").fetchone()[0], err


def requests_with(server, users: int) -> list[list[dict]]:
    return [r.body["messages"] for r in server.requests
            if r.body and sum(1 for m in r.body["messages"] if m["role"] == "user") == users]


def turns_of(db: Path, sid: str) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    return conn.execute("SELECT * FROM turns WHERE session_id = ? ORDER BY sample, turn", [sid]).fetchall()


def test_fork_sends_exactly_the_parents_history_to_turn_t(server, tmp_path, capsys):
    db = tmp_path / "lhe.db"
    parent = run_parent(server, db, capsys, "--inject-at", "5:7")   # an injection inside the prefix
    parent_next = requests_with(server, 7)
    assert len(parent_next) == 1
    server.requests.clear()
    child, err = fork(db, capsys, parent, "--turn", "6")
    assert f"fork of {parent.split('-', 1)[1]} at turn 6" in err
    first = server.requests[0].body["messages"]
    assert first == parent_next[0]           # the placeholder at 2, the slip at 4, the injection at 5: all there
    rows = turns_of(db, child)
    parent_rows = turns_of(db, parent)
    assert [r["turn"] for r in rows] == list(range(1, TURNS + 1))
    for mine, theirs in zip(rows[:6], parent_rows[:6]):   # the prefix is the parent's, marked inherited
        assert mine["inherited"] == 1 and mine["raw_reply"] == theirs["raw_reply"]
        assert (mine["history_answer"], mine["injected"], mine["correct"], mine["step_correct"]) == \
            (theirs["history_answer"], theirs["injected"], theirs["correct"], theirs["step_correct"])
    assert all(not r["inherited"] for r in rows[6:])
    # A deterministic model given the same history continues exactly as the parent did.
    assert [r["model_answer"] for r in rows] == [r["model_answer"] for r in parent_rows]
    # The fork paid for its 4 turns only.
    totals = session_token_totals(open_database(db), child)
    assert totals.turns == TURNS - 6


def test_set_answer_edits_turn_t_and_later_turns_are_scored_against_it(server, tmp_path, capsys):
    db = tmp_path / "lhe.db"
    parent = run_parent(server, db, capsys)
    parent_next = requests_with(server, 7)[0]
    server.requests.clear()
    child, _ = fork(db, capsys, parent, "--turn", "6", "--set-answer", "999")
    first = server.requests[0].body["messages"]
    assistants = [i for i, m in enumerate(first) if m["role"] == "assistant"]
    assert first[assistants[5]]["content"] == "<answer>999</answer>"           # turn 6, edited
    edited = [dict(m) for m in parent_next]
    edited[assistants[5]]["content"] = "<answer>999</answer>"
    assert first == edited                                                      # and nothing else changed
    rows = turns_of(db, child)
    six, seven = rows[5], rows[6]
    assert (six["history_answer"], six["injected"], six["inherited"]) == (999, 1, 1)
    assert seven["seen_previous"] == 999 and seven["expected_step"] == 999 + seven["turn_sum"]
    assert seven["model_answer"] == 999 + seven["turn_sum"]
    assert seven["step_correct"] == 1 and seven["correct"] == 0                 # consistent, not right
    events = sqlite3.connect(db).execute("SELECT payload_json FROM events WHERE session_id = ? AND kind = 'injected'",
                                         [child]).fetchall()
    payloads = [json.loads(p) for (p,) in events]
    assert {"turn": 6, "injected": 999, "source": "fork"}.items() <= payloads[-1].items()


def test_heal_at_the_first_error_puts_the_adder_back_on_the_gold_sum(server, tmp_path, capsys):
    db = tmp_path / "lhe.db"
    parent = run_parent(server, db, capsys)
    parent_rows = turns_of(db, parent)
    assert [r["turn"] for r in parent_rows if not r["correct"]][:2] == [NO_ANSWER_AT, SLIP_AT]
    assert all(not r["correct"] for r in parent_rows[SLIP_AT:])                # the slip is carried to the end
    child, _ = fork(db, capsys, parent, "--turn", str(SLIP_AT), "--heal")
    rows = turns_of(db, child)
    assert rows[SLIP_AT - 1]["history_answer"] == rows[SLIP_AT - 1]["gold_sum"]
    assert all(r["correct"] and r["step_correct"] for r in rows[SLIP_AT:])      # healed: right to the end
    assert main(["show", child, "--db", str(db)]) == 0
    shown = capsys.readouterr().out
    assert f"first error after turn {SLIP_AT}" in shown and "s0:-" in shown
    assert "healed to the gold sum" in shown and f"fork of {parent}" in shown


def test_heal_on_a_format_miss_shows_the_gold_answer_there(server, tmp_path, capsys):
    db = tmp_path / "lhe.db"
    parent = run_parent(server, db, capsys)
    server.requests.clear()
    child, _ = fork(db, capsys, parent, "--turn", "first-error", "--heal")     # turn 2: no answer given
    first = server.requests[0].body["messages"]
    gold = turns_of(db, parent)[NO_ANSWER_AT - 1]["gold_sum"]
    assert [m["content"] for m in first if m["role"] == "assistant"][NO_ANSWER_AT - 1] == f"<answer>{gold}</answer>"
    rows = turns_of(db, child)
    assert rows[NO_ANSWER_AT - 1]["model_answer"] is None and rows[NO_ANSWER_AT - 1]["history_answer"] == gold
    assert rows[NO_ANSWER_AT]["correct"] == 1 and rows[NO_ANSWER_AT]["step_correct"] == 1


def test_fork_of_a_format_miss_with_an_edit_is_refused_in_one_line(server, tmp_path, capsys):
    db = tmp_path / "lhe.db"
    parent = run_parent(server, db, capsys, samples=2)
    before = sqlite3.connect(db).execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
    code = main(["fork", parent, "--turn", "first-error", "--sample", "1", "--offset", "-3", "--headless",
                 "--db", str(db)])
    assert code != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "turn 2 has no valid answer in its history (format): --offset" in err
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == before
    # Offsetting a turn with an answer works, and shows the parent's answer there plus D.
    child, _ = fork(db, capsys, parent, "--turn", "3", "--sample", "1", "--offset", "-3")
    rows = turns_of(db, child)
    parent_three = [r for r in turns_of(db, parent) if r["sample"] == 1][2]
    assert rows[2]["history_answer"] == parent_three["history_answer"] - 3
    assert {r["sample"] for r in rows} == {0}                                  # the one sample is numbered 0
    assert [r["keys"] for r in rows[:3]] == [r["keys"] for r in turns_of(db, parent) if r["sample"] == 1][:3]


def test_a_fork_with_another_model_and_more_turns_is_labelled_and_extends_the_keys(tmp_path, capsys):
    db = tmp_path / "lhe.db"
    assert main(["run", "--headless", "--samples", "3", "--turns", "30", "--seed", "11", "--sim-delay", "0",
                 "--db", str(db)]) == 0
    capsys.readouterr()
    parent = sqlite3.connect(db).execute("SELECT id FROM sessions").fetchone()[0]
    child, err = fork(db, capsys, parent, "--turn", "20", "--model", "sim-b", "--turns", "50", "--window", "8")
    assert "the inherited replies are sim-1's" in err
    session = load_session(open_database(db), child)
    assert session["model"] == "sim-b" and session["turns"] == 50 and session["config"]["window"] == 8
    lineage = Lineage.from_row(session)
    assert lineage.parent_model == "sim-1" and lineage.fork_turn == 20 and lineage.parent_samples == (0, 1, 2)
    longer = build_task(RunConfig(seed=11, turns=50, samples=3))
    for sample in longer.samples:   # the keys past 30 are the seed's, and the stored 30 their prefix
        keys = [r[0] for r in sqlite3.connect(db).execute(
            "SELECT keys FROM turns WHERE session_id = ? AND sample = ? ORDER BY turn", [child, sample.index])]
        assert tuple(keys) == sample.keys
    assert main(["sessions", "--db", str(db)]) == 0
    listing = capsys.readouterr().out
    lines = [line for line in listing.splitlines() if parent[-4:] in line or child[-4:] in line]
    assert parent in lines[0] and "└ " in lines[1] and "@20" in lines[1]      # the fork under its parent


def test_bad_fork_input_is_one_line_and_stores_nothing(tmp_path):
    db = tmp_path / "lhe.db"
    assert cli("run", "--headless", "--samples", "2", "--turns", "12", "--db", str(db)).returncode == 0
    parent = sqlite3.connect(db).execute("SELECT id FROM sessions").fetchone()[0]
    cases = {
        ("--turn", "13"): "has 12 turns stored; fork it at a turn within 1..12",
        ("--turn", "12"): "nothing to run after turn 12",
        ("--turn", "0"): "--turn must be a turn number >= 1",
        ("--turn", "x"): "expected a turn number or first-error",
        ("--turn", "3", "--sample", "5"): "has no sample 5 (its samples are 0..1)",
        ("--turn", "3", "--seed", "4"): "a fork keeps the task (dictionary and keys): --seed cannot change",
        ("--turn", "3", "--heal", "--offset", "2"): "not allowed with argument",
        ("--turn", "3", "--offset", "0"): "--offset 0 changes nothing",
        ("--turn", "3", "--turns", "3"): "nothing to run after turn 3",
        ("--turn", "3", "--provider", "openai"): "--model is required with --provider openai",
    }
    for args, message in cases.items():
        done = cli("fork", parent, *args, "--headless", "--db", str(db))
        assert done.returncode != 0, args
        assert done.stderr.count("\n") == 1 and message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 1
    done = cli("fork", "nope", "--turn", "3", "--headless", "--db", str(db))
    assert done.returncode != 0 and "no session 'nope'" in done.stderr


def test_a_running_parent_is_refused(tmp_path, capsys):
    from lhe_tui.store.locks import SessionLock

    db = tmp_path / "lhe.db"
    assert main(["run", "--headless", "--turns", "10", "--db", str(db)]) == 0
    parent = sqlite3.connect(db).execute("SELECT id FROM sessions").fetchone()[0]
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE sessions SET status = 'running' WHERE id = ?", [parent])
    lock = SessionLock.acquire(db, parent)       # as a live run holds it
    try:
        capsys.readouterr()
        assert main(["fork", parent, "--turn", "5", "--headless", "--db", str(db)]) != 0
        assert "is still running; fork it once it has ended" in capsys.readouterr().err
    finally:
        lock.release()
    assert main(["fork", parent, "--turn", "5", "--headless", "--db", str(db)]) == 0   # crashed: its turns fork


def test_lineage_survives_migration_export_and_resume(tmp_path, capsys):
    from lhe_tui.runs.fork import ForkRequest, create_fork, plan_fork

    db_path = tmp_path / "old.db"
    shutil.copy(Path(__file__).parent / "data" / "store_before_issue13.db", db_path)
    db = open_database(db_path)                   # migrated to m005 on open
    parent = "steps-k2-induced"                # K=2, an induced error rate: stored before issue 13
    plan = plan_fork(db, ForkRequest(parent_id=parent, turn=3, samples=(0,), overrides={"sim_delay": 0.0}))
    child = create_fork(db, plan)                 # written, not run: an interrupted fork
    db.conn.close()
    assert main(["sessions", "--db", str(db_path)]) == 0
    assert main(["resume", child, "--headless", "--db", str(db_path)]) == 0
    capsys.readouterr()
    assert main(["export", child, "--db", str(db_path)]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported["session"]["parent_id"] == parent and exported["session"]["fork_turn"] == 3
    assert exported["session"]["status"] in ("finished", "finished_with_errors")
    assert [t["inherited"] for t in exported["turns"][:4]] == [1, 1, 1, 0]
    assert exported["turns"][0]["cost_usd"] is None                            # paid for by the parent
    assert "forked" in [e["kind"] for e in exported["events"]]


def test_a_crashed_fork_resumes_as_a_fork(tmp_path, capsys):
    db = tmp_path / "lhe.db"
    assert main(["run", "--headless", "--turns", "20", "--samples", "2", "--db", str(db)]) == 0
    parent = sqlite3.connect(db).execute("SELECT id FROM sessions").fetchone()[0]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    proc = subprocess.Popen([sys.executable, "-m", "lhe_tui", "fork", parent, "--turn", "10", "--turns", "400",
                             "--sim-delay", "0.01", "--headless", "--db", str(db)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    conn = sqlite3.connect(db)
    deadline = time.monotonic() + 60
    child = None
    while time.monotonic() < deadline:
        row = conn.execute("SELECT id FROM sessions WHERE parent_id IS NOT NULL").fetchone()
        if row and conn.execute("SELECT COUNT(*) FROM turns WHERE session_id = ? AND inherited IS NOT 1",
                                [row[0]]).fetchone()[0] >= 10:
            child = row[0]
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert child is not None
    assert main(["resume", child, "--headless", "--db", str(db)]) == 0
    session = load_session(open_database(db), child)
    assert session["status"] == "finished" and session["parent_id"] == parent and session["fork_turn"] == 10
    counts = conn.execute("SELECT SUM(inherited IS 1), COUNT(*) FROM turns WHERE session_id = ?", [child]).fetchone()
    assert counts == (20, 800)                    # 2 samples: 10 inherited turns each, then 390 played each


def test_compare_of_a_parent_and_its_healed_fork_is_paired_and_says_how_far_past_the_fork(tmp_path, capsys):
    db = tmp_path / "lhe.db"
    assert main(["run", "--headless", "--samples", "16", "--turns", "120", "--seed", "8", "--db", str(db)]) == 0
    parent = sqlite3.connect(db).execute("SELECT id FROM sessions").fetchone()[0]
    child, _ = fork(db, capsys, parent, "--turn", "30", "--heal")
    capsys.readouterr()
    assert main(["compare", child, parent, "--at", "30,31,60", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "paired difference fork@30 - parent over the same 16 samples" in out
    assert "mean first error after turn 30" in out and "fork@30 healed" in out
    assert "manual inject" not in out                  # the fork's edit is its lineage, not a manual injection
    from lhe_tui.analysis.compare import paired_comparison

    pc = paired_comparison(open_database(db), parent, child, [30, 31], after=30)
    at30, at31 = pc.answer
    assert at30.diff == 0 and at31.diff > 0            # nothing differs before the fork; healed, more are right
    # Turn accuracy (the update) at 31 builds on what each history shows: a parent sample wrong at 30 that
    # adds turn 31's keys to its own (wrong) total updates right, as the fork does from the healed one.
    assert pc.turn[0].diff == 0
    # The parent's samples wrong at 30 carry the error to 31: their first error after 30 is 31.
    rows = sqlite3.connect(db).execute("SELECT sample, correct FROM turns WHERE session_id = ? AND turn = 30",
                                       [parent]).fetchall()
    assert pc.first_error_after is not None and pc.first_error_after.diff > 0
    assert sum(1 for _, ok in rows if not ok) >= 1


def test_the_forecast_of_a_fork_counts_the_turns_it_sends(tmp_path, capsys):
    from lhe_tui.analysis.estimate import forecast_stored

    db = tmp_path / "lhe.db"
    assert main(["run", "--headless", "--samples", "3", "--turns", "50", "--db", str(db)]) == 0
    parent = sqlite3.connect(db).execute("SELECT id FROM sessions").fetchone()[0]
    child, _ = fork(db, capsys, parent, "--turn", "20")
    store = open_database(db)
    session = load_session(store, child)
    result = forecast_stored(session["config"], fork_turn=session["fork_turn"])
    actual = session_token_totals(store, child)
    assert result.turns == 30 and actual.turns == 3 * 30
    assert abs(result.input_tokens - actual.tokens_in) / actual.tokens_in < 0.02   # the sim counts chars / 4
    whole = forecast_stored(session["config"])
    assert whole.input_tokens > result.input_tokens * 1.1                         # the prefix is not re-sent
