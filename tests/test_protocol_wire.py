"""The protocols and prompt templates end to end: `lhe-tui run --headless` against the scripted
OpenAI-compatible server, checking what each request carries and what the store keeps."""

import json
import sqlite3

import pytest

from lhe_tui.cli.main import main
from lhe_tui.core.config import RunConfig
from lhe_tui.runs.session import build_task
from lhe_tui.task.protocol import NO_ANSWER
from lhe_tui.task.prompts import system_prompt
from lhe_tui.testing.fake_llm_server import FakeLLMServer, ScriptedReply

# The reply to turn t (t = the number of user messages in the request).
SCRIPT = {
    1: "Adding up: <answer>5</answer>, or was it <answer>9</answer>?",   # paper: 5 (first); lenient: 9 (last)
    2: "I am not sure any more.",                                          # no tag: a format miss
    3: "<answer>1,234</answer>",                                           # paper: invalid; lenient: 1234
    4: "<ANSWER>7</ANSWER>",                                               # paper: no tag; lenient: 7
    5: "",                                                                  # empty
    6: "<answer>+12</answer>",
}


def responder(body):
    turn = sum(1 for m in body["messages"] if m["role"] == "user")
    return ScriptedReply(text=SCRIPT.get(turn, "<answer>0</answer>"))


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with FakeLLMServer(responder) as srv:
        yield srv


def run(server, tmp_path, capsys, *extra):
    db = tmp_path / "lhe.db"
    code = main(["run", "--headless", "--provider", "openai", "--model", "m", "--base-url", server.openai_base_url,
                 "--turns", "7", "--samples", "1", "--seed", "3", "--concurrency", "1", "--db", str(db), *extra])
    out, err = capsys.readouterr()
    assert code == 0, err
    conn = sqlite3.connect(db)
    sid, config_json = conn.execute("SELECT id, config_json FROM sessions ORDER BY rowid DESC").fetchone()
    turns = conn.execute("SELECT turn, answer_status, model_answer, raw_reply FROM turns WHERE session_id = ? "
                         "ORDER BY turn", [sid]).fetchall()
    config = json.loads(config_json)
    return [r.body["messages"] for r in server.requests if r.body], turns, config, out


def assistant_messages(messages):
    return [m["content"] for m in messages if m["role"] == "assistant"]


def test_paper_protocol_first_tag_compacted_history_and_placeholders(server, tmp_path, capsys):
    requests, turns, config, out = run(server, tmp_path, capsys, "--mode", "direct")
    assert config["protocol"] == "paper" and "protocol paper" in out
    assert [(t, status, answer) for t, status, answer, _ in turns] == [
        (1, "ok", 5), (2, "format", None), (3, "invalid", None), (4, "format", None), (5, "format", None),
        (6, "ok", 12), (7, "ok", 0)]
    assert turns[0][3] == SCRIPT[1]                          # the raw reply is stored as it came
    # What the NEXT request carries for each finished turn, exactly:
    assert assistant_messages(requests[-1]) == [
        "<answer>5</answer>",            # only the first tag, whatever else the reply said
        NO_ANSWER,                       # a reply with no tag: the placeholder
        "<answer>1,234</answer>",        # an invalid answer is shown as the model wrote it (stripped)
        NO_ANSWER,                       # <ANSWER> is not a tag under paper rules
        "Empty reply.",
        "<answer>+12</answer>",
    ]
    # turn 5's empty reply was asked for again 3 times (--empty-retries 3): the same request each time
    assert sum(1 for messages in requests if len(messages) == 2 + 2 * 4) == 4
    requests = [m for i, m in enumerate(requests) if i == 0 or m != requests[i - 1]]
    for n, messages in enumerate(requests):  # each request is the one before plus the finished turn
        assert len(messages) == 2 + 2 * n
        if n:
            assert messages[:len(requests[n - 1])] == requests[n - 1]


def test_paper_protocol_cot_keeps_the_reply_and_healed_history_replaces_the_first_tag(server, tmp_path, capsys):
    requests, turns, _, _ = run(server, tmp_path, capsys, "--mode", "cot", "--heal")
    task = build_task(RunConfig(turns=7, seed=3))
    gold = task.samples[0].gold_sums()
    shown = assistant_messages(requests[-1])
    assert shown[0] == f"Adding up: <answer>{gold[0]}</answer>, or was it <answer>9</answer>?"
    assert shown[1] == f"<answer>{gold[1]}</answer>"   # no tag: the healed value alone


def test_lenient_protocol_keeps_the_old_rules(server, tmp_path, capsys):
    requests, turns, config, _ = run(server, tmp_path, capsys, "--protocol", "lenient", "--prompt", "lhe-v1")
    assert config["protocol"] == "lenient"
    assert [(status, answer) for _, status, answer, _ in turns][:6] == [
        ("ok", 9), ("format", None), ("ok", 1234), ("ok", 7), ("format", None), ("ok", 12)]
    assert assistant_messages(requests[-1]) == [SCRIPT[1], SCRIPT[2], SCRIPT[3], SCRIPT[4], "(no reply)", SCRIPT[6]]


def test_prompt_file_renders_the_exact_system_and_user_messages(server, tmp_path, capsys):
    template = tmp_path / "mine.toml"
    template.write_text("""system = '''Sum the values.
Table:
{dictionary}
JSON: {dictionary_json}
{{literal}} K={k}'''
turn = 'keys: {keys}'
[cot]
turn = '''Think, then answer in tags.
Next: {keys}'''
""")
    task = build_task(RunConfig(turns=7, seed=3))
    keys = task.samples[0].keys
    requests, _, config, _ = run(server, tmp_path, capsys, "--prompt", str(template), "--mode", "cot")
    first = requests[0]
    assert first[0] == {"role": "system", "content": f"Sum the values.\nTable:\n{task.dictionary!r}\n"
                                                     f"JSON: {json.dumps(task.dictionary)}\n{{literal}} K=1"}
    assert first[1] == {"role": "user", "content": f"Think, then answer in tags.\nNext: {keys[0]}"}
    assert [m["content"] for m in requests[-1] if m["role"] == "user"] == \
        [f"Think, then answer in tags.\nNext: {key}" for key in keys]
    assert config["prompt"] == str(template) and config["prompt_text"] == template.read_text()


def test_named_prompts_lhe_v1_and_default(server, tmp_path, capsys):
    task = build_task(RunConfig(turns=7, seed=3))
    requests, _, _, _ = run(server, tmp_path, capsys, "--prompt", "lhe-v1", "--k", "1")
    assert requests[0][0]["content"] == system_prompt(task.dictionary, 1, "direct")
    assert requests[0][1]["content"] == task.samples[0].keys[0]
    server.requests.clear()
    requests, _, config, _ = run(server, tmp_path, capsys)
    system = requests[0][0]["content"]
    assert config["prompt"] == "default" and repr(task.dictionary) in system.split("\n")


def test_step_accuracy_after_a_missing_and_after_a_wrong_answer_end_to_end(monkeypatch, tmp_path, capsys):
    """The scripted model: off by one, no answer, carries its own (wrong) total over the missed keys, jumps
    to the gold sum, then carries that. Step accuracy credits the carrying and blames the jump; it never
    builds on the gold sum of the missed turn, which the model did not state (the rule before issue 13)."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    task = build_task(RunConfig(provider="openai", model="m", turns=5, samples=1, seed=3))
    v = [sum(task.samples[0].turn_values(t)) for t in range(1, 6)]
    replies = {1: f"<answer>{v[0] + 1}</answer>", 2: "no idea",
               3: f"<answer>{v[0] + 1 + v[1] + v[2]}</answer>",
               4: f"<answer>{sum(v[:4])}</answer>",
               5: f"<answer>{sum(v[:5])}</answer>"}

    def scripted(body):
        return ScriptedReply(text=replies[sum(1 for m in body["messages"] if m["role"] == "user")])

    db = tmp_path / "lhe.db"
    with FakeLLMServer(scripted) as srv:
        assert main(["run", "--headless", "--provider", "openai", "--model", "m", "--base-url", srv.openai_base_url,
                     "--turns", "5", "--samples", "1", "--seed", "3", "--db", str(db)]) == 0, capsys.readouterr().err
        last = srv.requests[-1].body["messages"]
    assert [m["content"] for m in last if m["role"] == "assistant"][1] == NO_ANSWER
    rows = sqlite3.connect(db).execute("SELECT correct, step_correct, seen_previous, expected_step FROM turns "
                                       "ORDER BY turn").fetchall()
    assert [r[0] for r in rows] == [0, 0, 0, 1, 1]                      # against gold
    assert [r[1] for r in rows] == [0, 0, 1, 0, 1]                      # against its own history
    assert [r[2] for r in rows] == [0, v[0] + 1, v[0] + 1 + v[1], v[0] + 1 + v[1] + v[2], sum(v[:4])]
    assert [r[3] for r in rows] == [v[0], v[0] + 1 + v[1], v[0] + 1 + v[1] + v[2], sum(v[:4]) + 1, sum(v[:5])]
