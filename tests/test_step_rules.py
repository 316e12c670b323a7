"""Step rules (issue 21 §3): how turn accuracy scores the turn after one with no answer.

The records are made by hand and every expected flag is worked out by hand in the comments, from the rules
as docs/protocol.md states them (ours; the reference's per-turn evaluator, `reference-live`; its final
evaluator, `reference-final`), not computed by the code under test. One test also checks the rule against a
small re-statement of the reference's per-turn evaluator on a simulated run with many format misses.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json

import pytest

from lhe_tui.reports import api
from lhe_tui.cli.main import main
from lhe_tui.core.config import RunConfig
from lhe_tui.core.step_rules import STEP_RULES, ScoredTurn, update_flag_at, update_flags
from lhe_tui.runs.session import prepare_run
from lhe_tui.store.database import open_database
from lhe_tui.store.queries import flags_by_sample, load_turns, session_flags

OWN, LIVE, FINAL = STEP_RULES
T, F = True, False


def sample(turn_sums, answers, shown=None):
    """One sample's records as the runner stores them: the own rule's base (seen_previous) and flag are
    worked out here the way docs/protocol.md's table does it: the last shown answer plus every key since."""
    shown = list(answers) if shown is None else shown
    out, last, since = [], 0, 0
    for turn, (s, a, h) in enumerate(zip(turn_sums, answers, shown), 1):
        base = last + since
        out.append(ScoredTurn(turn, s, a, h, base, a is not None and a == base + s))
        if h is None:
            since += s
        else:
            last, since = h, 0
    return out


# values 5, 3, -2, 10 (gold 5, 8, 6, 16)
SUMS = [5, 3, -2, 10]


def test_the_protocol_docs_example():
    # answers 5, none, 7, 17 (docs/protocol.md, "Our rule")
    turns = sample(SUMS, [5, None, 7, 17])
    # own: 5 = 0+5 ✓; miss ✗; base 5+3 = 8, 8-2 = 6 ≠ 7 ✗; 7+10 = 17 ✓
    assert update_flags(turns, OWN) == [T, F, F, T]
    # live: ✓; a miss whose keys do not sum to 0 ✗; 5 + (-2) = 3 ≠ 7 ✗; 17 ✓
    assert update_flags(turns, LIVE) == [T, F, F, T]
    # final: ✓; ✗; the turn after a miss ✗; 7 shown at turn 3: 17 ✓
    assert update_flags(turns, FINAL) == [T, F, F, T]


def test_a_model_that_forgets_the_missed_keys_is_right_only_under_reference_live():
    turns = sample(SUMS, [5, None, 3, 13])
    # own: base 8, expected 6, answered 3 ✗; live: 5 - 2 = 3 ✓; final ✗; turn 4 builds on 3: 13 ✓ everywhere
    assert update_flags(turns, OWN) == [T, F, F, T]
    assert update_flags(turns, LIVE) == [T, F, T, T]
    assert update_flags(turns, FINAL) == [T, F, F, T]


def test_a_model_that_carries_the_missed_keys_is_right_only_under_our_rule():
    turns = sample(SUMS, [5, None, 6, 16])
    # own: 5 + 3 - 2 = 6 ✓; live: 5 - 2 = 3 ≠ 6 ✗; final ✗
    assert update_flags(turns, OWN) == [T, F, T, T]
    assert update_flags(turns, LIVE) == [T, F, F, T]
    assert update_flags(turns, FINAL) == [T, F, F, T]


def test_two_misses_in_a_row():
    turns = sample([5, 3, 2, 1], [5, None, None, 6])
    # own: base 5 + 3 + 2 = 10, expected 11 ✗; live: 5 + 1 = 6 ✓; final ✗
    assert update_flags(turns, OWN) == [T, F, F, F]
    assert update_flags(turns, LIVE) == [T, F, F, T]
    assert update_flags(turns, FINAL) == [T, F, F, F]


def test_a_miss_at_the_first_turn():
    turns = sample([4, 6, 1], [None, 6, 7])
    # turn 1 is wrong under every rule (live: its flag is the answer's, and there is none)
    # own: base 0 + 4, expected 10 ✗; live: 0 + 6 = 6 ✓; final ✗; turn 3: 6 + 1 = 7 ✓
    assert update_flags(turns, OWN) == [F, F, T]
    assert update_flags(turns, LIVE) == [F, T, T]
    assert update_flags(turns, FINAL) == [F, F, T]


def test_the_per_turn_evaluators_zero_sum_miss_and_a_healed_history():
    # turn 2's keys sum to 0 and it has no answer: the per-turn evaluator carries 5 through it and finds 5 = 5 + 0
    turns = sample([5, 0, 10], [5, None, 15])
    assert update_flags(turns, OWN) == [T, F, T]        # base 5 + 0, 15 ✓
    assert update_flags(turns, LIVE) == [T, T, T]
    assert update_flags(turns, FINAL) == [T, F, F]
    # healed (values 5, 3, -2): the history shows gold (8) for the missed turn: no rule walks back, a miss is wrong everywhere
    healed = sample(SUMS[:3], [5, None, 6], shown=[5, 8, 6])
    for rule in STEP_RULES:
        assert update_flags(healed, rule) == [T, F, T], rule      # 8 - 2 = 6 ✓


def test_an_injection_that_missed_the_turn_in_flight():
    # Turn 2 had no answer; a value (100) was injected into it while turn 3 was already sent: turn 3 was sent
    # with nothing shown for turn 2, so its base walked back to 5 (+3): the stored seen_previous says so.
    turns = [ScoredTurn(1, 5, 5, 5, 0, True), ScoredTurn(2, 3, None, 100, 5, False),
             ScoredTurn(3, -2, 3, 3, 8, False), ScoredTurn(4, 10, 13, 13, 3, True)]
    assert update_flags(turns, OWN) == [T, F, F, T]
    assert update_flags(turns, LIVE) == [T, F, T, T]     # 5 - 2 = 3 ✓
    assert update_flags(turns, FINAL) == [T, F, F, T]
    # one row at a time (the turn tables) gives the same
    for rule in STEP_RULES:
        assert [update_flag_at(turns, i, rule) for i in range(4)] == update_flags(turns, rule)


def test_a_probe_sample_starting_at_its_target_turn_keeps_its_stored_flag():
    turns = [ScoredTurn(7, 4, 12, 12, 9, False)]
    assert all(update_flags(turns, rule) == [F] for rule in STEP_RULES)


def test_an_unknown_rule_is_refused():
    with pytest.raises(ValueError, match="unknown step rule"):
        update_flags([], "gold")


# ---- end to end: stored, chosen at read time, and the reference's per-turn evaluator ------------------------
def reference_live_steps(answers: list[int | None], turn_sums: list[int], golds: list[int]) -> list[bool]:
    """The reference's per-turn evaluator's step flags, restated in a few lines (docs/protocol.md): a missing
    answer is replaced by the previous (replaced) value, 0 before turn 1; turn 1's flag is "answer = gold";
    later turns: replaced value = previous replaced value + this turn's keys."""
    flags, previous = [], 0
    for i, (answer, step, gold) in enumerate(zip(answers, turn_sums, golds)):
        value = answer if answer is not None else previous
        flags.append(answer == gold if i == 0 else value == previous + step)
        previous = value
    return flags


@pytest.fixture(scope="module")
def sim_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("rules") / "s.db"
    db = open_database(path)
    config = RunConfig(provider="sim", turns=40, samples=12, seed=5, sim_delay=0.0, sim_format_miss=0.15,
                       sim_base_error=0.03, step_rule="reference-live")
    prepared = prepare_run(config, db)
    asyncio.run(prepared.runner.run())
    return path, prepared.session_id


def test_reference_live_equals_the_reference_per_turn_evaluator_on_a_sim_run(sim_store):
    path, sid = sim_store
    db = open_database(path, create=False, write=False)
    records = load_turns(db, sid)
    by_sample: dict[int, list] = {}
    for r in records:
        by_sample.setdefault(r.sample, []).append(r)
    expected = [reference_live_steps([r.model_answer for r in rs], [r.turn_sum for r in rs],
                                     [r.gold_sum for r in rs]) for _, rs in sorted(by_sample.items())]
    assert sum(r.model_answer is None for r in records) > 20        # the misses the rules disagree on
    flags = session_flags(db, sid)                                  # the rule stored with the run
    assert flags.step_rule == "reference-live" and flags.update == expected
    assert flags_by_sample(db, sid, step_rule=OWN)[1] != expected   # ours differs after some miss
    # the live view's model scores the same flags from the same records under the run's rule
    from lhe_tui.ui.feed import RunModel

    model = RunModel()
    model.config = {"step_rule": "reference-live"}
    model.preload(records)
    assert model.flags()[1] == expected


def test_show_export_and_the_api_take_the_rule_at_read_time(sim_store, capsys):
    path, sid = sim_store
    db = api.open_store(path)
    own, live = api.summary(db, sid, step_rule=OWN), api.summary(db, sid)
    assert (own.step_rule, live.step_rule) == (OWN, LIVE)
    assert own.mean_turn_accuracy != live.mean_turn_accuracy
    assert own.p_before_first_error == live.p_before_first_error     # the rule changes turn accuracy only
    final = api.curves(db, sid, step_rule=FINAL)
    own_curve = api.curves(db, sid, step_rule=OWN)
    assert [p.task_accuracy for p in final] == [p.task_accuracy for p in own_curve]
    # the sim carries a missed turn's keys (it adds them to its last answer): right under ours, not under final
    assert [p.turn_accuracy for p in final] != [p.turn_accuracy for p in own_curve]
    assert all(f.turn_accuracy <= o.turn_accuracy for f, o in zip(final, own_curve))
    assert main(["show", sid, "--step-rule", "reference-final", "--db", str(path)]) == 0
    out = capsys.readouterr().out
    assert "reference-final" in out
    assert main(["export", sid, "--format", "csv", "--step-rule", "own", "--db", str(path)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    own_flags = [f for s in flags_by_sample(db, sid, step_rule=OWN)[1] for f in s]
    assert [r["turn_correct"] == "1" for r in rows] == own_flags
    assert main(["export", sid, "--db", str(path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["config"]["step_rule"] == "reference-live" and data["summary"]["step_rule"] == "reference-live"
    assert [t["turn_correct"] == 1 for t in data["turns"]] == [f for s in session_flags(db, sid).update for f in s]


def test_run_takes_the_rule_and_refuses_an_unknown_one(tmp_path, capsys):
    db = tmp_path / "r.db"
    assert main(["run", "--headless", "--provider", "sim", "--turns", "5", "--sim-delay", "0",
                 "--step-rule", "reference-final", "--db", str(db)]) == 0
    assert "reference-final" in capsys.readouterr().out
    assert main(["run", "--headless", "--provider", "sim", "--step-rule", "gold", "--db", str(db)]) != 0
    err = capsys.readouterr().err
    assert "invalid choice" in err and "Traceback" not in err
    two = [info.id for info in api.sessions(api.open_store(db))][:2]
    assert main(["compare", *two, "--tui", "--step-rule", "own", "--db", str(db)]) != 0
    assert "leave out --step-rule" in capsys.readouterr().err


def test_the_status_bar_names_a_rule_other_than_ours():
    from lhe_tui.ui.feed import RunModel
    from lhe_tui.ui.widgets.status_bar import SourceInfo, StatusBar

    bar = StatusBar()
    bar._s = lambda name: ""   # no app, no theme: the plain text is what is checked
    model = RunModel()
    model.config = {"provider": "sim", "mode": "direct", "k": 1, "protocol": "paper", "step_rule": "reference-live"}
    assert " · paper · step rule reference-live · K=1" in bar.compose_text(model, None, SourceInfo()).plain
    model.config["step_rule"] = "own"
    assert "step rule" not in bar.compose_text(model, None, SourceInfo()).plain


def test_an_unknown_stored_rule_is_one_line_and_a_given_one_still_reads(tmp_path, capsys):
    import sqlite3

    db = tmp_path / "bad.db"
    assert main(["run", "--headless", "--provider", "sim", "--turns", "4", "--sim-delay", "0", "--db", str(db)]) == 0
    conn = sqlite3.connect(db)
    sid, config = conn.execute("SELECT id, config_json FROM sessions").fetchone()
    with conn:
        conn.execute("UPDATE sessions SET config_json = ?", [json.dumps({**json.loads(config), "step_rule": "gold"})])
    capsys.readouterr()
    assert main(["show", sid, "--db", str(db)]) != 0
    err = capsys.readouterr().err
    assert "unknown step rule 'gold'" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["show", sid, "--step-rule", "own", "--db", str(db)]) == 0
