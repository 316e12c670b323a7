"""`lhe-tui datasette`: a real datasette process on a sim session's store, read over HTTP, against lhe-tui's own
metrics (the functions `lhe-tui show` and `export --format curves` use)."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("datasette")

from lhe_tui.cli.main import main  # noqa: E402
from lhe_tui.cli.web import metadata_file_for  # noqa: E402
from lhe_tui.metrics import answer_accuracy, sample_counts, task_accuracy, turn_accuracy  # noqa: E402
from lhe_tui.store.database import open_database  # noqa: E402
from lhe_tui.store.queries import session_flags  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
START_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 10.0) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read().decode("utf-8")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A sim session with errors (a high error rate) and scripted injections at turn 10, stored by its own
    process (which closes the store, as a finished run leaves it: no write-ahead log left)."""
    db = tmp_path_factory.mktemp("store") / "runs.db"
    subprocess.run([sys.executable, "-m", "lhe_tui", "run", "--headless", "--provider", "sim", "--turns", "40",
                    "--samples", "6", "--seed", "5", "--sim-delay", "0", "--sim-error", "0.03", "--inject-at",
                    "10:7", "--db", str(db)], check=True, capture_output=True, timeout=120, cwd=ROOT,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    with sqlite3.connect(db) as conn:
        session_id = conn.execute("SELECT id FROM sessions").fetchone()[0]
    return db, session_id


@pytest.fixture(scope="module")
def datasette(store, tmp_path_factory):
    """`lhe-tui datasette` as a real process on a free loopback port; always stopped."""
    db, _ = store
    port = free_port()
    cache = tmp_path_factory.mktemp("cache")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(cache)}
    process = subprocess.Popen([sys.executable, "-m", "lhe_tui", "datasette", "--db", str(db), "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_S
        while True:
            try:
                get(f"{base}/-/versions.json", timeout=2.0)
                break
            except (urllib.error.URLError, OSError):
                if process.poll() is not None or time.monotonic() > deadline:
                    out = process.stdout.read().decode(errors="replace") if process.poll() is not None else ""
                    pytest.fail(f"datasette did not start within {START_S:.0f} s: {out[-2000:]}")
                time.sleep(0.2)
        # The metadata it read: one file per store in the user's cache folder (overwritten at each start).
        assert [p.name for p in (cache / "lhe-tui").iterdir()] == [metadata_file_for(db.resolve()).name]
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def app_curves(db: Path, session_id: str) -> dict[str, list]:
    store = open_database(db, create=False, write=False)
    try:
        flags = session_flags(store, session_id)
    finally:
        store.conn.close()
    ragged = dict(status=flags.status, turns=flags.turns)
    return {"n": sample_counts(flags.correct, **ragged), "answer_accuracy": answer_accuracy(flags.correct, **ragged),
            "turn_accuracy": turn_accuracy(flags.update, **ragged), "task_accuracy": task_accuracy(flags.correct, **ragged)}


def test_curves_query_matches_lhe_tui_metrics(store, datasette):
    db, session_id = store
    status, body = get(f"{datasette}/runs/curves.json?_shape=array&session_id={session_id}")
    assert status == 200
    rows = json.loads(body)
    expected = app_curves(db, session_id)
    assert [r["turn"] for r in rows] == list(range(1, 41))
    assert [r["n"] for r in rows] == expected["n"]
    for name in ("answer_accuracy", "turn_accuracy", "task_accuracy"):
        assert [r[name] for r in rows] == pytest.approx(expected[name], abs=1e-12), name
    assert min(r["turn_accuracy"] for r in rows) < 1.0          # the session has errors to compare
    # An empty session_id (the form's default) and `latest` mean the newest session; its end works too.
    for alias in ("", "latest", session_id[-11:]):
        assert json.loads(get(f"{datasette}/runs/curves.json?_shape=array&session_id={alias}")[1]) == rows


def test_first_errors_and_injections_queries(store, datasette):
    db, session_id = store
    with sqlite3.connect(db) as conn:
        first = dict(conn.execute("SELECT sample, first_error_turn FROM samples WHERE session_id = ?", [session_id]))
    errors = json.loads(get(f"{datasette}/runs/first_errors.json?_shape=array&session_id={session_id}")[1])
    assert {r["sample"]: r["first_error_turn"] for r in errors} == first
    for row in errors:
        if row["first_error_turn"] is not None:
            assert row["model_answer"] is None or row["model_answer"] != row["gold_sum"]
    injections = json.loads(get(f"{datasette}/runs/injections.json?_shape=array&session_id={session_id}")[1])
    assert len(injections) == 6 and {r["turn"] for r in injections} == {10}
    assert all(r["source"] == "scripted" and r["injected"] - r["original"] == 7 for r in injections)


def test_table_and_column_descriptions_and_read_only(store, datasette):
    db, _ = store
    status, page = get(f"{datasette}/runs/turns")
    assert status == 200 and "One row per answered turn" in page
    metadata = json.loads(get(f"{datasette}/-/metadata.json")[1])
    tables = metadata["databases"]["runs"]["tables"]
    assert set(tables) >= {"sessions", "samples", "turns", "events"}
    assert "turn accuracy" in tables["turns"]["columns"]["step_correct"]
    assert "answer accuracy" in tables["turns"]["columns"]["correct"]
    databases = json.loads(get(f"{datasette}/-/databases.json")[1])
    assert [d["is_mutable"] for d in databases if d["name"] == "runs"] == [False]    # opened immutable


def test_print_metadata_is_keyed_for_the_store(capsys, tmp_path):
    assert main(["datasette", "--db", str(tmp_path / "other.db"), "--print-metadata"]) == 0
    metadata = json.loads(capsys.readouterr().out)
    assert list(metadata["databases"]) == ["other"]
    assert set(metadata["databases"]["other"]["queries"]) == {"curves", "first_errors", "injections"}


def test_wal_store_opens_read_only_not_immutable(tmp_path):
    from lhe_tui.cli.web import datasette_argv

    db = tmp_path / "lhe.db"
    db.write_bytes(b"")
    argv, immutable = datasette_argv(db, tmp_path / "m.json", "127.0.0.1", 8001)
    assert immutable and "-i" in argv
    Path(f"{db}-wal").write_bytes(b"x" * 32)
    argv, immutable = datasette_argv(db, tmp_path / "m.json", "127.0.0.1", 8001)
    assert not immutable and "-i" not in argv


@pytest.mark.parametrize("argv, needle", [
    (["--port", "0"], "--port must be within 1..65535"),
    (["--host", "no-such-host.invalid"], "cannot use host"),
])
def test_bad_address_is_one_line(capsys, store, argv, needle):
    db, _ = store
    assert main(["datasette", "--db", str(db), *argv]) != 0
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_port_in_use_is_one_line(capsys, store):
    db, _ = store
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["datasette", "--db", str(db), "--port", str(port)]) != 0
    err = capsys.readouterr().err
    assert "cannot listen on 127.0.0.1" in err and err.count("\n") == 1


def test_missing_store_is_one_line(capsys, tmp_path):
    assert main(["datasette", "--db", str(tmp_path / "none.db")]) != 0
    err = capsys.readouterr().err
    assert "no session store" in err and err.count("\n") == 1


def test_missing_extra_names_it(capsys, store, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "datasette" else real(name, *a))
    db, _ = store
    assert main(["datasette", "--db", str(db)]) != 0
    err = capsys.readouterr().err
    assert "pip install -c constraints.txt -e '.[datasette]'" in err and err.count("\n") == 1
