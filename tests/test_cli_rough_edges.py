"""Issue 14, items 13, 15 and 18 on the command line: tables that fit the terminal, `show` that says what it
skips, defaults in --help, --version, ids by their end, resume of a finished session, a probe's summary,
LHE_TUI_DB."""

from __future__ import annotations

import sqlite3

import pytest

from lhe_tui import __version__
from lhe_tui.cli.main import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "store" / "lhe.db")


def headless(capsys, db, *extra):
    return run_cli(capsys, "run", "--headless", "--provider", "sim", "--turns", "120", "--samples", "16", "--seed",
                   "3", "--sim-delay", "0", "--db", db, *extra)


def ids(db):
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT id FROM sessions ORDER BY rowid")]


def widest(text: str) -> int:
    return max(len(line.rstrip()) for line in text.splitlines())


# ---- 13: tables fit the terminal -------------------------------------------------------------------------
def test_every_report_fits_80_columns(capsys, db, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = headless(capsys, db)
    assert code == 0
    assert widest(out) <= 80, out
    assert "s15:" in out and "p before the first error" in out     # folded, not lost
    headless(capsys, db, "--inject-at", "20:5")
    a, b = ids(db)
    for argv in (("sessions",), ("show", a), ("compare", a, b), ("compare", a, b, "--at", "10,20,30,50,100")):
        code, out, err = run_cli(capsys, *argv, "--db", db)
        assert code == 0, err
        assert widest(out) <= 80, (argv, out)
    code, out, _ = run_cli(capsys, "sessions", "--db", db)
    header = next(line for line in out.splitlines() if "id" in line and "status" in line)
    for column in ("id", "status", "task acc", "H_0.5"):      # the important ones stay, first
        assert column in header
    assert header.index("status") < header.index("task acc") < header.index("H_0.5")
    assert "left out to fit 80 columns" in out and "created" in out.split("left out")[1]
    code, out, _ = run_cli(capsys, "compare", a, b, "--db", db)
    assert a in out and b in out and "H_0.5" in out and "inject@20" in out.replace("\n", " ").replace("│", "")


def test_wide_terminal_shows_every_column(capsys, db, monkeypatch):
    headless(capsys, db)
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run_cli(capsys, "sessions", "--db", db)
    assert "protocol" in out and "created" in out and "left out" not in out


def test_fit_columns_drops_highest_keep_first_and_folds():
    from lhe_tui.reports.fitted_table import Column, fit_columns

    columns = [Column("id", keep=0), Column("name", keep=1, fold=6), Column("extra", keep=9)]
    rows = [("a" * 20, "word " * 6, "x" * 10)]
    kept, widths = fit_columns(columns, rows, 200)
    assert kept == [0, 1, 2] and widths == {}
    kept, widths = fit_columns(columns, rows, 40)
    assert kept == [0, 1] and widths[1] <= 40 - 20 - 7
    kept, _ = fit_columns(columns, rows, 10)
    assert kept == [0]                     # never the id


def test_show_says_it_skips_turns_and_can_show_all(capsys, db):
    headless(capsys, db)
    (sid,) = ids(db)
    code, out, _ = run_cli(capsys, "show", sid, "--db", db)
    assert "one row every 2 turns of 120" in out and "--all" in out
    code, out, _ = run_cli(capsys, "show", sid, "--all", "--db", db)
    rows = [line for line in out.splitlines() if line.startswith("│") and line.split("│")[1].strip().isdigit()]
    assert len([r for r in rows if int(r.split("│")[1]) <= 120]) >= 120
    assert "one row every" not in out
    code, out, _ = run_cli(capsys, "show", sid, "--every", "10", "--db", db)
    assert "one row every 10 turns" in out
    code, _, err = run_cli(capsys, "show", sid, "--every", "0", "--db", db)
    assert code != 0 and err.count("\n") == 1 and "--every" in err


# ---- 18: --help, --version, ids, resume, probe -----------------------------------------------------------
def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--help"])
    assert exit_.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    for needle in ("(default 120)", "(default 6)", "(default 16)", "(default 100)", "(default direct)",
                   "(default sim)", "(default -99)", "(default 0.005)"):
        assert needle in out, needle
    assert "(default None)" not in out and "(default False)" not in out


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"lhe-tui {__version__}"


def test_session_id_by_its_end_or_start(capsys, db):
    headless(capsys, db, "--turns", "5", "--samples", "1")
    (sid,) = ids(db)
    suffix = sid.split("-", 1)[1]                  # what the TUI shows: 115417-5b3c
    for given in (suffix, sid[-4:], sid[:13], sid):
        code, out, err = run_cli(capsys, "show", given, "--db", db)
        assert code == 0 and sid in out, (given, err)


def test_ambiguous_id_is_one_line_with_the_candidates(capsys, db):
    headless(capsys, db, "--turns", "5", "--samples", "1")
    headless(capsys, db, "--turns", "5", "--samples", "1")
    a, b = ids(db)
    with sqlite3.connect(db) as conn:   # same end, as two sessions may have by chance
        conn.execute("UPDATE sessions SET id = ? WHERE id = ?", ["20260101-000000-abcd", a])
        conn.execute("UPDATE sessions SET id = ? WHERE id = ?", ["20260102-000000-abcd", b])
    code, out, err = run_cli(capsys, "show", "abcd", "--db", db)
    assert code != 0 and out == ""
    assert err.count("\n") == 1 and "ambiguous" in err
    assert "20260101-000000-abcd" in err and "20260102-000000-abcd" in err
    code, _, err = run_cli(capsys, "show", "a_c%", "--db", db)    # no wildcards
    assert code != 0 and "no session" in err


def test_resume_of_a_finished_session_is_refused_and_keeps_its_time(capsys, db):
    headless(capsys, db, "--turns", "10", "--samples", "2")
    (sid,) = ids(db)
    with sqlite3.connect(db) as conn:
        before = conn.execute("SELECT wall_time_s, ended_at, status FROM sessions").fetchone()
    code, out, err = run_cli(capsys, "resume", sid, "--headless", "--db", db)
    assert code != 0
    assert err.count("\n") == 1 and "already finished" in err
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT wall_time_s, ended_at, status FROM sessions").fetchone() == before


def test_probe_show_says_what_a_probe_is(capsys, db):
    code, _, err = run_cli(capsys, "probe", "--headless", "--target-turn", "30", "--samples", "2", "--sim-delay", "0",
                           "--db", db)
    assert code == 0, err
    code, out, _ = run_cli(capsys, "show", "latest", "--db", db)
    flat = " ".join(out.replace("│", " ").split())
    assert "30 x 1" not in flat and "samples x turns" not in flat
    assert "target-turn probe" in flat and "answers turn 30 only" in flat
    assert "r = 0, 0.25, 0.5, 0.75, 1" in flat and "2 samples per rate" in flat


# ---- 15: LHE_TUI_DB --------------------------------------------------------------------------------------
def test_lhe_tui_db_sets_the_store(capsys, db, monkeypatch, tmp_path):
    monkeypatch.setenv("LHE_TUI_DB", db)
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "run", "--headless", "--turns", "3", "--sim-delay", "0")
    assert code == 0, err
    (sid,) = ids(db)
    assert not (tmp_path / "sessions").exists()
    code, out, _ = run_cli(capsys, "sessions")
    assert code == 0 and sid in out
    code, out, _ = run_cli(capsys, "show", "latest")
    assert code == 0 and sid in out
    other = tmp_path / "other.db"
    code, _, _ = run_cli(capsys, "run", "--headless", "--turns", "3", "--sim-delay", "0", "--db", str(other))
    assert code == 0 and len(ids(db)) == 1 and len(ids(str(other))) == 1     # --db wins
