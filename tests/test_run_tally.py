"""The writer's tally of a run (lhe_tui.store.tally) against the store it stands for: what the end of a run
stores from the tally is what reading every stored turn back gives (flags_by_sample, session_token_totals,
has_answered_turn: SQL, not the tally's code), and the end of a run reads no turn when the tally saw them all."""

import json
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lhe_tui.core.events import Injected, RunFinished, RunStarted, SampleFinished, TurnFinished, TurnRecord
from lhe_tui.core.prices import TokenTotals
from lhe_tui.store import queries
from lhe_tui.store.database import open_database
from lhe_tui.store.queries import session_token_totals
from lhe_tui.store.summary import session_summary
from lhe_tui.store.writer import SessionWriter

counts = st.none() | st.integers(0, 10**6)
turn_outcomes = st.fixed_dictionaries({
    "correct": st.booleans(), "step_correct": st.booleans(),
    "answer_status": st.sampled_from(["ok", "ok", "format", "invalid", "failed"]),
    "tokens_in": counts, "tokens_out": counts, "tokens_cached": counts, "tokens_cache_write": counts,
    "tokens_reasoning": counts})
runs = st.lists(st.lists(turn_outcomes, max_size=12), min_size=1, max_size=4)   # per sample, its turns in order
statuses = st.sampled_from(["finished", "failed", "stopped", "early"])


def record(sample: int, turn: int, outcome: dict, **extra) -> TurnRecord:
    answered = outcome["answer_status"] in ("ok",)
    return TurnRecord(sample=sample, turn=turn, keys=("apple",), key_values=(1,), turn_sum=1, gold_sum=turn,
                      seen_previous=turn - 1, expected_step=turn, raw_reply="<answer>1</answer>", reasoning="",
                      model_answer=1 if answered else None, history_answer=1 if answered else None,
                      **{**outcome, **extra})


def start(writer: SessionWriter, n_samples: int, *, turns: int = 12, resumed: bool = False,
          step_rule: str | None = None) -> None:
    config = {"provider": "sim", "turns": turns, "k": 1, **({"step_rule": step_rule} if step_rule else {})}
    writer(RunStarted(session_id="s", config=config, dictionary={"apple": 1},
                      sample_keys=(("apple",),) * n_samples, provider_label="sim", simulated=True, resumed=resumed))


def stored_end(db) -> tuple[tuple, TokenTotals]:
    row = db.execute("SELECT final_task_accuracy, horizon_05, fitted_p, token_totals_json FROM sessions "
                     "WHERE id = 's'").fetchone()
    return tuple(row[:3]), TokenTotals(*json.loads(row[3]))


def read_back(db) -> tuple[tuple, TokenTotals]:
    """What the store's own reads make of the stored turns (no tally involved)."""
    summary = session_summary(db, "s")
    return ((summary.final_task_accuracy, summary.horizon_measured, summary.mean_turn_accuracy),
            session_token_totals(db, "s"))


@settings(max_examples=80, deadline=None)
@given(runs, st.lists(statuses, min_size=4, max_size=4), st.booleans())
def test_a_runs_end_stores_from_its_tally_what_its_turns_read_back_give(tmp_path_factory, run, ends, inject):
    db = open_database(tmp_path_factory.mktemp("tally") / "s.db")
    writer = SessionWriter(db, "s")
    start(writer, len(run))
    assert writer.tally is not None
    for turn in range(1, 13):      # the samples' turns interleaved, as a run's concurrent samples finish them
        for sample, outcomes in enumerate(run):
            if turn <= len(outcomes):
                writer(TurnFinished(record(sample, turn, outcomes[turn - 1])))
    if inject and run[0]:          # an injection rewrites a stored turn's history answer, not its flags
        writer(Injected(sample=0, turn=1, original=1, injected=7))
    for sample in range(len(run)):
        writer(SampleFinished(sample=sample, status=ends[sample]))
    tally = writer.tally
    full = session_summary(db, "s", tally=tally), tally.token_totals()
    writer(RunFinished(status="finished", wall_time_s=1.0))
    assert writer.tally is tally and not tally.broken
    assert stored_end(db) == read_back(db)
    assert full == (session_summary(db, "s"), session_token_totals(db, "s"))


def test_the_tally_counts_what_sql_counts_on_its_own(tmp_path):
    """Fixed numbers, so the property above is not only two codes agreeing: 3 turns, one failed request."""
    db = open_database(tmp_path / "s.db")
    writer = SessionWriter(db, "s")
    start(writer, 1, turns=3)
    outcomes = [dict(correct=True, step_correct=True, answer_status="ok", tokens_in=10, tokens_out=2,
                     tokens_cached=None, tokens_cache_write=None, tokens_reasoning=1),
                dict(correct=False, step_correct=True, answer_status="ok", tokens_in=12, tokens_out=None,
                     tokens_cached=4, tokens_cache_write=None, tokens_reasoning=None),
                dict(correct=False, step_correct=False, answer_status="failed", tokens_in=None, tokens_out=None,
                     tokens_cached=None, tokens_cache_write=None, tokens_reasoning=None)]
    for turn, outcome in enumerate(outcomes, 1):
        writer(TurnFinished(record(0, turn, outcome)))
    assert writer.tally.token_totals() == TokenTotals(3, 22, 2, 4, None, 1, 2)
    assert writer.tally.flags() == ([[True, False, False]], [[True, True, False]])
    assert writer.tally.answered


def test_a_run_that_answered_nothing_is_no_data_from_its_tally(tmp_path):
    db = open_database(tmp_path / "s.db")
    writer = SessionWriter(db, "s")
    start(writer, 1, turns=2)
    failed = dict(correct=False, step_correct=False, answer_status="failed", tokens_in=None, tokens_out=None,
                  tokens_cached=None, tokens_cache_write=None, tokens_reasoning=None)
    for turn in (1, 2):
        writer(TurnFinished(record(0, turn, failed)))
    assert not writer.tally.answered
    assert session_summary(db, "s", tally=writer.tally).no_data


def _outcome(**changes) -> dict:
    return {"correct": True, "step_correct": True, "answer_status": "ok", "tokens_in": 5, "tokens_out": 1,
            "tokens_cached": None, "tokens_cache_write": None, "tokens_reasoning": None, **changes}


def test_the_end_of_a_fresh_run_reads_no_turn_back(tmp_path, monkeypatch):
    db = open_database(tmp_path / "s.db")
    writer = SessionWriter(db, "s")
    start(writer, 2)
    for turn in (1, 2, 3):
        for sample in (0, 1):
            writer(TurnFinished(record(sample, turn, _outcome(correct=turn < 3))))

    def no_read(*args, **kwargs):
        raise AssertionError("the end of a run read its turns back")

    monkeypatch.setattr(queries, "flags_by_sample", no_read)
    monkeypatch.setattr(queries, "session_token_totals", no_read)
    monkeypatch.setattr(queries, "has_answered_turn", no_read)
    writer(RunFinished(status="finished", wall_time_s=1.0))
    monkeypatch.undo()
    assert db.execute("SELECT status FROM sessions").fetchone()[0] == "finished"
    assert stored_end(db) == read_back(db)
    assert stored_end(db)[1].turns == 6


@pytest.mark.parametrize("case", ["resumed", "turns_stored_before", "out_of_order", "stored_again", "inherited",
                                  "reference_rule"])
def test_the_end_reads_the_store_when_the_tally_cannot_stand_for_it(tmp_path, case):
    db = open_database(tmp_path / "s.db")
    if case in ("resumed", "turns_stored_before"):   # a first run stores two turns of sample 0
        first = SessionWriter(db, "s")
        start(first, 1)
        for turn in (1, 2):
            first(TurnFinished(record(0, turn, _outcome(correct=False, tokens_in=100))))
        first(RunFinished(status="interrupted", wall_time_s=1.0))
    writer = SessionWriter(db, "s")
    start(writer, 1, resumed=case == "resumed", step_rule="reference-live" if case == "reference_rule" else None)
    if case in ("resumed", "turns_stored_before"):
        assert writer.tally is None
        turns = [3, 4]
    else:
        turns = {"out_of_order": [1, 3, 4], "stored_again": [1, 2, 2, 3]}.get(case, [1, 2, 3])
    for turn in turns:
        writer(TurnFinished(record(0, turn, _outcome(correct=turn != 2), inherited=case == "inherited" and turn == 1)))
    if case in ("out_of_order", "stored_again", "inherited"):
        assert writer.tally is None, "a tally that no longer stands for the turns is dropped"
    writer(RunFinished(status="finished", wall_time_s=1.0))
    assert stored_end(db) == read_back(db)
    if case in ("resumed", "turns_stored_before"):
        assert stored_end(db)[1].tokens_in == 210, "the first run's turns are in the totals"


def test_a_headless_runs_summary_from_its_tally_is_what_show_reads_from_the_store(capsys, tmp_path, monkeypatch):
    """The table `run --headless` prints at its end (from the writer's tally, no turn read back) is the one
    `show` prints from the stored turns; and the summary cells are filled in (a sim with errors and tokens)."""
    from lhe_tui.cli import headless
    from lhe_tui.cli.main import main

    db = str(tmp_path / "lhe.db")
    reads = []
    real_flags = queries.flags_by_sample
    monkeypatch.setattr(queries, "flags_by_sample", lambda *a, **k: reads.append("flags") or real_flags(*a, **k))
    real_tokens = headless.session_tokens
    monkeypatch.setattr(headless, "session_tokens", lambda *a, **k: reads.append("tokens") or real_tokens(*a, **k))
    code = main(["run", "--headless", "--provider", "sim", "--turns", "40", "--samples", "3", "--seed", "2",
                 "--sim-delay", "0", "--db", db])
    ran = capsys.readouterr().out
    assert code == 0
    assert reads == [], "the run's end read its turns back"
    with sqlite3.connect(db) as conn:
        (session_id,) = [row[0] for row in conn.execute("SELECT id FROM sessions")]
    assert main(["show", session_id, "--db", db]) == 0
    shown = capsys.readouterr().out
    assert reads, "show reads the stored turns"

    def table(text: str) -> list[str]:   # the summary's rows: its first box (show prints more after it)
        lines = text.splitlines()
        top = next(i for i, line in enumerate(lines) if line.startswith("┌"))
        bottom = next(i for i, line in enumerate(lines) if line.startswith("└"))
        return lines[top:bottom + 1]

    assert table(ran) and table(ran) == table(shown)
    assert any("tokens in / out" in line and any(ch.isdigit() for ch in line) for line in table(ran))
