"""Issue 25 §1: --until first-error[+N] and --until horizon[:S]. The oracles are the full run's numbers (same
seed, every turn played) and hand-made first errors, never the rule's own code."""

from __future__ import annotations

import sqlite3

import pytest

from lhe_tui.cli.main import main
from lhe_tui.core.until import Until, HorizonWatch, running_share
from lhe_tui.metrics import task_accuracy
from lhe_tui.store.database import open_database
from lhe_tui.store.queries import session_flags
from lhe_tui.store.summary import session_summary

RUN = ("run", "--headless", "--provider", "sim", "--samples", "16", "--turns", "240", "--seed", "5",
       "--sim-delay", "0", "--sim-error", "0.01")


@pytest.mark.parametrize("text,rule", [("first-error", Until("first-error")), ("first-error+3", Until("first-error", 3)),
                                       ("horizon", Until("horizon")), ("horizon:0.25", Until("horizon", s=0.25))])
def test_rules_parse_and_print_back(text, rule):
    assert Until.parse(text) == rule and rule.text() == text


@pytest.mark.parametrize("text", ["first-error+", "first-error+-1", "horizon:0", "horizon:1", "horizon:x",
                                  "horizon+2", "first", ""])
def test_bad_rules_are_refused(text):
    with pytest.raises(ValueError):
        Until.parse(text)


def test_the_horizon_is_decided_from_hand_made_first_errors():
    # 4 samples, s = 0.5: H is the first turn at which fewer than 2 samples are error-free: the 3rd error.
    watch = HorizonWatch(4, turns=100, s=0.5)
    for turn in range(1, 8):
        for sample in range(4):
            erred = (sample, turn) in {(0, 3), (1, 7)}
            watch.record(sample, turn, not erred)
    assert watch.bound is None and watch.decided is None          # 2 errors: 2 samples can still be clean
    assert watch.done(0) and watch.done(1) and not watch.done(2)  # erred samples may stop
    watch.record(2, 8, True)
    watch.record(2, 9, False)                                      # the 3rd error, at turn 9
    assert watch.bound == 9 and watch.decided is None              # sample 3 (at turn 7) could still err at 8
    assert not watch.done(3) and watch.done(2)
    watch.record(3, 8, True)
    assert watch.decided == 9 and watch.verdict() == "H decided at turn 9"
    assert not watch.done(3)
    watch.record(3, 9, True)
    assert watch.done(3)


def test_the_horizon_never_drops_once_enough_samples_are_clean_to_the_end():
    watch = HorizonWatch(4, turns=3, s=0.5)
    for turn in (1, 2, 3):
        watch.record(0, turn, True)
    assert watch.decided is None
    for turn in (1, 2, 3):
        watch.record(1, turn, True)
    assert watch.decided == 0 and all(watch.done(i) for i in range(4))


def test_expected_running_share():
    assert running_share(Until("first-error"), 0.5, 4) == [1.0, 0.5, 0.25, 0.125]
    assert running_share(Until("first-error", 2), 0.5, 5) == [1.0, 1.0, 1.0, 0.5, 0.25]
    # horizon: ln(0.5)/ln(0.9) = 6.58: every sample to turn 7, none after
    assert running_share(Until("horizon"), 0.9, 9) == [1.0] * 7 + [0.0] * 2


def _run(tmp_path, capsys, *extra: str) -> tuple[str, sqlite3.Connection, str]:
    db = tmp_path / "lhe.db"
    assert main([*RUN, "--db", str(db), *extra]) == 0
    out = capsys.readouterr().out
    store = open_database(db, create=False, write=False)
    sid = store.execute("SELECT id FROM sessions ORDER BY created_at DESC, rowid DESC LIMIT 1").fetchone()[0]
    return sid, store, out


def requests(store, sid) -> int:
    return store.execute("SELECT COUNT(*) FROM turns WHERE session_id = ?", [sid]).fetchone()[0]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    db = tmp_path_factory.mktemp("full") / "lhe.db"
    assert main([*RUN, "--db", str(db)]) == 0
    store = open_database(db, create=False, write=False)
    sid = store.execute("SELECT id FROM sessions").fetchone()[0]
    return session_summary(store, sid), session_flags(store, sid), requests(store, sid)


def test_until_horizon_gives_the_full_runs_horizon_with_a_fraction_of_the_requests(tmp_path, capsys, full_run):
    full, _, full_requests = full_run
    sid, store, out = _run(tmp_path, capsys, "--until", "horizon")
    early = session_summary(store, sid)
    sent = requests(store, sid)
    print(f"H_0.5: full {full.horizon_measured}, --until horizon {early.horizon_measured}; requests: full "
          f"{full_requests}, --until horizon {sent}")
    assert full.horizon_measured is not None and early.horizon_measured == full.horizon_measured
    assert sent < full_requests / 4
    assert f"H decided at turn {full.horizon_measured}" in out
    statuses = {r[0] for r in store.execute("SELECT status FROM samples WHERE session_id = ?", [sid])}
    assert statuses == {"early"}


def test_until_first_error_keeps_the_first_errors_and_the_task_curve(tmp_path, capsys, full_run):
    full, full_flags, full_requests = full_run
    sid, store, _ = _run(tmp_path, capsys, "--until", "first-error")
    early = session_summary(store, sid)
    flags = session_flags(store, sid)
    assert early.first_errors == full.first_errors and None not in full.first_errors
    lasts = [len(c) for c in flags.correct]
    assert lasts == full.first_errors                                    # each stopped at its first error
    full_task = task_accuracy(full_flags.correct, status=full_flags.status, turns=full_flags.turns)
    task = task_accuracy(flags.correct, status=flags.status, turns=flags.turns)
    frontier = max(lasts)
    assert task == full_task[:frontier]                                  # exact, turn by turn
    assert early.horizon_measured == full.horizon_measured
    assert requests(store, sid) == sum(full.first_errors) < full_requests


def test_until_first_error_plus_n_plays_n_more_turns(tmp_path, capsys, full_run):
    full, _, _ = full_run
    sid, store, _ = _run(tmp_path, capsys, "--until", "first-error+3")
    lasts = [len(c) for c in session_flags(store, sid).correct]
    assert lasts == [min(f + 3, 240) for f in full.first_errors]


def test_a_fork_respects_until_over_its_inherited_turns(tmp_path, capsys, full_run):
    full, _, _ = full_run
    db = tmp_path / "lhe.db"
    assert main([*RUN, "--db", str(db)]) == 0
    parent = open_database(db, create=False).execute("SELECT id FROM sessions").fetchone()[0]
    capsys.readouterr()
    assert main(["fork", parent, "--turn", "40", "--all-samples", "--until", "first-error", "--headless",
                 "--db", str(db)]) == 0
    store = open_database(db, create=False, write=False)
    fork = store.execute("SELECT id FROM sessions WHERE parent_id = ?", [parent]).fetchone()[0]
    lasts = [len(c) for c in session_flags(store, fork).correct]
    # a sample that erred by turn 40 sends nothing more; the others stop at their first error
    assert lasts == [max(40, f) for f in full.first_errors]


def test_the_curves_n_tells_early_samples_apart(tmp_path, capsys, full_run):
    """An early-stopped sample that erred counts in the task point (as wrong) past its end, not in the turn
    point: the export's task_n against n says how many samples ended early by design."""
    from lhe_tui.reports import api

    full, _, _ = full_run
    sid, store, _ = _run(tmp_path, capsys, "--until", "first-error")
    points = api.curves(store, sid)
    last = points[-1]
    assert last.task_n == 16                                  # every sample: all erred, all counted wrong
    stopped_before = sum(1 for f in full.first_errors if f < last.turn)
    assert last.n == 16 - stopped_before and last.task_accuracy == 0.0
