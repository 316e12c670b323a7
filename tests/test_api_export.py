"""Issue 16, tables and notebook API: `export --curves` (CSV/JSON), the turns CSV's session_id and probe_rate,
the JSON export's config/prompt/events, and the curves round-tripping into lhe_tui.reports.api with equal numbers."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from dataclasses import fields
from pathlib import Path

import pytest

from lhe_tui.reports import api
from lhe_tui.cli.main import main
from lhe_tui.metrics import bootstrap_ci, sample_counts, task_accuracy
from lhe_tui.store.queries import session_flags

RUN = ["run", "--headless", "--provider", "sim", "--turns", "40", "--samples", "6", "--seed", "3", "--k", "2",
       "--sim-error", "0.03", "--sim-delay", "0", "--inject-at", "5"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    db = tmp_path_factory.mktemp("api") / "lhe.db"
    assert main([*RUN, "--db", str(db)]) == 0
    assert main(["probe", "--headless", "--provider", "sim", "--target-turn", "6", "--rates", "0,1", "--samples", "2",
                 "--seed", "3", "--sim-delay", "0", "--db", str(db)]) == 0
    return str(db)


def cli(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def run_id(store):
    return next(s.id for s in api.sessions(api.open_store(store)) if s.kind == "run")


def probe_id(store):
    return next(s.id for s in api.sessions(api.open_store(store)) if s.kind == "probe")


def typed(row: dict) -> dict:
    """A CSV row with CurvePoint's types: what a notebook reading the CSV gets."""
    kinds = {f.name: f.type for f in fields(api.CurvePoint)}
    return {k: (v if kinds[k] == "str" else int(v) if kinds[k] == "int" else float(v)) for k, v in row.items()}


def test_curves_csv_round_trips_into_the_api_and_json_with_equal_numbers(store, capsys, tmp_path):
    sid = run_id(store)
    target = tmp_path / "curves.csv"
    assert cli(capsys, "export", sid, "--curves", "--format", "csv", "-o", str(target), "--db", store)[0] == 0
    with target.open(newline="") as f:
        from_csv = [typed(row) for row in csv.DictReader(f)]
    from_api = api.as_dicts(api.curves(api.open_store(store), sid))
    assert from_csv == from_api                              # every float to the last digit (repr round-trips)
    assert len(from_api) == 40 and from_api[-1]["steps"] == 80 and from_api[0]["session_id"] == sid
    code, out, _ = cli(capsys, "export", sid, "--curves", "--format", "json", "--db", store)
    assert code == 0 and json.loads(out) == from_api
    code, out, _ = cli(capsys, "export", sid, "--db", store)
    assert json.loads(out)["curves"] == from_api            # the full JSON export's curves section: the same
    code, out, _ = cli(capsys, "export", sid, "--format", "curves", "--db", store)   # the older spelling
    assert out == target.read_text()


def test_curves_use_the_shared_metric_functions_and_ragged_rule(store):
    db = api.open_store(store)
    sid = run_id(db.path)
    points = api.curves(db, sid)
    flags = session_flags(db, sid)
    ragged = dict(status=flags.status, turns=flags.turns)
    assert [p.task_accuracy for p in points] == task_accuracy(flags.correct, **ragged)
    assert [p.n for p in points] == sample_counts(flags.correct, **ragged)
    low, high = bootstrap_ci(flags.update, "turn", n_boot=api.N_BOOT, seed=api.SEED, **ragged)
    assert [p.turn_ci_low for p in points] == low and [p.turn_ci_high for p in points] == high
    low, high = bootstrap_ci(flags.correct, "answer", n_boot=api.N_BOOT, seed=api.SEED, **ragged)
    assert [p.answer_ci_low for p in points] == low and [p.answer_ci_high for p in points] == high
    assert all(p.task_ci_low <= p.task_accuracy <= p.task_ci_high for p in points)
    assert any(p.task_ci_low < p.task_ci_high for p in points)   # the sim makes errors: the bands are not points
    summary = api.summary(db, sid)
    assert summary.k == 2 and summary.samples == 6
    if summary.horizon_measured_turns is not None:
        assert points[summary.horizon_measured_turns - 1].task_accuracy < 0.5
        assert summary.horizon_measured_steps == 2 * summary.horizon_measured_turns


def test_api_lists_sessions_and_reads_turns(store):
    db = api.open_store(store)
    infos = api.sessions(db)
    assert [s.kind for s in infos] == ["probe", "run"] and infos[1].simulated is True and infos[1].k == 2  # newest first
    rows = api.turns(db, "latest")                       # the probe: one turn a sample, at the target turn
    assert {r.turn for r in rows} == {6}
    rows = api.turns(db, infos[1].id)
    assert len(rows) == 6 * 40 and rows[0].steps == 2 and len(rows[0].keys) == 2
    assert api.session(db, infos[1].id)["config"]["prompt_text"]
    assert any(e["kind"] == "injected" for e in api.events(db, infos[1].id))
    api.close_store(db)


def test_dataframes_match_the_records(store):
    pandas = pytest.importorskip("pandas")
    db = api.open_store(store)
    sid = run_id(store)
    frame = api.curves_frame(db, sid)
    assert isinstance(frame, pandas.DataFrame)
    assert frame.to_dict("records") == api.as_dicts(api.curves(db, sid))
    assert list(api.turns_frame(db, sid).columns) == [f.name for f in fields(api.TurnRow)]
    assert len(api.sessions_frame(db)) == 2


def test_the_api_imports_neither_textual_nor_pandas():
    import subprocess
    import sys

    code = "import sys, lhe_tui.reports.api; print('textual' in sys.modules, 'pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "False False", out.stderr


def test_dataframes_without_pandas_name_the_install(store, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_pandas(name, *args, **kwargs):
        if name == "pandas":
            raise ImportError("No module named 'pandas'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pandas)
    with pytest.raises(api.LheError, match="pip install pandas"):
        api.curves_frame(api.open_store(store), "latest")


def test_turns_csv_has_session_id_and_a_probe_csv_the_rate(store, capsys):
    sid, pid = run_id(store), probe_id(store)
    code, out, _ = cli(capsys, "export", sid, "--format", "csv", "--db", store)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and list(rows[0])[0] == "session_id" and {r["session_id"] for r in rows} == {sid}
    assert "probe_rate" not in rows[0]
    code, out, _ = cli(capsys, "export", pid, "--format", "csv", "--db", store)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert sorted({float(r["probe_rate"]) for r in rows}) == [0.0, 1.0]


def test_json_export_has_config_prompt_and_events(store, capsys):
    sid = run_id(store)
    data = json.loads(cli(capsys, "export", sid, "--db", store)[1])
    assert data["config"]["k"] == 2 and data["config"] == data["session"]["config"]
    assert data["prompt"]["name"] == data["config"]["prompt"] and data["prompt"]["text"] == data["config"]["prompt_text"]
    kinds = {e["kind"] for e in data["events"]}
    assert "injected" in kinds and "run_started" in kinds
    injected = next(e for e in data["events"] if e["kind"] == "injected")
    assert injected["turn"] == 5 and isinstance(injected["payload"], dict)
    probe = json.loads(cli(capsys, "export", probe_id(store), "--db", store)[1])
    assert probe["curves"] == [] and {t["probe_rate"] for t in probe["turns"]} == {0.0, 1.0}


def test_bad_input_gives_one_line(store, capsys, tmp_path):
    code, out, err = cli(capsys, "export", "no-such-id", "--curves", "--db", store)
    assert code != 0 and out == "" and err.count("\n") == 1 and "no session" in err
    code, _, err = cli(capsys, "export", probe_id(store), "--curves", "--db", store)
    assert code != 0 and err.count("\n") == 1 and "probe" in err
    empty = tmp_path / "empty.db"
    sid = run_id(store)
    with sqlite3.connect(store) as source, sqlite3.connect(empty) as conn:
        source.backup(conn)                              # the store is WAL: copy it through SQLite, not the file
        conn.execute("DELETE FROM turns WHERE session_id = ?", [sid])
    code, out, err = cli(capsys, "export", sid, "--curves", "--format", "csv", "--db", str(empty))
    assert code != 0 and out == "" and err.count("\n") == 1 and "no stored turns" in err
    with pytest.raises(api.NoTurnsError):
        api.curves(api.open_store(empty), sid)
