"""Bad input never crashes: property-based tests for the dataset loader, the CLI config and the store opener."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

from hypothesis import HealthCheck, given, settings, strategies as st

from lhe_tui.cli.main import main
from lhe_tui.common.errors import DatasetError, LheError
from lhe_tui.task import load_dataset

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=6),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                           max_leaves=20)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=json_values)
def test_dataset_loader_raises_only_dataset_errors(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("ds") / "data.json"
    path.write_text(json.dumps({"dict_sum": data} if isinstance(data, dict) else data))
    try:
        task = load_dataset(path, 1, 1, 1)
    except DatasetError as exc:
        assert "\n" not in str(exc)
    else:
        assert task.samples


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200))
def test_dataset_loader_on_random_bytes(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("ds") / "data.json"
    path.write_bytes(raw)
    try:
        load_dataset(path, 1, 1, 1)
    except DatasetError:
        pass


flag_values = st.sampled_from(["0", "-1", "1", "abc", "1e9", "", "nan", "0.5", "-0.5", "99999999999", "on",
                               '{"top_k": 1}', '{"messages": 1}', "[1]", "\"a\\nb\"",
                               # issue 22: non-finite, past 64 bits, strict JSON only
                               "inf", "-inf", "1e999", "1e308", str(2**64), "-" + str(2**64), '{"a": NaN}',
                               '{"a": 1e999}', '{"a": "\\ud800"}', '{"a": ' + "[" * 600 + "]" * 600 + "}"])
flags = st.sampled_from(["--turns", "--samples", "--k", "--seed", "--dict-size", "--min-value", "--max-value",
                         "--concurrency", "--induced-error-rate", "--window", "--temperature", "--timeout",
                         "--retries", "--inject-at", "--mode", "--provider", "--extra-body", "--enable-thinking",
                         "--dataset-offset", "--top-p", "--max-reply-mb", "--max-tokens",
                         "--thinking-budget", "--deadline", "--retry-budget", "--sim-error", "--max-cost"])


def _refuse(name: str) -> None:
    raise AssertionError(f"{name} stored in a config: not strict JSON")


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pairs=st.lists(st.tuples(flags, flag_values), min_size=1, max_size=3))
def test_run_flags_never_traceback(tmp_path_factory, capsys, pairs):
    db = tmp_path_factory.mktemp("db") / "lhe.db"
    argv = ["run", "--headless", "--sim-delay", "0", "--db", str(db), "--turns", "3"]
    for flag, value in pairs:
        argv += [flag, value]
    try:
        code = main(argv + (["--turns", "3"] if "--turns" not in [f for f, _ in pairs] else []))
    except LheError as exc:  # main() must catch these itself
        raise AssertionError(f"escaped: {exc}")
    out, err = capsys.readouterr()
    if code != 0:
        assert err.strip().count("\n") == 0 and err.startswith("lhe-tui: error:"), err
    assert "Traceback" not in err
    if db.exists():   # whatever was stored is strict JSON (issue 22)
        with sqlite3.connect(db) as conn:
            for (config,) in conn.execute("SELECT config_json FROM sessions"):
                json.loads(config, parse_constant=_refuse)


def test_ctrl_c_marks_session_interrupted_and_leaves_valid_db(tmp_path):
    db = tmp_path / "lhe.db"
    proc = subprocess.Popen([sys.executable, "-m", "lhe_tui", "run", "--headless", "--turns", "2000", "--samples", "2",
                             "--sim-delay", "0.002", "--db", str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        time.sleep(0.1)
        try:
            with sqlite3.connect(db) as conn:
                if conn.execute("SELECT COUNT(*) FROM turns").fetchone()[0] > 20:
                    break
        except sqlite3.OperationalError:
            pass
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "Traceback" not in err
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT status FROM sessions").fetchone()[0] == "interrupted"
        n = conn.execute("SELECT COUNT(*) FROM turns").fetchone()[0]
        assert 20 < n < 4000
    assert "interrupted" in out
