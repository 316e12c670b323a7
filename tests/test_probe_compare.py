import random
import sqlite3

from lhe_tui.cli.main import main
from lhe_tui.runs.probe import probe_table, synthetic_history
from lhe_tui.runner.history import HistoryPolicy
from lhe_tui.store.database import open_database
from lhe_tui.task import generate_task


def ids(db, kind):
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT id FROM sessions WHERE kind = ? ORDER BY rowid", [kind])]


def test_probe_accuracy_falls_as_rate_rises_and_reloads(tmp_path, capsys):
    db = tmp_path / "lhe.db"
    code = main(["probe", "--headless", "--target-turn", "20", "--samples", "30", "--rates", "0,0.5,1",
                 "--sim-delay", "0", "--seed", "3", "--db", str(db)])
    out = capsys.readouterr().out
    assert code == 0 and "probe: accuracy at the target turn" in out
    (sid,) = ids(db, "probe")
    rows = probe_table(open_database(db), sid)
    assert [r.rate for r in rows] == [0.0, 0.5, 1.0]
    assert all(r.n == 30 for r in rows)
    assert rows[0].accuracy > rows[1].accuracy > rows[2].accuracy
    assert all(r.ci_low <= r.accuracy <= r.ci_high for r in rows)
    with sqlite3.connect(db) as conn:  # only turn T is asked
        assert conn.execute("SELECT DISTINCT turn FROM turns").fetchall() == [(20,)]
    assert main(["show", sid, "--db", str(db)]) == 0
    shown = capsys.readouterr().out
    for r in rows:
        assert f"{100 * r.accuracy:.1f}%" in shown


def test_synthetic_history_error_share_tracks_rate():
    task = generate_task(1, n_samples=1, turns=2001, k=1)
    entries = synthetic_history(task.samples[0], 2001, 0.3, seed=9)
    wrong = sum(e.history_answer != e.gold_sum for e in entries)
    assert abs(wrong / len(entries) - 0.3) < 0.04
    clean = synthetic_history(task.samples[0], 50, 0.0, seed=9)
    assert all(e.history_answer == e.gold_sum for e in clean)


def test_induced_error_rate_fraction_within_tolerance_and_zero_is_plain():
    for rate in (0.1, 0.5):
        policy = HistoryPolicy(seed=4, induced_error_rate=rate)
        shown = [policy.history_answer(0, t, model_answer=100, gold=100) for t in range(1, 4001)]
        share = sum(v != 100 for v in shown) / len(shown)
        assert abs(share - rate) < 0.03, (rate, share)
    plain, zero = HistoryPolicy(seed=4), HistoryPolicy(seed=4, induced_error_rate=0.0)
    rng = random.Random(0)
    for turn in range(1, 300):
        answer, gold = rng.randint(-50, 50), rng.randint(-50, 50)
        assert zero.history_answer(0, turn, answer, gold) == plain.history_answer(0, turn, answer, gold) == answer


def test_compare_prints_horizon_and_accuracy_at_turns(tmp_path, capsys):
    db = str(tmp_path / "lhe.db")
    base = ["run", "--headless", "--turns", "40", "--samples", "6", "--seed", "2", "--sim-delay", "0", "--db", db]
    assert main(base) == 0
    assert main(base + ["--inject-at", "10:5"]) == 0
    capsys.readouterr()
    plain, injected = ids(db, "run")
    assert main(["compare", plain, injected, "--at", "5,20", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "H_0.5" in out and "@5 turn/task" in out and "@20 turn/task" in out
    assert "inject@10" in out and "plain" in out
    # every sample saw the injection at turn 10, so task accuracy at 20 is 0 in the injected run
    line = next(line for line in out.splitlines() if injected in line)
    assert "/0.00" in line.split("│")[-2]
