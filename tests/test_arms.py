"""Arms side by side over the same keys (issue 15): `run --arm`, the group in the store, `sessions`, `compare`
of a group with paired bootstrap CIs, stop and resume of a group."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from lhe_tui.runs.arms import arm_configs, parse_arms, plan_group, shared_local_server
from lhe_tui.cli.main import main
from lhe_tui.analysis.compare import paired_comparison
from lhe_tui.core.config import RunConfig
from lhe_tui.common.errors import ConfigError
from lhe_tui.metrics import paired_difference
from lhe_tui.store.database import open_database
from lhe_tui.store.queries import session_flags
from tests.store_faults import ROOT, cli

ARMS = ("--arm", "plain:", "--arm", "inj:--inject-at=20:5")
SMALL = ("--provider", "sim", "--samples", "8", "--turns", "40", "--seed", "3", "--sim-delay", "0")


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def arms_of(db):
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT id, group_id, arm, status, n_samples, turns, dictionary_json FROM sessions "
                            "ORDER BY created_at, rowid").fetchall()


@pytest.fixture(scope="module")
def group_store(tmp_path_factory):
    """One two-arm run through the real CLI in a process of its own: (db path, its stdout, its stderr)."""
    db = tmp_path_factory.mktemp("arms") / "lhe.db"
    done = cli("run", "--headless", *SMALL, *ARMS, "--db", str(db))
    assert done.returncode == 0, done.stderr
    return db, done.stdout, done.stderr


def test_two_arm_run_stores_a_group_over_the_same_keys(group_store):
    db, out, err = group_store
    rows = arms_of(db)
    assert [r[2] for r in rows] == ["plain", "inj"]
    (group,) = {r[1] for r in rows}
    assert group.startswith("grp-") and group in err
    assert all(r[3] == "finished" and r[4:6] == (8, 40) for r in rows)
    assert rows[0][6] == rows[1][6]                                  # one dictionary
    plain, inj = rows[0][0], rows[1][0]
    with sqlite3.connect(db) as conn:
        keys = [conn.execute("SELECT keys_json FROM samples WHERE session_id = ? ORDER BY sample", [s]).fetchall()
                for s in (plain, inj)]
        assert keys[0] == keys[1] and len(keys[0]) == 8              # the same keys, sample by sample
        injected = {s: conn.execute("SELECT sample, turn FROM turns WHERE session_id = ? AND injected = 1",
                                    [s]).fetchall() for s in (plain, inj)}
        assert injected[plain] == []
        assert sorted(injected[inj]) == [(i, 20) for i in range(8)]
        assert conn.execute("SELECT COUNT(*) FROM turns").fetchone()[0] == 2 * 8 * 40
        # Up to the injection the sim model answers the same keys the same way in both arms.
        before = conn.execute("SELECT COUNT(*) FROM turns a JOIN turns b ON a.sample = b.sample AND a.turn = b.turn "
                              "WHERE a.session_id = ? AND b.session_id = ? AND a.turn <= 20 AND "
                              "a.model_answer IS NOT b.model_answer", [plain, inj]).fetchone()[0]
        assert before == 0
    # each arm's summary, then the paired difference with its CI
    assert out.count("arm plain") >= 1 and out.count("arm inj") >= 1
    assert "paired difference inj - plain over the same 8 samples" in out
    assert "95% paired bootstrap CI" in out and "Traceback" not in err


def test_sessions_lists_the_arms_under_their_group(group_store, capsys):
    db, _, _ = group_store
    rows = arms_of(db)
    code, out, _ = run_cli(capsys, "sessions", "--db", str(db))
    assert code == 0
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if rows[0][1] in line)
    assert "group of 2 arms: plain, inj" in lines[at]
    assert rows[0][0] in lines[at + 1] and "arm plain" in lines[at + 1]
    assert rows[1][0] in lines[at + 2] and "arm inj" in lines[at + 2]


def test_compare_of_a_group_prints_the_paired_difference(group_store, capsys):
    db, _, _ = group_store
    rows = arms_of(db)
    group = rows[0][1]
    code, out, err = run_cli(capsys, "compare", group, "--at", "20,30,40", "--db", str(db))
    assert code == 0, err
    assert "paired difference inj - plain" in out
    # The printed difference at turn 40 is the one the metrics compute from the stored flags.
    store = open_database(db, create=False, write=False)
    a, b = session_flags(store, rows[0][0]), session_flags(store, rows[1][0])
    (d40,) = paired_difference(a.update, b.update, "turn", [40])
    line = next(line for line in out.splitlines() if line.strip().startswith("│   40 "))
    assert f"{100 * d40.diff:+.1f} pp" in line
    assert f"[{100 * d40.low:+.1f}, {100 * d40.high:+.1f}]" in line
    # two sessions of the group compare paired too; --arms picks and orders the arms
    code, out2, _ = run_cli(capsys, "compare", rows[1][0], rows[0][0], "--at", "40", "--db", str(db))
    assert code == 0 and "paired difference plain - inj" in out2
    code, out3, _ = run_cli(capsys, "compare", group, "--arms", "inj,plain", "--at", "40", "--db", str(db))
    assert code == 0 and "paired difference plain - inj" in out3
    again = paired_comparison(store, rows[0][0], rows[1][0], [40])
    assert again.turn[0] == d40                                    # seeded: the same interval every time


@pytest.mark.parametrize("argv, message", [
    (["--arm", "solo:"], "at least two arms"),
    (["--arm", "a:", "--arm", "a:--heal"], "two arms are named 'a'"),
    (["--arm", "a:", "--arm", "b:--seed=9"], "--seed cannot change"),
    (["--arm", "a:", "--arm", "b:--samples=2"], "--samples cannot change"),
    (["--arm", "a:", "--arm", "b:--no-such-flag"], "--arm b: unrecognized arguments"),
    (["--arm", "a:", "--arm", "nocolon"], "NAME:FLAGS"),
    (["--arm", "a:", "--arm", "b:--inject-at=x"], "--arm b"),
    (["--arm", "a:", "--arm", "b:--heal", "--arm", "c:--window=0"], "--arm c"),
])
def test_bad_arms_are_one_line_and_store_nothing(capsys, tmp_path, argv, message):
    db = tmp_path / "store" / "lhe.db"
    code, out, err = run_cli(capsys, "run", "--headless", *SMALL, *argv, "--db", str(db))
    assert code != 0
    assert err.count("\n") == 1 and err.startswith("lhe-tui: error: ") and message in err, err
    assert not db.exists()


def test_bad_arm_in_a_real_process_has_no_traceback(tmp_path):
    db = tmp_path / "lhe.db"
    done = cli("run", "--headless", *SMALL, "--arm", "a:", "--arm", "b:--k=2", "--db", str(db))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["lhe-tui: error: --arm b keeps the task (dictionary and keys): "
                                                "--k cannot change"]
    assert not db.exists()


def test_compare_refuses_what_it_cannot_pair(group_store, capsys, tmp_path):
    db, _, _ = group_store
    group = arms_of(db)[0][1]
    code, _, err = run_cli(capsys, "compare", group, "--arms", "plain,nope", "--db", str(db))
    assert code != 0 and "no arm 'nope'" in err and err.count("\n") == 1
    code, _, err = run_cli(capsys, "compare", group, "--arms", "plain", "--db", str(db))
    assert code != 0 and "two or more distinct arm names" in err


def test_plan_shares_one_task_and_names_each_arm():
    base = RunConfig(samples=3, turns=10, seed=4)
    plan = plan_group(base, ["plain:", "healed:--heal", "w:--window=3 --mode=cot"])
    assert plan.names == ["plain", "healed", "w"]
    assert plan.group_id.startswith("grp-")
    assert len({arm.session_id for arm in plan.arms}) == 3
    assert all(arm.lineage.group_id == plan.group_id and arm.lineage.arm == arm.name for arm in plan.arms)
    configs = {arm.name: arm.config for arm in plan.arms}
    assert configs["healed"].heal and not configs["plain"].heal
    assert configs["w"].window == 3 and configs["w"].mode == "cot" and configs["plain"].mode == "direct"
    assert all(c.seed == 4 and c.samples == 3 and c.turns == 10 for c in configs.values())
    assert [name for name, _ in arm_configs(base, parse_arms(["a:", "b:--heal"]))] == ["a", "b"]


def test_local_arms_needing_two_servers_are_refused():
    base = RunConfig(provider="local", samples=1, turns=2)
    configs = [c for _, c in arm_configs(base, ["a:--model-path=/x/a.gguf", "b:--model-path=/x/b.gguf"])]
    with pytest.raises(ConfigError, match="share one local model server"):
        shared_local_server(configs)
    # arms that reach their servers by --base-url need no server of ours
    remote = [c for _, c in arm_configs(base, ["a:--base-url=http://127.0.0.1:1/v1",
                                               "b:--base-url=http://127.0.0.1:2/v1"])]
    server, _, providers = shared_local_server(remote)
    assert server is None and providers == [None, None]


def test_resume_of_a_group_continues_its_unfinished_arms(capsys, tmp_path):
    db = str(tmp_path / "lhe.db")
    code, _, err = run_cli(capsys, "run", "--headless", "--provider", "sim", "--samples", "3", "--turns", "30",
                           "--sim-delay", "0", "--arm", "cut:--max-tokens-total=8000", "--arm", "full:", "--db", db)
    assert code == 130, err                                       # the budget stopped one arm
    (cut, group, _, status, *_), (full, *_rest) = arms_of(db)
    assert status == "interrupted" and _rest[2] == "finished"
    with sqlite3.connect(db) as conn:
        count = lambda s: conn.execute("SELECT COUNT(*) FROM turns WHERE session_id = ?", [s]).fetchone()[0]  # noqa
        kept, full_turns = count(cut), count(full)
    assert 0 < kept < 90 and full_turns == 90
    # (without --headless it opens the arms view: tests/ui/test_arms_resume.py)
    code, out, err = run_cli(capsys, "resume", group, "--headless", "--max-tokens-total", "10000000", "--db", db)
    assert code == 0, err
    assert "arms cut over the same 3 samples" in err               # only the unfinished arm ran
    assert "paired difference full - cut" in out                   # the comparison covers the whole group
    rows = arms_of(db)
    assert [r[3] for r in rows] == ["finished", "finished"] and {r[1] for r in rows} == {group}
    with sqlite3.connect(db) as conn:
        assert count(cut) == 90 and count(full) == 90
        # the resumed arm kept its turns and answered as an uninterrupted run of the same config would
        same = conn.execute("SELECT COUNT(*) FROM turns a JOIN turns b ON a.sample = b.sample AND a.turn = b.turn "
                            "WHERE a.session_id = ? AND b.session_id = ? AND a.model_answer IS b.model_answer",
                            [cut, full]).fetchone()[0]
        assert same == 90
    code, _, err = run_cli(capsys, "resume", group, "--headless", "--db", db)
    assert code != 0 and "nothing to resume" in err


def test_ctrl_c_stops_every_arm_and_keeps_their_turns(tmp_path):
    db = tmp_path / "lhe.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "120"}
    process = subprocess.Popen([sys.executable, "-m", "lhe_tui", "run", "--headless", "--provider", "sim",
                                "--samples", "2", "--turns", "400", "--sim-delay", "0.01", *ARMS, "--db", str(db)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.3)
            if db.exists():
                try:
                    with sqlite3.connect(db) as conn:
                        counts = conn.execute("SELECT session_id, COUNT(*) FROM turns GROUP BY session_id").fetchall()
                except sqlite3.Error:
                    continue
                if len(counts) == 2 and min(c for _, c in counts) >= 4:
                    break
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert "Traceback" not in err
    rows = arms_of(db)
    assert [r[3] for r in rows] == ["interrupted", "interrupted"]
    with sqlite3.connect(db) as conn:
        for session_id, *_ in rows:
            n = conn.execute("SELECT COUNT(*) FROM turns WHERE session_id = ?", [session_id]).fetchone()[0]
            assert 4 <= n < 800
            samples = conn.execute("SELECT status FROM samples WHERE session_id = ?", [session_id]).fetchall()
            assert {s for (s,) in samples} == {"stopped"}
    assert json.loads(rows[0][6]) == json.loads(rows[1][6])


def test_local_arms_share_one_server_and_its_request_slot(tmp_path, monkeypatch):
    """Resolved only (nothing started): every local arm talks to the one server, through one request slot."""
    import lhe_tui.providers.local_server as local_server

    monkeypatch.setattr(local_server, "check_server_installed", lambda: None)
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF")
    base = RunConfig(provider="local", model_path=str(gguf), samples=2, turns=3)
    configs = [c for _, c in arm_configs(base, ["plain:", "healed:--heal", "sim:--provider=sim"])]
    server, stored, providers = shared_local_server(configs)
    assert server is not None and server.model_path == gguf.resolve()
    assert providers[2] is None and stored[2].provider == "sim"      # the sim arm gets its usual provider
    assert providers[0].base_url == providers[1].base_url == server.base_url
    assert providers[0].slot is providers[1].slot
    assert stored[0].model == stored[1].model == server.model_name and stored[1].heal


def test_arm_specs_round_trip_and_quoted_flags():
    specs = parse_arms(["a:", "b:--extra-body='{\"top_k\": 20}' --mode cot"])
    assert specs[1].flags == ('--extra-body={"top_k": 20}', "--mode", "cot")
    assert specs[1].overrides == {"extra_body": {"top_k": 20}, "mode": "cot"}
    assert parse_arms([s.text for s in specs]) == specs
    ((_, a), (_, b)) = arm_configs(RunConfig(samples=1, turns=2), specs)
    assert a.extra_body == {} and b.extra_body == {"top_k": 20} and b.mode == "cot"
