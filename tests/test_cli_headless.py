import csv
import io
import json
import sqlite3
import subprocess
import sys

import pytest

from lhe_tui.cli.main import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "store" / "lhe.db")


def headless(capsys, db, *extra):
    return run_cli(capsys, "run", "--headless", "--provider", "sim", "--turns", "30", "--samples", "4", "--seed", "1",
                   "--sim-delay", "0", "--db", db, *extra)


def session_ids(db):
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT id FROM sessions ORDER BY rowid")]


def test_headless_sim_run_writes_everything(capsys, db):
    code, out, err = headless(capsys, db)
    assert code == 0, err
    for needle in ("first error turn", "mean turn accuracy", "task accuracy at last turn", "p before the first error",
                   "mean answer accuracy", "step rule", "H_0.5 measured", "ln(0.5)/ln(p before the first error)", "tokens in / out", "wall time", "session id", "simulated"):
        assert needle in out, needle
    (sid,) = session_ids(db)
    assert sid in out
    conn = sqlite3.connect(db)
    session = conn.execute("SELECT status, provider, simulated, k, turns, n_samples, seed FROM sessions").fetchone()
    assert session == ("finished", "sim", 1, 1, 30, 4, 1)
    assert conn.execute("SELECT COUNT(*) FROM turns").fetchone()[0] == 120
    assert conn.execute("SELECT COUNT(*) FROM samples WHERE status = 'finished'").fetchone()[0] == 4
    bad = conn.execute("SELECT COUNT(*) FROM turns WHERE correct != (model_answer IS gold_sum) "
                       "OR step_correct != (model_answer IS expected_step)").fetchone()[0]
    assert bad == 0
    first = conn.execute("SELECT sample, first_error_turn FROM samples ORDER BY sample").fetchall()
    for sample, turn in first:
        expected = conn.execute("SELECT MIN(turn) FROM turns WHERE sample = ? AND correct = 0", [sample]).fetchone()[0]
        assert turn == expected
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT COUNT(*) FROM events WHERE kind = 'run_finished'").fetchone()[0] == 1


def test_same_seed_same_answers_across_runs(capsys, db):
    headless(capsys, db)
    headless(capsys, db)
    a, b = session_ids(db)
    conn = sqlite3.connect(db)
    rows = [conn.execute("SELECT sample, turn, keys, model_answer FROM turns WHERE session_id = ? ORDER BY sample, "
                         "turn", [s]).fetchall() for s in (a, b)]
    assert rows[0] == rows[1]


def test_sessions_show_export(capsys, db, tmp_path):
    headless(capsys, db)
    (sid,) = session_ids(db)
    code, out, _ = run_cli(capsys, "sessions", "--db", db)
    assert code == 0 and sid in out and "sim/sim-1" in out and "finished" in out
    code, out, _ = run_cli(capsys, "show", sid[:12], "--db", db)
    assert code == 0 and "per-turn accuracy" in out and "task acc" in out and "answer acc" in out
    code, out, _ = run_cli(capsys, "export", sid, "--format", "json", "--db", db)
    data = json.loads(out)
    assert data["session"]["id"] == sid and len(data["turns"]) == 120
    target = tmp_path / "turns.csv"
    code, _, _ = run_cli(capsys, "export", sid, "--format", "csv", "-o", str(target), "--db", db)
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert code == 0 and len(rows) == 120 and {"gold_sum", "model_answer", "answer_correct", "turn_correct"} <= set(rows[0])


@pytest.mark.parametrize("argv, needle", [
    (["run", "--headless", "--provider", "nope"], "invalid choice"),
    (["run", "--headless", "--turns", "abc"], "invalid int value"),
    (["run", "--headless", "--turns", "0"], "--turns must be within 1..1,000,000"),
    (["run", "--headless", "--samples", "-3"], "--samples must be within 1.."),
    (["run", "--headless", "--turns", "99999999999"], "--turns must be within"),
    (["run", "--headless", "--induced-error-rate", "2"], "within 0..1"),
    (["run", "--headless", "--inject-at", "x:y"], "TURN or TURN:OFFSET"),
    (["run", "--headless", "--provider", "openai"], "--model is required"),
    (["run", "--headless", "--provider", "openai", "--model", "gpt-x"], "OPENAI_API_KEY is not set"),
    (["run", "--headless", "--provider", "anthropic", "--model", "claude-x"], "ANTHROPIC_API_KEY is not set"),
    (["run", "--headless", "--dataset", "/nonexistent.json"], "file not found"),
    (["show", "nope"], "no session"),
    (["bogus-command"], "invalid choice"),
])
def test_bad_input_is_one_line_and_nonzero(capsys, monkeypatch, db, argv, needle):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    if argv[0] == "show":
        headless(capsys, db)
    code, out, err = run_cli(capsys, *argv, "--db", db)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lhe-tui: error:") and needle in lines[0], err
    assert "Traceback" not in err + out


def test_foreign_or_corrupt_database_is_a_clear_error(capsys, tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite at all" * 100)
    code, _, err = run_cli(capsys, "sessions", "--db", str(junk))
    assert code != 0 and err.count("\n") == 1 and "cannot be opened" in err
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE users (id INTEGER)")
    code, _, err = run_cli(capsys, "sessions", "--db", str(foreign))
    assert code != 0 and "not an lhe-tui session store" in err


def test_console_script_runs_in_a_subprocess_without_traceback(tmp_path):
    db = tmp_path / "lhe.db"
    ok = subprocess.run([sys.executable, "-m", "lhe_tui", "run", "--headless", "--turns", "5", "--samples", "2",
                         "--sim-delay", "0", "--db", str(db)], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "session id" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "lhe_tui", "run", "--headless", "--k", "zero", "--db", str(db)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and bad.stderr.count("\n") == 1
