"""Issue 21 §6: the history placeholders for a reply with no answer and an empty reply are template fields;
`<think>` blocks are stripped case-insensitively."""

from __future__ import annotations

import pytest

from lhe_tui.cli.main import main
from lhe_tui.common.errors import ConfigError
from lhe_tui.runner.history import HistoryEntry, HistoryPolicy
from lhe_tui.task.protocol import EMPTY_REPLY, LENIENT_EMPTY_REPLY, NO_ANSWER, get_protocol
from lhe_tui.task.templates import PromptTemplate
from lhe_tui.testing.fake_llm_server import FakeLLMServer, ScriptedReply, content_text

BASE = "system = '''Sum: {dictionary}'''\nturn = '''{keys}'''\n"
MINE = BASE + "no_answer = '''[you gave no total]'''\nempty_reply = '''[you said nothing {at all}]'''\n"


def entry(reply: str, answer: int | None = None) -> HistoryEntry:
    return HistoryEntry(turn=1, keys=("a",), reply_visible=reply, model_answer=answer, history_answer=answer,
                        gold_sum=1)


def test_template_placeholders_replace_the_protocols_own():
    template = PromptTemplate.parse("mine", MINE)
    assert template.placeholders.no_answer == "[you gave no total]"
    assert template.placeholders.empty_reply == "[you said nothing {at all}]"   # taken as written
    paper = HistoryPolicy(protocol="paper", placeholders=template.placeholders)
    assert paper.assistant_content(entry("I lost count")) == "[you gave no total]"
    assert paper.assistant_content(entry("")) == "[you said nothing {at all}]"
    assert paper.assistant_content(entry("<answer>4</answer>", 4)) == "<answer>4</answer>"
    lenient = HistoryPolicy(protocol="lenient", placeholders=template.placeholders)
    assert lenient.assistant_content(entry("")) == "[you said nothing {at all}]"
    assert lenient.assistant_content(entry("I lost count")) == "I lost count"   # lenient keeps replies verbatim


def test_without_them_the_protocols_own_words():
    template = PromptTemplate.parse("base", BASE)
    assert template.placeholders.no_answer is None and template.placeholders.empty_reply is None
    paper = HistoryPolicy(protocol="paper", placeholders=template.placeholders)
    assert (paper.assistant_content(entry("x")), paper.assistant_content(entry(""))) == (NO_ANSWER, EMPTY_REPLY)
    lenient = HistoryPolicy(protocol="lenient", placeholders=template.placeholders)
    assert lenient.assistant_content(entry("")) == LENIENT_EMPTY_REPLY


@pytest.mark.parametrize("line, problem", [("no_answer = 3", "'no_answer' must be a non-empty string"),
                                           ("empty_reply = '  '", "'empty_reply' must be a non-empty string"),
                                           ("[cot]\nno_answer = 'x'", "unknown key 'no_answer' in [cot]")])
def test_a_bad_placeholder_is_one_line(line, problem):
    with pytest.raises(ConfigError) as info:
        PromptTemplate.parse("bad", BASE + line + "\n", "bad.toml")
    assert problem in str(info.value) and "\n" not in str(info.value)


def test_the_template_placeholders_go_over_the_wire(tmp_path, monkeypatch, capsys):
    """A run with the template sends its placeholders in the history: no tag at turn 1, empty at turn 2
    (--empty-retries 0), as the scripted server records them."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    path = tmp_path / "mine.toml"
    path.write_text(MINE)
    replies = {1: "no idea", 2: ""}

    def respond(body):
        turn = sum(1 for m in body["messages"] if m["role"] == "user")
        return ScriptedReply(text=replies.get(turn, "<answer>0</answer>"))

    with FakeLLMServer(respond) as server:
        assert main(["run", "--headless", "--provider", "openai", "--model", "m", "--base-url",
                     server.openai_base_url, "--turns", "3", "--samples", "1", "--empty-retries", "0",
                     "--prompt", str(path), "--db", str(tmp_path / "lhe.db")]) == 0
        last = server.requests[-1].body["messages"]
    shown = [content_text(m["content"]) for m in last if m["role"] == "assistant"]
    assert shown == ["[you gave no total]", "[you said nothing {at all}]"]


@pytest.mark.parametrize("reply", ["<THINK>maybe <answer>5</answer></THINK><answer>7</answer>",
                                   "<Think>maybe <answer>5</answer></think><answer>7</answer>",
                                   "<think>maybe <answer>5</answer></ThInK><answer>7</answer>"])
@pytest.mark.parametrize("protocol", ["paper", "lenient"])
def test_think_blocks_are_stripped_whatever_their_case(reply, protocol):
    rules = get_protocol(protocol)
    assert rules.parse(reply).value == 7
    assert "maybe" not in rules.history_text(reply, "direct", 7, 7)
