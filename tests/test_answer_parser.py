from hypothesis import given, strategies as st

from lhe_tui.providers.reasoning import ThinkSplitter
from lhe_tui.task.answer import parse_answer, render_answer


def test_plain_answer():
    assert parse_answer("<answer>42</answer>").value == 42
    assert parse_answer("<answer>42</answer>").status == "ok"


def test_negative_and_whitespace_and_case():
    assert parse_answer("  <ANSWER> -17 </Answer>").value == -17


def test_last_tag_wins():
    parsed = parse_answer("first <answer>1</answer> then <answer>2</answer>")
    assert (parsed.status, parsed.value) == ("ok", 2)


def test_missing_tag_is_format_miss():
    assert parse_answer("The total is 12.").status == "format"
    assert parse_answer("").status == "format"
    assert parse_answer("<answer>12").status == "format"


def test_non_integer_is_invalid_not_format():
    for text in ("<answer>twelve</answer>", "<answer>1.5</answer>", "<answer></answer>"):
        parsed = parse_answer(text)
        assert parsed.status == "invalid" and parsed.value is None, text


def test_thousands_separator_and_trailing_period_accepted():
    assert parse_answer("<answer>1,234.</answer>").value == 1234


def test_answer_inside_think_block_is_ignored():
    assert parse_answer("<think>maybe <answer>5</answer></think><answer>7</answer>").value == 7
    assert parse_answer("<think>only <answer>5</answer></think>").status == "format"


def test_render_answer_replaces_last_tag_only():
    assert render_answer("a <answer>1</answer> b <answer>2</answer> c", 9) == "a <answer>1</answer> b <answer>9</answer> c"
    assert render_answer("no tag here", 9) == "<answer>9</answer>"


@given(st.text())
def test_parser_never_raises(text):
    parsed = parse_answer(text)
    assert parsed.status in ("ok", "format", "invalid")
    assert (parsed.value is not None) == (parsed.status == "ok")


@given(st.integers(min_value=-10**12, max_value=10**12), st.text(alphabet="ab <>/", max_size=20))
def test_roundtrip_integer_with_noise_before(value, noise):
    assert parse_answer(f"{noise}<answer>{value}</answer>").value == value


def _split(chunks):
    splitter = ThinkSplitter()
    pieces = [p for chunk in chunks for p in splitter.feed(chunk)] + splitter.flush()
    return "".join(splitter.text), "".join(splitter.reasoning), pieces


def test_think_splitter_across_chunk_boundaries():
    text, reasoning, _ = _split(["<thi", "nk>I add 3</th", "ink><answer>3</an", "swer>"])
    assert text == "<answer>3</answer>"
    assert reasoning == "I add 3"


@given(st.text(alphabet="ab<>/thinkTHINK", max_size=40), st.integers(min_value=1, max_value=7))
def test_think_splitter_keeps_every_character(body, size):
    source = f"x<think>{body.replace('<', '(')}</think>y"
    chunks = [source[i:i + size] for i in range(0, len(source), size)]
    text, reasoning, _ = _split(chunks)
    assert text == "xy"
    assert reasoning == body.replace("<", "(")
