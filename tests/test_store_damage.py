"""Issue 14, store item 1: a real garbage page in the middle of a real store (header intact)."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from lhe_tui.store.doctor import diagnose, recover
from lhe_tui.store.database import MIGRATION_NAMES, open_database

from tests.store_faults import cli, corrupt_middle_page, stored_run


def damaged_line(path) -> str:
    return (f"lhe-tui: error: {path} is damaged (database disk image is malformed); lhe-tui doctor --db {path} "
            "can recover what is readable")


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def damaged(tmp_path):
    path = tmp_path / "sessions" / "lhe.db"
    session_id = stored_run(path)
    corrupt_middle_page(path)
    return path, session_id


def test_every_command_says_damaged_in_one_line(damaged):
    path, sid = damaged
    before = digest(path)
    commands = [["sessions"], ["show", sid], ["export", sid], ["compare", sid], ["resume", "--headless", sid],
                ["replay", sid], ["run", "--headless", "--turns", "3"], ["probe", "--headless", "--target-turn", "3"]]
    for args in commands:
        done = cli(*args, "--db", str(path))
        assert done.returncode != 0, args
        assert done.stderr == damaged_line(path) + "\n", (args, done.stderr)
    assert digest(path) == before     # nothing wrote into it


def test_doctor_reports_and_recovers_into_a_new_file_leaving_the_store_alone(damaged, tmp_path):
    path, sid = damaged
    before = digest(path)
    done = cli("doctor", "--db", str(path))
    assert done.returncode == 1 and "DAMAGED" in done.stdout and "--recover" in done.stdout
    out = tmp_path / "recovered.db"
    done = cli("doctor", "--db", str(path), "--recover", str(out))
    assert out.exists() and "recovered into" in done.stdout and "passes the integrity check" in done.stdout
    assert digest(path) == before
    # What was readable is there, and the copy is a store lhe-tui uses as any other.
    conn = sqlite3.connect(out)
    turns = conn.execute("SELECT COUNT(*) FROM turns").fetchone()[0]
    assert 0 < turns < 800 and conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 1
    conn.close()
    assert cli("sessions", "--db", str(out)).returncode == 0
    assert cli("show", sid, "--db", str(out)).returncode == 0
    # A recovery never goes over an existing file, nor over the store.
    again = cli("doctor", "--db", str(path), "--recover", str(out))
    assert again.stderr.strip() == f"lhe-tui: error: {out} exists: doctor writes a recovery to a new file only"
    assert digest(path) == before


@pytest.mark.parametrize("methods", [("rows",), ("vacuum", "rows")])
def test_recovery_without_the_sqlite3_shell(damaged, tmp_path, methods):
    path, _ = damaged
    result = recover(path, tmp_path / "r.db", methods=methods)
    assert result.method == "row by row" and result.sound and 0 < result.rows["turns"] < 800
    assert result.rows["sessions"] == 1 and result.rows["_sqlite_migrations"] == len(MIGRATION_NAMES)


def test_doctor_on_a_sound_store(tmp_path):
    path = tmp_path / "lhe.db"
    stored_run(path, samples=1, turns=20)
    assert diagnose(path).sound
    result = recover(path, tmp_path / "copy.db", methods=("vacuum",))
    assert result.method == "VACUUM INTO" and result.rows["turns"] == 20 and result.sound
    assert cli("doctor", "--db", str(path)).returncode == 0


def test_run_notices_damage_before_writing(damaged):
    """`run` checks the store (quick_check) when it opens it for writing: it does not write on silently."""
    path, _ = damaged
    with pytest.raises(Exception) as caught:
        open_database(path)
    assert str(caught.value) == damaged_line(path).removeprefix("lhe-tui: error: ")
