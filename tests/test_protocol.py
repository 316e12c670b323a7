"""The two protocols (lhe_tui.task.protocol), table-driven: how each reads a reply, and what the model
sees of it in its history. `paper` is the reference implementation's rules, `lenient` lhe-tui's older ones."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lhe_tui.common.errors import ConfigError
from lhe_tui.core.config import RunConfig
from lhe_tui.task.protocol import EMPTY_REPLY, NO_ANSWER, get_protocol, protocol_of

paper, lenient = get_protocol("paper"), get_protocol("lenient")

# reply -> (paper status, paper value, lenient status, lenient value)
PARSE = [
    ("<answer>42</answer>", "ok", 42, "ok", 42),
    ("<answer>-17</answer>", "ok", -17, "ok", -17),
    ("<answer>+5</answer>", "ok", 5, "ok", 5),
    ("<answer> -3 </answer>", "ok", -3, "ok", -3),
    ("<answer>\n12\n</answer>", "ok", 12, "ok", 12),
    ("<answer>0</answer>", "ok", 0, "ok", 0),
    ("<answer>007</answer>", "ok", 7, "ok", 7),
    ("<answer>1_000</answer>", "ok", 1000, "ok", 1000),          # int() reads it; so does paper
    ("<answer>1,234</answer>", "invalid", None, "ok", 1234),
    ("<answer>42.</answer>", "invalid", None, "ok", 42),
    ("<answer>1,234.</answer>", "invalid", None, "ok", 1234),
    ("<answer>_5</answer>", "invalid", None, "ok", 5),
    ("<answer>5_</answer>", "invalid", None, "ok", 5),
    ("<answer>1__0</answer>", "invalid", None, "ok", 10),
    ("<ANSWER>5</ANSWER>", "format", None, "ok", 5),
    ("<Answer>5</answer>", "format", None, "ok", 5),
    ("<answer>1</answer> then <answer>2</answer>", "ok", 1, "ok", 2),
    ("<answer>x</answer><answer>2</answer>", "invalid", None, "ok", 2),
    ("<answer>2</answer><answer>x</answer>", "ok", 2, "invalid", None),
    ("<ANSWER>9</ANSWER> <answer>3</answer>", "ok", 3, "ok", 3),
    ("<answer>3</answer> <ANSWER>9</ANSWER>", "ok", 3, "ok", 9),
    ("The total is 12.", "format", None, "format", None),
    ("", "format", None, "format", None),
    ("<answer>12", "format", None, "format", None),
    ("<answer></answer>", "invalid", None, "invalid", None),
    ("<answer>   </answer>", "invalid", None, "invalid", None),
    ("<answer>twelve</answer>", "invalid", None, "invalid", None),
    ("<answer>1.5</answer>", "invalid", None, "invalid", None),
    ("<answer>1e3</answer>", "invalid", None, "invalid", None),
    ("<answer>0x1F</answer>", "invalid", None, "invalid", None),
    ("<answer>1 000</answer>", "invalid", None, "invalid", None),
    ("<answer>- 5</answer>", "invalid", None, "invalid", None),
    ("<answer>--5</answer>", "invalid", None, "invalid", None),
    ("<answer>５</answer>", "invalid", None, "ok", 5),      # int() would read a full-width 5; paper: ASCII only
    # 20 digits: past what the store's 64-bit integers hold, so invalid under both rules (issue 22)
    ("<answer>12345678901234567890</answer>", "invalid", None, "invalid", None),
    ("<answer>123456789012345678</answer>", "ok", 123456789012345678, "ok", 123456789012345678),
    ("<answer><answer>5</answer>", "invalid", None, "invalid", None),
    ("Adding 3: 10 + 3 = 13. <answer>13</answer>", "ok", 13, "ok", 13),
    ("<think>maybe <answer>5</answer></think><answer>7</answer>", "ok", 7, "ok", 7),
    ("<think>only <answer>5</answer></think>", "format", None, "format", None),
    ("<think>unclosed <answer>5</answer>", "format", None, "format", None),
    ("<answer>-0</answer>", "ok", 0, "ok", 0),
]


@pytest.mark.parametrize("reply, p_status, p_value, l_status, l_value", PARSE)
def test_parse(reply, p_status, p_value, l_status, l_value):
    got = paper.parse(reply)
    assert (got.status, got.value) == (p_status, p_value)
    got = lenient.parse(reply)
    assert (got.status, got.value) == (l_status, l_value)


def test_the_table_has_thirty_replies_and_the_issues_examples_differ():
    assert len(PARSE) >= 30
    for reply in ("<answer>1,234</answer>", "<answer>42.</answer>", "<answer>_5</answer>", "<ANSWER>5</ANSWER>"):
        assert paper.parse(reply).status != "ok" and lenient.parse(reply).status == "ok", reply


# (reply, mode, model answer as parsed, history answer) -> (paper history, lenient history)
HISTORY = [
    ("<answer>42</answer>", "direct", 42, 42, "<answer>42</answer>", "<answer>42</answer>"),
    ("The sum is <answer>42</answer>, I think.", "direct", 42, 42,
     "<answer>42</answer>", "The sum is <answer>42</answer>, I think."),
    ("<answer>1</answer> <answer>2</answer>", "direct", 1, 1, "<answer>1</answer>",
     "<answer>1</answer> <answer>2</answer>"),
    ("  <answer> +5 </answer>\n", "direct", 5, 5, "<answer>+5</answer>", "  <answer> +5 </answer>\n"),
    ("<answer>1,234</answer>", "direct", None, None, "<answer>1,234</answer>", "<answer>1,234</answer>"),
    ("no tag at all", "direct", None, None, NO_ANSWER, "no tag at all"),
    ("", "direct", None, None, EMPTY_REPLY, "(no reply)"),
    ("   \n", "direct", None, None, EMPTY_REPLY, "   \n"),
    ("<ANSWER>5</ANSWER>", "direct", None, None, NO_ANSWER, "<ANSWER>5</ANSWER>"),
    ("x <answer>42</answer> y", "thinking", 42, 42, "<answer>42</answer>", "x <answer>42</answer> y"),
    ("<think>hmm</think><answer>42</answer>", "thinking", 42, 42, "<answer>42</answer>", "<answer>42</answer>"),
    # injected / induced / healed: the policy's value replaces the answer
    ("<answer>42</answer>", "direct", 42, 49, "<answer>49</answer>", "<answer>49</answer>"),
    ("a <answer>1</answer> b <answer>2</answer> c", "direct", 1, 9, "<answer>9</answer>",
     "a <answer>1</answer> b <answer>9</answer> c"),
    ("no tag", "direct", None, 30, "<answer>30</answer>", "<answer>30</answer>"),
    ("", "direct", None, 30, "<answer>30</answer>", "<answer>30</answer>"),
    # chain of thought keeps the visible reply (paper: the first tag is the one replaced)
    ("3 + 4 = 7. <answer>7</answer>", "cot", 7, 7, "3 + 4 = 7. <answer>7</answer>", "3 + 4 = 7. <answer>7</answer>"),
    ("\n3 + 4 = 7. <answer>7</answer>\n", "cot", 7, 7, "3 + 4 = 7. <answer>7</answer>",
     "\n3 + 4 = 7. <answer>7</answer>\n"),
    ("3 + 4 = 7. <answer>7</answer>", "cot", 7, 10, "3 + 4 = 7. <answer>10</answer>",
     "3 + 4 = 7. <answer>10</answer>"),
    ("<answer>1</answer> or <answer>2</answer>", "cot", 1, 5, "<answer>5</answer> or <answer>2</answer>",
     "<answer>1</answer> or <answer>5</answer>"),
    ("I lost count.", "cot", None, None, NO_ANSWER, "I lost count."),
    ("", "cot", None, None, EMPTY_REPLY, "(no reply)"),
    ("I lost count.", "cot", None, 3, "<answer>3</answer>", "<answer>3</answer>"),
]


@pytest.mark.parametrize("reply, mode, model, shown, expect_paper, expect_lenient", HISTORY)
def test_history_text(reply, mode, model, shown, expect_paper, expect_lenient):
    assert paper.history_text(reply, mode, model, shown) == expect_paper
    assert lenient.history_text(reply, mode, model, shown) == expect_lenient


@pytest.mark.parametrize("reply", [r[0] for r in PARSE])
def test_paper_direct_history_of_any_tagged_reply_reads_back_the_same(reply):
    """What the model sees next parses to what was scored (the history is a faithful summary)."""
    parsed = paper.parse(reply)
    shown = paper.history_text(reply, "direct", parsed.value, parsed.value)
    again = paper.parse(shown)
    if parsed.status == "format":
        assert shown in (NO_ANSWER, EMPTY_REPLY)
    else:
        assert (again.status, again.value) == (parsed.status, parsed.value)


@given(st.text())
def test_paper_parser_never_raises(text):
    parsed = paper.parse(text)
    assert parsed.status in ("ok", "format", "invalid")
    assert (parsed.value is not None) == (parsed.status == "ok")
    assert paper.history_text(text, "direct", parsed.value, parsed.value)


@given(st.integers(min_value=-10**17, max_value=10**17), st.text(alphabet="ab <>/", max_size=20))
def test_paper_reads_any_integer_after_noise(value, noise):
    assert paper.parse(f"{noise.replace('<answer>', '')}<answer>{value}</answer>").value in (value, None)
    assert paper.parse(f"<answer>{value}</answer>{noise}").value == value


def test_protocol_config_default_legacy_and_errors():
    assert RunConfig().protocol == "paper"
    assert RunConfig.from_dict({"provider": "sim"}).protocol == "lenient"       # stored before the switch
    assert RunConfig.from_dict(RunConfig().to_dict()).protocol == "paper"
    assert protocol_of({}) == "lenient" and protocol_of({"protocol": "paper"}) == "paper"
    with pytest.raises(ConfigError, match="unknown protocol 'strict'"):
        RunConfig(protocol="strict").validate()
    with pytest.raises(ConfigError):
        get_protocol("strict")


def test_protocol_in_sessions_show_compare_export_and_old_sessions_read_lenient(tmp_path, capsys):
    import json
    import sqlite3

    from lhe_tui.cli.main import main

    db = str(tmp_path / "lhe.db")
    for _ in range(2):
        assert main(["run", "--headless", "--turns", "5", "--sim-delay", "0", "--db", db]) == 0
    conn = sqlite3.connect(db)
    old, new = [r[0] for r in conn.execute("SELECT id FROM sessions ORDER BY rowid")]
    config = json.loads(conn.execute("SELECT config_json FROM sessions WHERE id = ?", [old]).fetchone()[0])
    for key in ("protocol", "prompt", "prompt_text"):   # as a session stored before the switch
        del config[key]
    with conn:
        conn.execute("UPDATE sessions SET config_json = ? WHERE id = ?", [json.dumps(config), old])
    capsys.readouterr()
    assert main(["sessions", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "protocol" in out and "lenient" in out and "paper" in out
    assert main(["show", old, "--db", db]) == 0
    out = capsys.readouterr().out
    assert "protocol lenient" in out and "lenient / lhe-v1" in out
    assert main(["show", new, "--db", db]) == 0
    assert "paper / default" in capsys.readouterr().out
    assert main(["compare", old, new, "--db", db]) == 0
    out = capsys.readouterr().out
    assert "direct lenient plain" in out and "direct paper plain" in out   # in each session's label
    assert main(["export", new, "--db", db]) == 0
    session = json.loads(capsys.readouterr().out)["session"]
    assert session["protocol"] == "paper" and session["prompt"] == "default"
    assert session["config"]["prompt_text"].startswith("# default")
    assert main(["export", old, "--db", db]) == 0
    assert json.loads(capsys.readouterr().out)["session"]["protocol"] == "lenient"
