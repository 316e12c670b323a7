"""Sweeps (issue 24 §1): the file, the command, resume after a real Ctrl-C, failures, the shared budget and
limits, the estimate."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lhe_tui.cli.main import main
from lhe_tui.core.config import RunConfig
from lhe_tui.core.prices import load_prices
from lhe_tui.common.errors import ConfigError
from lhe_tui.analysis.estimate import forecast
from lhe_tui.store.database import open_database
from lhe_tui.sweep.engine import SweepEngine
from lhe_tui.sweep.estimate import estimate_sweep
from lhe_tui.sweep.plan import plan_sweep
from lhe_tui.sweep.spec import load_spec, parse_spec
from tests.store_faults import ROOT

SIM3 = """
name = "t"
parallel = {parallel}
[base]
provider = "sim"
samples = {samples}
turns = {turns}
seed = 3
sim-delay = {delay}
[axes]
model = [
  {{ label = "weak", model = "sim-weak", sim-error = 0.05, size = 1 }},
  {{ label = "mid", model = "sim-mid", sim-error = 0.02, size = 4 }},
  {{ label = "strong", model = "sim-strong", sim-error = 0.005, size = 16 }},
]
k = [1, 2]
"""


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def sim3(tmp_path: Path, *, samples=3, turns=12, delay=0.0, parallel=6) -> Path:
    return write(tmp_path, SIM3.format(samples=samples, turns=turns, delay=delay, parallel=parallel))


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def sweep_turns(db: Path) -> dict[str, list[tuple]]:
    """{run name: its turns (sample, turn, answer, reply, correct, update)} of the store's one sweep."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT s.sweep_run, t.sample, t.turn, t.model_answer, t.raw_reply, t.correct, "
                            "t.step_correct FROM turns t JOIN sessions s ON s.id = t.session_id "
                            "ORDER BY s.sweep_run, t.sample, t.turn").fetchall()
    out: dict[str, list[tuple]] = {}
    for name, *rest in rows:
        out.setdefault(name, []).append(tuple(rest))
    return out


def sweep_id_of(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT id FROM sweeps").fetchone()[0]


# ---------------------------------------------------------------------------- the file


def test_product_minus_exclude_through_the_run_flags_parser(tmp_path):
    spec = parse_spec({
        "base": {"samples": 2, "turns": 5, "inject-at": ["3:7"], "heal": True},
        "axes": {"model": [{"label": "a", "provider": "sim", "sim-error": 0.1},
                           {"label": "b", "provider": "openai", "model": "gpt-x",
                            "base_url": ["http://h1:8000/v1", "http://h2:8000/v1"], "enable-thinking": False}],
                 "mode": ["direct", "cot"], "window": [4, 8]},
        "exclude": [{"model": "b", "mode": "cot"}],
    })
    names = [r.name for r in spec.runs]
    assert names == ["a/direct/4", "a/direct/8", "a/cot/4", "a/cot/8", "b/direct/4", "b/direct/8"]
    a = spec.runs[2].config
    assert (a.provider, a.sim_base_error, a.mode, a.window, a.samples, a.turns, a.heal) == ("sim", 0.1, "cot", 4, 2, 5, True)
    assert [(i.turn, i.offset) for i in a.inject_at] == [(3, 7)]
    b = spec.runs[4].config
    # a list of base URLs is the flag repeated: the run flag's own rule decides (today the last one wins)
    assert (b.provider, b.model, b.base_url, b.enable_thinking) == ("openai", "gpt-x", "http://h1:8000/v1", False)
    assert b.endpoints == ("http://h1:8000/v1", "http://h2:8000/v1")       # one model on two servers


@pytest.mark.parametrize("data, says", [
    ({"base": {"no-such-flag": 1}, "axes": {"k": [1]}}, "no-such-flag"),
    ({"axes": {"mode": ["direct", "sideways"]}}, "sideways"),
    ({"axes": {"k": []}}, "non-empty list"),
    ({"axes": {"k": [1]}, "exclude": [{"model": "x"}]}, "not an axis"),
    ({"axes": {"k": [1]}, "exclude": [{"k": 1}]}, "nothing to run"),
    ({"axes": {"k": [1]}, "limits": {"openai": {"rph": 3}}}, "rpm and tpm"),
    ({"axes": {"k": [1]}, "colour": "red"}, "unknown key"),
])
def test_bad_files_are_one_line(data, says):
    with pytest.raises(ConfigError) as info:
        parse_spec(data)
    assert says in str(info.value) and "\n" not in str(info.value)


def test_bad_file_on_the_command_line_is_one_line(tmp_path, capsys):
    path = write(tmp_path, "[axes]\nk = [1, 2\n")
    code, out, err = run_cli(capsys, "sweep", path, "--headless", "--db", tmp_path / "x.db")
    assert code == 2 and "not valid TOML" in err and "Traceback" not in err
    assert not (tmp_path / "x.db").exists() or "sweeps" not in open_database(tmp_path / "x.db").table_names()


def test_every_model_sees_the_same_keys(tmp_path, capsys):
    code, _, err = run_cli(capsys, "sweep", sim3(tmp_path), "--headless", "--db", tmp_path / "a.db")
    assert code == 0, err
    with sqlite3.connect(tmp_path / "a.db") as conn:
        keys = conn.execute("SELECT s.k, s.model, json_group_array(p.keys_json) FROM sessions s JOIN samples p ON "
                            "p.session_id = s.id GROUP BY s.id ORDER BY s.k, s.model").fetchall()
    by_k: dict[int, set[str]] = {}
    for k, _model, samples in keys:
        by_k.setdefault(k, set()).add(samples)
    assert sorted(by_k) == [1, 2] and all(len(v) == 1 for v in by_k.values())   # one task per K
    assert by_k[1] != by_k[2]


# ---------------------------------------------------------------------------- running


def test_ctrl_c_then_resume_gives_the_uninterrupted_sweeps_turns(tmp_path, capsys):
    path = sim3(tmp_path, samples=3, turns=40, delay=0.004, parallel=2)
    full = tmp_path / "full.db"
    code, _, err = run_cli(capsys, "sweep", path, "--headless", "--db", full)
    assert code == 0, err

    cut = tmp_path / "cut.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "160"}
    process = subprocess.Popen([sys.executable, "-m", "lhe_tui", "sweep", str(path), "--headless", "--db", str(cut)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.2)
            try:
                with sqlite3.connect(cut) as conn:
                    n = conn.execute("SELECT COUNT(*) FROM turns").fetchone()[0]
            except sqlite3.Error:
                continue
            if n >= 60:
                break
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert "Traceback" not in err and "resume swp-" in err
    interrupted = sweep_turns(cut)
    assert 0 < sum(len(v) for v in interrupted.values()) < 6 * 120          # stopped part-way
    assert len(interrupted) < 6                                              # some runs never started
    with sqlite3.connect(cut) as conn:
        statuses = {s for (s,) in conn.execute("SELECT status FROM sessions")}
    assert "interrupted" in statuses

    code, out, err = run_cli(capsys, "resume", sweep_id_of(cut), "--headless", "--db", cut)
    assert code == 0, err
    assert sweep_turns(cut) == sweep_turns(full)
    with sqlite3.connect(cut) as conn:
        assert {s for (s,) in conn.execute("SELECT status FROM sessions")} == {"finished"}
        assert conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 6
    code, _, err = run_cli(capsys, "resume", sweep_id_of(cut), "--headless", "--db", cut)
    assert code == 0 and "finished" in err


def test_a_failing_run_leaves_the_others_finished(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-real")
    path = write(tmp_path, """
[base]
samples = 2
turns = 6
sim-delay = 0
retries = 0
[axes]
model = [
  { label = "dead", provider = "openai", model = "m", base_url = "http://127.0.0.1:9/v1" },
  { label = "sim-a", provider = "sim", model = "sim-a" },
  { label = "sim-b", provider = "sim", model = "sim-b" },
]
""")
    db = tmp_path / "f.db"
    code, out, err = run_cli(capsys, "sweep", path, "--headless", "--db", db, "--parallel", "3")
    assert code == 1 and "run dead failed" in err and "Traceback" not in err
    with sqlite3.connect(db) as conn:
        rows = dict(conn.execute("SELECT sweep_run, status FROM sessions").fetchall())
    assert rows == {"dead": "failed", "sim-a": "finished", "sim-b": "finished"}
    assert {len(v) for name, v in sweep_turns(db).items()} == {12}


def test_one_budget_for_the_whole_sweep(tmp_path, capsys):
    prices = write(tmp_path, "[models.sim-a]\ninput = 10.0\noutput = 10.0\n[models.sim-b]\ninput = 20.0\n"
                             "output = 20.0\n", "prices.toml")
    path = write(tmp_path, """
[base]
samples = 2
turns = 30
sim-delay = 0
[axes]
model = [{ label = "a", model = "sim-a" }, { label = "b", model = "sim-b" }]
""")
    db = tmp_path / "b.db"
    code, _, err = run_cli(capsys, "--prices", prices, "sweep", path, "--headless", "--db", db, "--max-cost", "0.1",
                           "--parallel", "2")
    assert code == 130 and "budget of $0.1000 reached" in err and "resume swp-" in err

    def spent() -> float:
        with sqlite3.connect(db) as conn:
            rows = conn.execute("SELECT s.model, SUM(t.tokens_in), SUM(t.tokens_out) FROM turns t JOIN sessions s "
                                "ON s.id = t.session_id GROUP BY s.model").fetchall()
        rate = {"sim-a": 10.0, "sim-b": 20.0}
        return sum((i + o) * rate[m] / 1e6 for m, i, o in rows)

    first = spent()
    # each run alone would have spent up to $0.10: together they stay within the one budget
    assert 0.05 < first <= 0.1
    with sqlite3.connect(db) as conn:
        assert {s for (s,) in conn.execute("SELECT status FROM sessions")} == {"interrupted"}
    code, _, err = run_cli(capsys, "--prices", prices, "resume", sweep_id_of(db), "--headless", "--db", db,
                           "--max-cost", "100")
    assert code == 0, err
    assert {len(v) for v in sweep_turns(db).values()} == {60}


def test_runs_of_one_account_share_one_rate_limiter(tmp_path):
    path = write(tmp_path, """
[base]
samples = 1
turns = 2
[axes]
model = [{ label = "a", model = "sim-a" }, { label = "b", model = "sim-b" }]
[limits.sim]
rpm = 600
""")
    plan = plan_sweep(load_spec(path))
    db = open_database(tmp_path / "r.db")
    engine = SweepEngine(plan, db)
    limiters = []
    for work in engine.work:
        prepared = engine._prepare(work)
        limiters.append(prepared.runner.limiter)
        prepared.writer._release(forget=True)
    assert limiters[0] is limiters[1] is engine.limiters["sim"]
    assert limiters[0].requests.capacity == 600


# ---------------------------------------------------------------------------- estimate


def test_estimate_rows_and_total(tmp_path, capsys):
    prices = write(tmp_path, "[models.gpt-x]\ninput = 2.0\noutput = 8.0\n", "prices.toml")
    path = write(tmp_path, """
[base]
samples = 2
turns = 50
[axes]
model = [{ label = "x", provider = "openai", model = "gpt-x" }]
mode = ["direct", "cot"]
[limits.openai]
rpm = 60
""")
    plan = plan_sweep(load_spec(path))
    estimate = estimate_sweep(plan, load_prices_from(prices))
    direct = forecast(RunConfig(provider="openai", model="gpt-x", samples=2, turns=50, rpm=60),
                      prices=load_prices_from(prices))
    cot = forecast(RunConfig(provider="openai", model="gpt-x", samples=2, turns=50, mode="cot", rpm=60),
                   prices=load_prices_from(prices))
    assert estimate.input_tokens == direct.input_tokens + cot.input_tokens
    assert estimate.cost(False) == pytest.approx(direct.cost_uncached + cot.cost_uncached)
    # 200 requests through one 60-a-minute bucket that starts full: (200 - 60) s; each run alone: 40 s
    assert estimate.seconds() == pytest.approx(140.0)
    assert [r.seconds for r in estimate.rows] == [pytest.approx(40.0)] * 2
    code, out, err = run_cli(capsys, "--prices", prices, "sweep", path, "--estimate", "--db", tmp_path / "e.db")
    assert code == 0 and "total" in out and "2 min" in out and "x/direct" in out
    assert not (tmp_path / "e.db").exists()


def load_prices_from(path: Path):
    os.environ["LHE_TUI_PRICES"] = str(path)
    try:
        return load_prices()
    finally:
        del os.environ["LHE_TUI_PRICES"]


def test_sessions_lists_the_sweep(tmp_path, capsys):
    db = tmp_path / "l.db"
    code, _, err = run_cli(capsys, "sweep", sim3(tmp_path, samples=1, turns=3), "--headless", "--db", db)
    assert code == 0, err
    code, out, _ = run_cli(capsys, "sessions", "--db", db)
    assert code == 0 and "sweep of 6 runs" in out and "run weak/1" in out and sweep_id_of(db) in out


def test_a_missing_api_key_is_one_line_before_anything_is_stored(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    path = write(tmp_path, '[axes]\nmodel = [{ label = "g", provider = "openai", model = "gpt-x" }]\n')
    db = tmp_path / "k.db"
    code, _, err = run_cli(capsys, "sweep", path, "--headless", "--db", db)
    assert code == 2 and "sweep run g: OPENAI_API_KEY is not set" in err
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM sweeps").fetchone()[0] == 0


def test_live_task_accuracy_and_horizon_match_their_definition():
    """The board's running numbers against the definition: at turn t, of the samples that played t, the share
    with no wrong answer up to t; H_s the first turn below s."""
    import random

    from lhe_tui.sweep.progress import RunProgress

    def by_definition(p: RunProgress) -> list[float]:
        out = []
        for t in range(1, max(p.last_turn.values(), default=0) + 1):
            counted = [s for s, last in p.last_turn.items() if last >= t]
            out.append(sum(1 for s in counted if p.first_error.get(s, t + 1) > t) / len(counted))
        return out

    rng = random.Random(1)
    for _ in range(200):
        p = RunProgress("x", 0, 0, 0)
        for sample in range(rng.randint(1, 8)):
            for turn in range(1, rng.randint(2, 30)):
                p.add_turn(sample, turn, rng.random() > 0.1, True)
        curve = by_definition(p)
        assert p.task_accuracy() == curve
        below = next((t for t, v in enumerate(curve, 1) if v < 0.5), None)
        assert p.horizon() == ((below, True) if below else (len(curve), False))
    p = RunProgress("y", 0, 0, 0)
    for turn, ok in ((1, True), (2, False), (3, True)):
        p.add_turn(0, turn, ok, ok)
    p.add_turn(1, 1, True, True)
    assert p.task_accuracy() == [1.0, 0.0, 0.0] and p.horizon() == (2, True)
    assert p.turn_accuracy() == [1.0, 0.0, 1.0]
