"""Issue 17, the forecast: `run --estimate` prints the configured run's expected tokens and cost (nothing runs,
nothing is stored), and `show` puts the forecast beside the stored counts.

The wiring test's server reports prompt_tokens = the characters of the request's messages / 4, the
approximation the forecast itself makes, so it checks only that the forecast renders the prompts and sums the
growing history the way the run sends them, and that `show` puts the two side by side: it is no check of the
forecast's accuracy (that needs a real tokenizer)."""

import sqlite3

import pytest

from lhe_tui.cli.main import main
from lhe_tui.core.config import RunConfig
from lhe_tui.core.prices import parse_prices
from lhe_tui.analysis.estimate import forecast
from lhe_tui.testing.fake_llm_server import ScriptedReply, FakeLLMServer, content_text

PRICES = """
[models.test-model]
input = 2.0
cached_input = 0.5
output = 10.0
"""


@pytest.fixture(autouse=True)
def env(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("LHE_TUI_PRICES", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")


REPLY_TOKENS = 13   # what the server says each reply took: not the forecast's default of 8 for direct mode


def chars_over_4(body):
    """prompt_tokens: all the characters of the request's messages (system included) / 4."""
    chars = len(content_text(body.get("system"))) + sum(len(content_text(m.get("content")))
                                                        for m in body["messages"])
    return ScriptedReply(text="<answer>0</answer>", prompt_tokens=chars // 4, completion_tokens=REPLY_TOKENS)


def test_wiring_the_forecast_sums_the_history_as_the_run_sends_it_and_show_compares(tmp_path, capsys):
    prices = tmp_path / "prices.toml"
    prices.write_text(PRICES)
    db = tmp_path / "lhe.db"
    flags = ["--provider", "openai", "--model", "test-model", "--turns", "50", "--samples", "2", "--seed", "5",
             "--prices", str(prices), "--db", str(db)]
    assert main(["run", "--estimate", *flags]) == 0
    out = capsys.readouterr().out
    assert not db.exists()                                   # nothing ran, nothing was stored
    assert "characters / 4" in out and "8 a reply, the default for direct mode" in out
    assert "without caching" in out and "with caching" in out
    config = RunConfig(provider="openai", model="test-model", turns=50, samples=2, seed=5)
    expected = forecast(config)
    assert f"{expected.input_tokens:,}" in out

    with FakeLLMServer(chars_over_4) as server:
        assert main(["run", "--headless", *flags, "--base-url", server.openai_base_url]) == 0
    with sqlite3.connect(db) as conn:
        actual_in, actual_out, turns = conn.execute(
            "SELECT SUM(tokens_in), SUM(tokens_out), COUNT(*) FROM turns").fetchone()
    assert expected.output_tokens == 100 * 8                  # the documented default, 8 a reply
    assert turns == 100 and actual_out == 100 * REPLY_TOKENS  # what the server reported is what is stored
    error = abs(expected.input_tokens - actual_in) / actual_in
    assert error < 0.10, (expected.input_tokens, actual_in)
    print(f"forecast {expected.input_tokens:,} vs actual {actual_in:,} input tokens: {100 * error:.2f}% off")

    capsys.readouterr()
    session = sqlite3.connect(db).execute("SELECT id FROM sessions").fetchone()[0]
    assert main(["show", session, "--db", str(db), "--prices", str(prices)]) == 0
    shown = capsys.readouterr().out
    assert "forecast vs actual" in shown and f"{actual_in:,}" in shown and f"{expected.input_tokens:,}" in shown
    assert f"{100 * REPLY_TOKENS:,}" in shown and f"{expected.output_tokens:,}" in shown


def test_show_says_when_the_server_reported_no_tokens(tmp_path, capsys):
    db = tmp_path / "lhe.db"
    assert main(["run", "--headless", "--turns", "3", "--db", str(db)]) == 0   # the sim reports no usage
    capsys.readouterr()
    session = sqlite3.connect(db).execute("SELECT id FROM sessions").fetchone()[0]
    assert main(["show", session, "--db", str(db)]) == 0
    shown = capsys.readouterr().out
    assert "forecast vs actual" in shown
    assert "not reported" in shown


def test_caching_window_and_price():
    prices = parse_prices(PRICES, "t")
    plain = forecast(RunConfig(provider="openai", model="test-model", turns=400), prices=prices)
    assert plain.caches and plain.cached_tokens > 0.75 * plain.input_tokens
    assert plain.cost_cached < plain.cost_uncached
    windowed = forecast(RunConfig(provider="openai", model="test-model", turns=400, window=5), prices=prices)
    assert windowed.input_tokens < plain.input_tokens
    # past the window only the system prompt could be read, and the default one (536 tokens) is under
    # OpenAI's 1,024-token minimum: the windowed run reads nothing from the cache
    assert round(windowed.system_tokens) == 536 and windowed.cached_tokens == 0
    # 10 turns of the default prompt stay under Anthropic's 1,024-token minimum: nothing is cached
    anthropic = forecast(RunConfig(provider="anthropic", model="claude-x", turns=10))
    assert anthropic.cached_tokens == anthropic.cache_write_tokens == 0 and anthropic.first_cached_turn is None
    assert anthropic.price is None and anthropic.cost_uncached is None
    nocache = forecast(RunConfig(provider="anthropic", model="claude-x", turns=10, prompt_cache=False))
    assert not nocache.caches and nocache.cached_tokens == 0
    # the input grows with the square of the turns
    long = forecast(RunConfig(turns=200))
    short = forecast(RunConfig(turns=100))
    assert 2.5 < long.input_tokens / short.input_tokens < 4.1


def test_a_thousand_turns_times_a_hundred_samples_counts_every_request():
    result = forecast(RunConfig(turns=1000, samples=100))   # its time: bench/suite_timings.py
    assert result.requests == 100_000


@pytest.mark.parametrize("flags,message", [
    (["--prompt", "nope/missing.toml"], "prompt template nope/missing.toml: no such file"),
    (["--estimate-reply-tokens", "0"], "--estimate-reply-tokens must be at least 1"),
    (["--provider", "openai"], "--model is required"),
    (["--turns", "0"], "--turns must be within"),
])
def test_one_line_errors(tmp_path, capsys, flags, message):
    assert main(["run", "--estimate", "--db", str(tmp_path / "x.db"), *flags]) != 0
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "x.db").exists()


def test_bad_template_text_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('system = "{nope}"\nturn = "{keys}"\n')
    assert main(["run", "--estimate", "--prompt", str(bad)]) != 0
    err = capsys.readouterr().err
    assert "unknown placeholder {nope}" in err and err.count("\n") == 1


def test_cache_rules_by_hand():
    from lhe_tui.core.cache_rules import min_cacheable_tokens, readable_tokens

    assert min_cacheable_tokens("anthropic", "claude-haiku-4-5") == 2048
    assert min_cacheable_tokens("anthropic", "claude-sonnet-4-5") == 1024
    assert readable_tokens("openai", "gpt-x", 1023) == 0
    assert readable_tokens("openai", "gpt-x", 1024) == 1024
    assert readable_tokens("openai", "gpt-x", 1500) == 1408          # 1,024 + 3 x 128
    assert readable_tokens("anthropic", "claude-haiku-4-5", 2000) == 0
    assert readable_tokens("anthropic", "claude-sonnet-4-5", 2000) == 2000


def test_a_short_anthropic_run_forecasts_no_cache_savings(capsys):
    assert main(["run", "--provider", "anthropic", "--model", "claude-sonnet-4-5", "--turns", "10", "--estimate"]) == 0
    out = capsys.readouterr().out
    assert "0 of the input read from cache" in out and "no request is long enough to be cached" in out
    cost = next(line for line in out.splitlines() if line.strip().startswith("cost"))
    uncached, cached = [part.split("$")[1].split()[0] for part in cost.split(",")]
    assert uncached == cached


def test_the_fake_anthropic_cache_keeps_nothing_under_the_minimum():
    from lhe_tui.testing.fake_llm_server import AnthropicPromptCache

    def body(text_tokens: int, model: str) -> dict:
        return {"model": model, "system": [{"type": "text", "text": "s" * 4 * text_tokens, "cache_control": EPH}],
                "messages": [{"role": "user", "content": "k"}]}

    cache = AnthropicPromptCache()
    for _ in range(2):
        short = cache.bill(body(1000, "claude-sonnet-4-5"))
    assert short["cache_read_input_tokens"] == short["cache_creation_input_tokens"] == 0
    cache.bill(body(1100, "claude-sonnet-4-5"))
    again = cache.bill(body(1100, "claude-sonnet-4-5"))
    assert again["cache_read_input_tokens"] == 1100
    for _ in range(2):
        haiku = cache.bill(body(1500, "claude-haiku-4-5"))
    assert haiku["cache_read_input_tokens"] == 0


EPH = {"type": "ephemeral"}


def test_a_groups_estimate_sums_its_arms(capsys):
    args = ["run", "--provider", "openai", "--model", "test-model", "--turns", "30", "--samples", "2", "--estimate"]
    assert main(args + ["--arm", "a:", "--arm", "b:--mode=cot"]) == 0
    out = capsys.readouterr().out
    arms = [int(line.split("= ")[1].split()[0].replace(",", "")) for line in out.splitlines()
            if line.startswith("forecast:")]
    inputs = [int(line.split()[2].replace(",", "")) for line in out.splitlines() if line.strip().startswith("input tokens")]
    total = next(line for line in out.splitlines() if line.startswith("total of the group's 2 arms"))
    assert arms == [60, 60] and "120 requests" in total
    assert f"{sum(inputs):,} input" in total and inputs[1] > inputs[0]       # CoT replies make longer histories
