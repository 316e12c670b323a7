"""Prompt templates (lhe_tui.task.templates, prompts/): format, errors, the shipped ones, packaging."""

import ast
import json
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from lhe_tui.cli.main import main
from lhe_tui.common.errors import ConfigError
from lhe_tui.core.config import RunConfig
from lhe_tui.task.prompts import system_prompt, user_turn
from lhe_tui.task.templates import PromptTemplate, load_template, named_templates

ROOT = Path(__file__).resolve().parent.parent
DICT = {"abcde": 5, "fghij": -3, "klmno": 0}

# The reference implementation's structure, in words written for this test: the dictionary as a Python
# dict repr on a line of its own, a worked example inside the system prompt, and in CoT mode an
# instruction line before each turn's keys.
REFERENCE_SHAPED = """\
system = '''You add up numbers for me. Below is a table of words and their values.

Example, with another table:
{{'oak': 1, 'elm': -2}}
User: oak
Assistant: <answer>1</answer>
User: elm
Assistant: <answer>-1</answer>

The table for this task:
{dictionary}
Begin.'''
turn = '''{keys}'''

[cot]
turn = '''Reason it out, then give the total in <answer></answer> tags.
Keys: {keys}'''
"""


def test_the_format_can_express_the_reference_structure():
    template = PromptTemplate.parse("ref", REFERENCE_SHAPED)
    for mode in ("direct", "cot", "thinking"):
        system = template.system(DICT, 1, mode)
        lines = system.split("\n")
        assert repr(DICT) in lines                                            # dict repr, a line of its own
        assert lines[lines.index(repr(DICT)) - 1] == "The table for this task:"
        example = system[:system.index(repr(DICT))]
        assert "User: oak\nAssistant: <answer>1</answer>" in example          # worked example in the system prompt
        assert "{'oak': 1, 'elm': -2}" in lines                               # literal braces
    assert template.turn(("abcde",), DICT, 1, "direct") == "abcde"
    assert template.turn(("abcde", "klmno"), DICT, 2, "thinking") == "abcde, klmno"
    assert template.turn(("abcde",), DICT, 1, "cot") == \
        "Reason it out, then give the total in <answer></answer> tags.\nKeys: abcde"


def test_dictionary_placeholders_keep_the_datasets_order():
    ordered = {"zebra": 1, "apple": -2, "mango": 3}
    template = PromptTemplate.parse("t", "system = '{dictionary}|{dictionary_json}|{k}'\nturn = '[{keys}]'")
    assert template.system(ordered, 3, "direct") == \
        "{'zebra': 1, 'apple': -2, 'mango': 3}|{\"zebra\": 1, \"apple\": -2, \"mango\": 3}|3"
    assert template.turn(("a", "b", "c"), ordered, 3, "direct") == "[a, b, c]"


def test_override_order_mode_k1_then_mode_then_k1_then_top():
    text = """system = 'top'\nturn = 'T {keys}'\n[k1]\nsystem = 'k1'\n[cot]\nsystem = 'cot'\n[cot.k1]\nturn = 'CK {keys}'
[thinking]\nturn = 'TH {keys}'\n"""
    t = PromptTemplate.parse("t", text)
    assert [t.system(DICT, k, m) for m, k in [("direct", 1), ("direct", 2), ("cot", 1), ("cot", 2), ("thinking", 1)]] \
        == ["k1", "top", "cot", "cot", "k1"]
    assert [t.turn(("x",), DICT, k, m) for m, k in [("direct", 1), ("cot", 1), ("cot", 2), ("thinking", 2)]] \
        == ["T x", "CK x", "T x", "TH x"]


def test_whitespace_is_kept_exactly():
    text = "system = '''\n  two spaces\n\ttab\n\n'''\nturn = \"\"\" {keys} \\n\"\"\"\n"
    t = PromptTemplate.parse("t", text)
    assert t.system(DICT, 1, "direct") == "  two spaces\n\ttab\n\n"
    assert t.turn(("a",), DICT, 1, "direct") == " a \n"


@pytest.mark.parametrize("text, needle", [
    ("system = 'x'\nturn = ", "invalid TOML"),
    ("system = 'x'", "missing 'turn'"),
    ("turn = '{keys}'", "missing 'system'"),
    ("system = '{dict}'\nturn = '{keys}'", "unknown placeholder {dict} in system"),
    ("system = 'x'\nturn = '{keys}'\n[cot]\nturn = '{Keys}'", "unknown placeholder {Keys} in cot.turn"),
    ("system = 'a { b'\nturn = '{keys}'", "unmatched '{' in system"),
    ("system = 'a } b'\nturn = '{keys}'", "unmatched '}' in system"),
    ("system = 'x'\nturn = '{keys}'\nsytem = 'y'", "unknown key 'sytem'"),
    ("system = 'x'\nturn = 3", "turn must be a string"),
    ("system = 'x'\nturn = '{keys}'\ncot = 'y'", "'cot' must be a table"),
    ("system = 'x'\nturn = '{keys}'\n[cot]\nfoo = 'y'", "unknown key 'foo' in [cot]"),
    ("system = 'x'\nturn = '{keys}'\n[k1.k1]\nturn = 'y'", "unknown key 'k1' in [k1]"),
    ("system = 'x'\nturn = '{keys}'\n[cot.k1]\nsystem = '{0}'", "unknown placeholder {0} in cot.k1.system"),
])
def test_a_bad_template_is_one_line_naming_the_file(tmp_path, text, needle):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        RunConfig(prompt=str(path)).validate()
    message = str(caught.value)
    assert needle in message and str(path) in message and "\n" not in message, message


def test_missing_file_and_unknown_name(tmp_path):
    with pytest.raises(ConfigError, match="no such file") as caught:
        load_template(str(tmp_path / "nope.toml"))
    assert "nope.toml" in str(caught.value)
    with pytest.raises(ConfigError, match=r"no prompt template named 'papr' \(named: .*default.*lhe-v1"):
        load_template("papr")
    with pytest.raises(ConfigError, match="is a folder"):
        load_template(str(tmp_path) + "/")


@pytest.mark.parametrize("command", ["run", "probe"])
def test_cli_bad_prompt_is_one_line_and_exit_2_before_anything_starts(tmp_path, capsys, command):
    bad = tmp_path / "bad.toml"
    bad.write_text("system = '{oops}'\nturn = '{keys}'\n")
    db = tmp_path / "store" / "lhe.db"
    extra = ["--target-turn", "3"] if command == "probe" else []
    for headless in (["--headless"], []):   # the TUI path checks it before the app starts
        code = main([command, *headless, "--prompt", str(bad), "--db", str(db), *extra])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and "unknown placeholder {oops}" in err and str(bad) in err, err
    assert not db.exists()
    code = main(["run", "--headless", "--prompt", "nope", "--db", str(db)])
    assert code == 2 and "no prompt template named 'nope'" in capsys.readouterr().err


def test_lhe_v1_renders_todays_prompt_byte_for_byte():
    template = load_template("lhe-v1")
    for dictionary in (DICT, {"quote": 1, "it's": 2}, {}):
        for k in (1, 2, 3, 10):
            for mode in ("direct", "cot", "thinking"):
                assert template.system(dictionary, k, mode) == system_prompt(dictionary, k, mode), (k, mode)
                keys = tuple(f"w{i}" for i in range(k))
                assert template.turn(keys, dictionary, k, mode) == user_turn(keys)


def test_default_template_follows_the_reference_structure():
    template = load_template("default")
    for k in (1, 2):
        for mode in ("direct", "cot", "thinking"):
            system = template.system(DICT, k, mode)
            lines = system.split("\n")
            assert repr(DICT) in lines
            example_at = next(i for i, line in enumerate(lines) if line.startswith("{'plum'"))
            example = "\n".join(lines[example_at:lines.index(repr(DICT))])
            assert "\nUser: plum" in example and "\nAssistant: " in example and "<answer>11</answer>" in example
            assert ast.literal_eval(lines[example_at])   # the example dictionary is a dict literal too
            turn = template.turn(("abcde",) * k, DICT, k, mode)
            if mode == "cot":
                instruction, keys_line = turn.split("\n")
                assert "<answer></answer>" in instruction and keys_line.endswith(", ".join(("abcde",) * k))
            else:
                assert turn == ", ".join(("abcde",) * k)
    assert "{k}" not in template.system(DICT, 3, "direct") and "3 of its words" in template.system(DICT, 3, "direct")


def test_worked_examples_in_the_shipped_templates_add_up():
    """Every `Assistant: … <answer>N</answer>` in an example is the running sum of the example's keys."""
    for name in ("default",):
        data = tomllib.loads(named_templates()[name].read_text())
        tables = [data] + [data[m] for m in ("k1", "cot", "thinking", "direct") if m in data]
        tables += [data[m]["k1"] for m in ("cot", "direct", "thinking") if m in data and "k1" in data[m]]
        for table in tables:
            system = table.get("system")
            if not system:
                continue
            example = ast.literal_eval(next(line for line in system.split("\n") if line.startswith("{{"))
                                       .replace("{{", "{").replace("}}", "}"))
            total = 0
            for line in system.split("\n"):
                if line.startswith("User: "):
                    total += sum(example[key] for key in line[6:].split(", "))
                elif line.startswith("Assistant: "):
                    assert line.endswith(f"<answer>{total}</answer>"), (name, line)


def test_stored_text_wins_over_the_file(tmp_path):
    """A resume sends what the run sent: the template's text is stored in the config."""
    path = tmp_path / "mine.toml"
    path.write_text("system = 'v1 {k}'\nturn = '{keys}'\n")
    from lhe_tui.core.events import EventBus
    from lhe_tui.runner.runner import Runner
    from lhe_tui.runs.session import build_task
    from tests.helpers import EchoHistoryProvider

    config = RunConfig(prompt=str(path), turns=2).validate()
    runner = Runner(config, build_task(config), EchoHistoryProvider(), "t", EventBus())
    assert runner.config.prompt_text == path.read_text() and runner.system == "v1 1"
    stored = RunConfig.from_dict(json.loads(json.dumps(runner.config.to_dict())))
    path.write_text("system = 'v2'\nturn = '{keys}'\n")
    assert stored.template().system({}, 1, "direct") == "v1 1"
    legacy = RunConfig.from_dict({"provider": "sim"})
    assert (legacy.prompt, legacy.protocol) == ("lhe-v1", "lenient")


def test_named_templates_search_order(tmp_path, monkeypatch):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "default.toml").write_text("system = 'mine'\nturn = '{keys}'\n")
    (mine / "extra.toml").write_text("system = 'extra'\nturn = '{keys}'\n")
    monkeypatch.setenv("LHE_TUI_PROMPTS_DIR", str(mine))
    assert load_template("default").system({}, 1, "direct") == "mine"   # a later folder wins
    assert load_template("extra").system({}, 1, "direct") == "extra"
    assert load_template("lhe-v1").system({}, 1, "direct") == system_prompt({}, 1, "direct")


def test_pyproject_lists_every_package_and_ships_prompts():
    """The packages are listed by hand (to map prompts/ into the package): a new one must be added."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(data["tool"]["setuptools"]["packages"])
    on_disk = {str(p.parent.relative_to(ROOT)).replace("/", ".") for p in (ROOT / "lhe_tui").rglob("__init__.py")}
    assert listed == on_disk | {"lhe_tui.prompts"}
    assert data["tool"]["setuptools"]["package-dir"]["lhe_tui.prompts"] == "prompts"
    assert "*.toml" in data["tool"]["setuptools"]["package-data"]["lhe_tui.prompts"]
    assert {"default", "lhe-v1"} <= set(named_templates())


def test_template_config_survives_replace():
    config = replace(RunConfig(), prompt="lhe-v1").validate()
    assert config.template().name == "lhe-v1"
