"""--paper: the paper's data, settings and protocol in one flag, printed once and stored with the session;
--data paper alone; --paper-settings as the sampling part only."""

import json
import re
import sqlite3

import pytest

from lhe_tui.runs.arms import arm_configs
from lhe_tui.cli.args import build_parser
from lhe_tui.runs.run_flags import config_from_args
from lhe_tui.cli.main import main
from lhe_tui.core.config import RunConfig
from lhe_tui.common.errors import LheError
from lhe_tui.runs.session import build_task
from lhe_tui.task.prompts import parse_dictionary
from lhe_tui.testing.fake_llm_server import FakeLLMServer
from tests.test_paper_data import GOLD_ROWS
from tests.test_providers import summing_responder

URL = "http://127.0.0.1:8000/v1"


def config(*argv):
    return config_from_args(build_parser().parse_args(["run", *argv]))


def stored_config(db):
    with sqlite3.connect(db) as conn:
        (text,) = conn.execute("SELECT config_json FROM sessions").fetchone()
    return json.loads(text)


def test_done_when_paper_run_sends_100_samples_of_the_reference_data(capsys, monkeypatch, tmp_path):
    """`run --paper --provider openai --base-url URL --model M --mode direct --turns 20`, through the openai
    SDK to the fake server: 100 samples of the reference generator's rows, the paper's sampling, the
    thinking switch off; what --paper set is printed once and stored."""
    monkeypatch.setenv("LHE_TUI_OPENAI_CLIENT", "sdk")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    db = str(tmp_path / "lhe.db")
    with FakeLLMServer(summing_responder()) as server:
        code = main(["run", "--headless", "--paper", "--provider", "openai", "--base-url", server.openai_base_url,
                     "--model", "M", "--mode", "direct", "--turns", "20", "--db", db])
        bodies = [r.body for r in server.requests]
    out, err = capsys.readouterr()
    assert code == 0, err
    assert len(bodies) == 100 * 20
    for body in bodies:
        assert {k: v for k, v in body.items() if k != "messages"} == {
            "model": "M", "stream": True, "stream_options": {"include_usage": True}, "temperature": 0.6,
            "top_p": 0.95, "max_tokens": 10_000, "chat_template_kwargs": {"enable_thinking": False}}
    dictionary = parse_dictionary(bodies[0]["messages"][0]["content"])
    assert len(dictionary) == 100
    assert (dictionary["drive"], dictionary["alone"], dictionary["adult"], dictionary["block"]) == (-45, 46, 84, -82)
    # each sample's keys, as the 20th turn's request shows them: the reference's rows 0..99
    last_turns = [[m["content"] for m in body["messages"] if m["role"] == "user"] for body in bodies
                  if sum(m["role"] == "user" for m in body["messages"]) == 20]
    assert len(last_turns) == 100
    for row, (first_six, _, _) in GOLD_ROWS.items():
        assert sum(tuple(keys[:6]) == first_six for keys in last_turns) >= 1, f"row {row} was not sent"
    said = [line for line in err.splitlines() if "--paper set:" in line]
    assert said == ["lhe-tui: --paper set: samples=100, data=paper (the reference generator's rows 0..99), seed=42, "
                    "temperature=0.6, top_p=0.95, max_tokens=10,000, chat_template_kwargs.enable_thinking=false, "
                    "protocol=paper"]
    stored = stored_config(db)
    assert (stored["samples"], stored["data"], stored["seed"], stored["paper"]) == (100, "paper", 42, "paper")
    assert stored["paper_choices"] == {"samples": 100, "data": "paper", "seed": 42, "temperature": 0.6, "top_p": 0.95,
                                       "max_tokens": 10_000, "enable_thinking": False, "protocol": "paper"}
    with sqlite3.connect(db) as conn:
        keys = {n: json.loads(k) for n, k in conn.execute("SELECT sample, keys_json FROM samples")}
    assert len(keys) == 100 and all(keys[row][:6] == list(GOLD_ROWS[row][0]) for row in GOLD_ROWS)
    rebuilt = build_task(RunConfig.from_dict(stored))     # what resume and fork rebuild
    assert [list(s.keys) for s in rebuilt.samples] == [keys[i] for i in range(100)]


@pytest.mark.parametrize("argv, expected", [
    (["--provider", "openai", "--model", "m", "--base-url", URL, "--mode", "cot"],
     {"enable_thinking": False, "max_tokens": 10_000, "temperature": 0.6, "top_p": 0.95, "reasoning_effort": "medium"}),
    (["--provider", "openai", "--model", "m", "--base-url", URL, "--mode", "thinking"],
     {"enable_thinking": True, "max_tokens": None, "temperature": 0.6, "top_p": 0.95, "reasoning_effort": "medium"}),
    (["--provider", "openai", "--model", "o3", "--mode", "thinking"],            # the OpenAI API: no template kwargs
     {"enable_thinking": None, "max_tokens": None, "reasoning_effort": "high"}),
    (["--provider", "openai", "--model", "m", "--base-url", "https://api.openai.com/v1"],
     {"enable_thinking": None, "max_tokens": 10_000}),
    (["--provider", "anthropic", "--model", "claude-x"],                          # temperature or top_p, not both
     {"temperature": 0.6, "top_p": None, "max_tokens": 10_000, "enable_thinking": None}),
    (["--provider", "anthropic", "--model", "claude-x", "--mode", "thinking"],   # thinking takes top_p, not temperature
     {"temperature": None, "top_p": 0.95, "max_tokens": None, "thinking_budget": 2048}),
    (["--provider", "local", "--base-url", URL], {"enable_thinking": None, "temperature": 0.6, "top_p": 0.95}),
    ([], {"samples": 100, "data": "paper", "seed": 42, "protocol": "paper", "turns": 100, "dataset_offset": 0}),
])
def test_paper_choices_follow_provider_and_mode(monkeypatch, argv, expected):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    resolved = config("--paper", *argv)
    assert {name: getattr(resolved, name) for name in expected} == expected
    assert resolved.paper == "paper"
    assert {n: getattr(resolved, n) for n in resolved.paper_choices} == resolved.paper_choices


def test_flags_given_beside_paper_win_and_are_not_reported_as_its_choices(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    given = config("--paper", "--provider", "openai", "--model", "m", "--base-url", URL, "--samples", "3",
                   "--seed", "7", "--temperature", "0", "--top-p", "1", "--max-tokens", "64", "--enable-thinking",
                   "on", "--protocol", "lenient", "--data", "generated")
    assert (given.samples, given.seed, given.temperature, given.top_p, given.max_tokens, given.enable_thinking,
            given.protocol, given.data) == (3, 7, 0.0, 1.0, 64, True, "lenient", "generated")
    assert given.paper_choices == {}
    effort = config("--paper", "--provider", "openai", "--model", "o3", "--mode", "thinking", "--reasoning-effort", "low")
    assert effort.reasoning_effort == "low" and "reasoning_effort" not in effort.paper_choices


def test_paper_with_a_dataset_file_uses_the_file(tmp_path):
    from lhe_tui.task import generate_task

    task = generate_task(1, n_samples=100, turns=3, k=1)
    dataset = tmp_path / "data.json"
    dataset.write_text(json.dumps({"dictionary": task.dictionary, "ground_truth_data": [
        {"input": list(s.keys)} for s in task.samples]}))
    resolved = config("--paper", "--dataset", str(dataset))
    assert (resolved.data, resolved.dataset, resolved.samples, resolved.turns) == ("generated", str(dataset), 100, 3)
    assert "data" not in resolved.paper_choices


def test_data_paper_alone_takes_the_rows_from_the_offset():
    resolved = config("--data", "paper", "--samples", "2", "--dataset-offset", "57", "--turns", "2", "--k", "3")
    assert resolved.paper is None and resolved.paper_choices == {}
    task = build_task(resolved)
    assert [s.keys for s in task.samples] == [GOLD_ROWS[57][0], GOLD_ROWS[58][0]]
    assert task.samples[0].turn_keys(2) == GOLD_ROWS[57][0][3:]


@pytest.mark.parametrize("argv, needle", [
    (["--data", "paper", "--dict-size", "50"], "--data paper has its own dictionary (100 words, -99..99)"),
    (["--paper", "--max-value", "9"], "drop --dict-size, --min-value and --max-value"),
    (["--data", "paper", "--dataset", "x.json"], "--data paper and --dataset are two sources of keys: give one"),
    (["--paper", "--dataset-offset", "1"], "--data paper has 100 rows (0..99); --samples 100 from row 1 goes past"),
    (["--data", "paper", "--turns", "50001"], "--data paper has 50,000 keys a row; --turns x --k asks for 50,001"),
    (["--data", "reference"], "invalid choice: 'reference'"),
    (["--dataset-offset", "3"], "--dataset-offset needs --dataset or --data paper"),
])
def test_bad_paper_data_is_one_line(capsys, tmp_path, argv, needle):
    code = main(["run", "--headless", "--db", str(tmp_path / "lhe.db"), *argv])
    out, err = capsys.readouterr()
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lhe-tui: error:") and needle in lines[0], err
    assert not (tmp_path / "lhe.db").exists() or "Traceback" not in out + err
    with pytest.raises(LheError):
        config(*argv)


def test_arms_get_the_paper_choices_of_their_own_mode_and_keep_the_task(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    base = config("--paper", "--provider", "openai", "--model", "m", "--base-url", URL, "--turns", "5")
    arms = dict(arm_configs(base, ["plain:", "think:--mode thinking", "cold:--temperature 0",
                                   "mine:--enable-thinking on --mode cot"]))
    assert (arms["plain"].enable_thinking, arms["plain"].max_tokens) == (False, 10_000)
    assert (arms["think"].enable_thinking, arms["think"].max_tokens, arms["think"].temperature) == (True, None, 0.6)
    assert "max_tokens" not in arms["think"].paper_choices and arms["think"].paper_choices["enable_thinking"] is True
    assert (arms["cold"].temperature, arms["cold"].top_p) == (0.0, 0.95)
    assert arms["mine"].enable_thinking is True
    for arm in arms.values():
        assert (arm.data, arm.samples, arm.seed) == ("paper", 100, 42)


def test_an_arms_paper_settings_over_a_plain_run():
    base = config("--provider", "anthropic", "--model", "claude-x", "--turns", "5")
    arms = dict(arm_configs(base, ["plain:", "paper:--paper-settings", "think:--paper-settings --mode thinking"]))
    assert (arms["plain"].temperature, arms["plain"].paper) == (None, None)
    assert (arms["paper"].temperature, arms["paper"].top_p, arms["paper"].max_tokens) == (0.6, None, 10_000)
    assert (arms["think"].temperature, arms["think"].top_p) == (None, 0.95)
    with pytest.raises(LheError, match=re.escape("keeps the task (dictionary and keys): --data cannot change")):
        arm_configs(base, ["plain:", "task:--data paper"])


def test_a_fork_of_a_paper_data_run_extends_its_row(capsys, tmp_path):
    db = str(tmp_path / "lhe.db")
    assert main(["run", "--headless", "--paper", "--samples", "3", "--dataset-offset", "57", "--turns", "5",
                 "--sim-delay", "0", "--db", db]) == 0
    assert main(["fork", "latest", "--turn", "3", "--sample", "1", "--turns", "9", "--headless", "--sim-delay", "0",
                 "--db", db]) == 0
    capsys.readouterr()
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT s.config_json, k.keys_json FROM sessions s JOIN samples k ON k.session_id = s.id "
                            "ORDER BY s.n_samples DESC, k.sample").fetchall()   # the parent's 3 samples, the fork's 1
    parent = [json.loads(keys) for conf, keys in rows[:3]]
    fork_config, fork_keys = json.loads(rows[3][0]), json.loads(rows[3][1])
    assert [keys[:5] for keys in parent[:2]] == [list(GOLD_ROWS[57][0][:5]), list(GOLD_ROWS[58][0][:5])]
    assert len(fork_keys) == 9 and fork_keys[:6] == list(GOLD_ROWS[58][0])   # row 58, grown past the parent's 5
    assert (fork_config["data"], fork_config["extra"]["data"], fork_config["extra"]["dataset_offset"]) == (
        "generated", "paper", 57)
    assert "data" not in fork_config["paper_choices"] and fork_config["paper_choices"]["seed"] == 42
