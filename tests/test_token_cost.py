"""Issue 17, token accounting and cost: the cache and reasoning counts the real APIs report (the scripted server
speaks their wire formats through the real SDKs), stored per turn, summed per session, "not reported" where the
server sends no usage, and the cost from a price file."""

import csv
import io
import json
import sqlite3

import pytest

from lhe_tui.cli.main import main
from lhe_tui.core.prices import ModelPrice, PriceTable, TokenTotals, fmt_cost, load_prices, parse_prices
from lhe_tui.common.errors import ConfigError
from lhe_tui.providers.anthropic_messages import AnthropicProvider
from lhe_tui.providers.base import GenerationSettings, RequestMeta
from lhe_tui.providers.openai_chat import OpenAIChatProvider
from lhe_tui.testing.fake_llm_server import FakeLLMServer, ScriptedReply

MESSAGES = [{"role": "system", "content": "sys"}, {"role": "user", "content": "alpha"}]
TURNS = 4
# Dollars per million tokens: easy to check by hand.
PRICES = """
as_of = "2030-01-01"
source = "a test price file"

[models.test-model]
input = 2.0
cached_input = 0.5
cache_write = 2.5
output = 10.0
"""


def cached_reply(body):
    """Every request: 1,000 input tokens of which 600 from the cache and 100 written to it; 20 out, 8 reasoning."""
    return ScriptedReply(text="<answer>0</answer>", reasoning="hmm hmm", prompt_tokens=1000, completion_tokens=20,
                         cached_tokens=600, cache_creation_tokens=100)


@pytest.fixture(autouse=True)
def no_user_prices(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))   # no user price file but the test's
    monkeypatch.delenv("LHE_TUI_PRICES", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")


@pytest.fixture
def price_file(tmp_path):
    path = tmp_path / "prices.toml"
    path.write_text(PRICES)
    return path


# ---- providers: the counts off the wire ------------------------------------------------------------------

@pytest.mark.parametrize("client", ["direct", "sdk"])
async def test_openai_reply_has_cached_and_reasoning_counts(client):
    with FakeLLMServer(cached_reply) as server:
        provider = OpenAIChatProvider("m", GenerationSettings(), api_key="k", base_url=server.openai_base_url,
                                      client=client)
        reply = await provider.complete(MESSAGES, RequestMeta(0, 1))
        await provider.aclose()
    # OpenAI's prompt_tokens include the cached ones; it reports no cache writes
    assert (reply.tokens_in, reply.tokens_cached, reply.tokens_cache_write) == (1000, 600, None)
    assert (reply.tokens_out, reply.tokens_reasoning) == (20, 2)   # reasoning: its streamed pieces


async def test_anthropic_reply_sums_the_three_input_counts():
    with FakeLLMServer(cached_reply) as server:
        provider = AnthropicProvider("claude-x", GenerationSettings(), api_key="k",
                                     base_url=server.anthropic_base_url)
        reply = await provider.complete(MESSAGES, RequestMeta(0, 1))
        await provider.aclose()
    body = server.requests[-1].body
    assert body["model"] == "claude-x"
    # input_tokens 300 + cache reads 600 + cache writes 100: all the input, as OpenAI counts it
    assert (reply.tokens_in, reply.tokens_cached, reply.tokens_cache_write) == (1000, 600, 100)
    assert (reply.tokens_out, reply.tokens_reasoning) == (20, None)   # Anthropic reports no reasoning part


@pytest.mark.parametrize("client", ["direct", "sdk"])
async def test_a_stream_without_usage_is_none_not_zero(client):
    with FakeLLMServer(lambda body: ScriptedReply(text="<answer>1</answer>", stream_usage=False)) as server:
        provider = OpenAIChatProvider("m", GenerationSettings(), api_key="k", base_url=server.openai_base_url,
                                      client=client)
        reply = await provider.complete(MESSAGES, RequestMeta(0, 1))
        await provider.aclose()
    assert (reply.tokens_in, reply.tokens_out, reply.tokens_cached, reply.tokens_reasoning) == (None,) * 4


# ---- runs: stored per turn, summed, priced ---------------------------------------------------------------

def headless(capsys, tmp_path, provider, base_url, *extra, responder=cached_reply, monkeypatch=None):
    db = tmp_path / "lhe.db"
    with FakeLLMServer(responder) as server:
        url = server.openai_base_url if provider == "openai" else server.anthropic_base_url
        code = main(["run", "--headless", "--provider", provider, "--model", "test-model", "--base-url", url,
                     "--turns", str(TURNS), "--samples", "1", "--seed", "3", "--db", str(db), *extra])
    out, err = capsys.readouterr()
    assert code == 0, err
    return db, out


def stored(db):
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT tokens_in, tokens_cached, tokens_cache_write, tokens_out, tokens_reasoning "
                            "FROM turns ORDER BY turn").fetchall()


@pytest.mark.parametrize("provider,client", [("openai", "direct"), ("openai", "sdk"), ("anthropic", None)])
def test_counts_are_stored_per_turn_and_priced_in_the_summary(capsys, tmp_path, monkeypatch, price_file,
                                                               provider, client):
    if client:
        monkeypatch.setenv("LHE_TUI_OPENAI_CLIENT", client)
    db, out = headless(capsys, tmp_path, provider, None, "--prices", str(price_file))
    rows = stored(db)
    if provider == "openai":
        assert rows == [(1000, 600, None, 20, 2)] * TURNS
        per_turn = (400 * 2.0 + 600 * 0.5 + 20 * 10.0) / 1e6
    else:
        assert rows == [(1000, 600, 100, 20, None)] * TURNS
        per_turn = (300 * 2.0 + 600 * 0.5 + 100 * 2.5 + 20 * 10.0) / 1e6
    assert "4,000 / 80" in out                       # tokens in / out, summed
    assert "2,400 / " in out                         # cached input
    assert fmt_cost(per_turn * TURNS) in out and "prices as of 2030-01-01" in out
    # the same cost in `show`, the sessions list, compare and the exports
    for argv in (["show", "latest"], ["sessions"], ["compare", "latest"]):
        assert main([*argv, "--db", str(db), "--prices", str(price_file)]) == 0
        assert fmt_cost(per_turn * TURNS) in capsys.readouterr().out, argv
    assert main(["export", "latest", "--db", str(db), "--prices", str(price_file)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["summary"]["cost_usd"] == pytest.approx(per_turn * TURNS)
    assert data["summary"]["tokens"]["cached"] == 600 * TURNS
    assert data["summary"]["prices"]["as_of"] == "2030-01-01"
    assert data["turns"][0]["cost_usd"] == pytest.approx(per_turn)
    assert main(["export", "latest", "--format", "csv", "--db", str(db), "--prices", str(price_file)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert float(rows[0]["cost_usd"]) == pytest.approx(per_turn) and rows[0]["tokens_cached"] == "600"


def test_unknown_model_shows_tokens_and_no_price(capsys, tmp_path):
    db, out = headless(capsys, tmp_path, "openai", None)   # test-model is in no shipped price file
    assert "4,000 / 80" in out and "no price for this model" in out and "$" not in out
    assert main(["export", "latest", "--db", str(db)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["summary"]["cost_usd"] is None and data["turns"][0]["cost_usd"] is None


def test_a_server_without_usage_says_not_reported(capsys, tmp_path, price_file):
    db, out = headless(capsys, tmp_path, "openai", None, "--prices", str(price_file),
                       responder=lambda body: ScriptedReply(text="<answer>0</answer>", stream_usage=False))
    assert stored(db) == [(None, None, None, None, None)] * TURNS
    assert "not reported / not reported" in out and "$0.0000" not in out
    assert main(["sessions", "--db", str(db), "--prices", str(price_file)]) == 0
    assert "not reported" in capsys.readouterr().out
    assert main(["export", "latest", "--db", str(db)]) == 0
    tokens = json.loads(capsys.readouterr().out)["summary"]["tokens"]
    assert tokens["in"] is None and tokens["turns_not_reported"] == TURNS


def test_user_price_file_overrides_the_shipped_one(tmp_path, monkeypatch, price_file):
    shipped = load_prices().for_model("claude-sonnet-4-5-20250929")   # a date suffix finds the model
    assert shipped is not None and shipped.input > 0
    user = tmp_path / "config" / "lhe-tui" / "prices.toml"
    user.parent.mkdir(parents=True)
    user.write_text('[models.claude-sonnet-4-5]\ninput = 1.0\noutput = 2.0\n')
    assert load_prices().for_model("claude-sonnet-4-5").input == 1.0
    prices = load_prices(price_file)
    assert prices.for_model("test-model").cached_input == 0.5 and prices.as_of == "2030-01-01"
    assert prices.for_model("no-such-model") is None


def test_the_shipped_file_has_a_date_and_a_source():
    prices = load_prices()
    assert prices.as_of and prices.source and prices.models
    for price in prices.models.values():
        assert price.input > 0 and price.output > 0
        assert price.cached_input is not None and price.cached_input < price.input   # caching is priced
    # the main models of both providers, dated model ids included
    for model in ("claude-sonnet-4-5-20250929", "claude-opus-4-6", "claude-haiku-4-5", "gpt-5.4", "gpt-5-mini",
                  "gpt-4.1", "gpt-4o-mini-2024-07-18"):
        assert prices.for_model(model) is not None, model
    assert prices.for_model("gpt-5") is None          # its copies disagree on cached input: no made-up price
    assert "OpenAI" in prices.source and "Anthropic" in prices.source


def test_an_openai_run_is_priced_from_the_shipped_file_with_its_cached_input(capsys, tmp_path):
    db, out = headless(capsys, tmp_path, "openai", None, "--model", "gpt-4o-mini")
    price = load_prices().for_model("gpt-4o-mini")
    per_turn = (400 * price.input + 600 * price.cached_input + 20 * price.output) / 1e6
    assert fmt_cost(per_turn * TURNS) in out


@pytest.mark.parametrize("text,needle", [
    ("[models.m\ninput = 1", "bad price file"),
    ("[models.m]\ninput = 1\n", "needs `output`"),
    ('[models.m]\ninput = "1"\noutput = 2\n', "must be a number"),
    ("[models.m]\ninput = -1\noutput = 2\n", "must be a number"),
    ("[models.m]\ninput = 1\noutput = 2\ncache_read = 3\n", "unknown field 'cache_read'"),
    ("price = 3\n", "unknown key 'price'"),
])
def test_a_bad_price_file_is_one_line_naming_it(capsys, tmp_path, text, needle):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=needle):
        parse_prices(text, str(path))
    code = main(["sessions", "--db", str(tmp_path / "x.db"), "--prices", str(path)])
    err = capsys.readouterr().err
    assert code != 0 and err.count("\n") == 1 and str(path) in err and needle.split("'")[0] in err


def test_a_missing_price_file_is_one_line(capsys, tmp_path):
    code = main(["run", "--headless", "--turns", "2", "--db", str(tmp_path / "x.db"),
                 "--prices", str(tmp_path / "nope.toml")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "nope.toml" in err
    assert not (tmp_path / "x.db").exists(), "nothing ran"


def test_cost_arithmetic():
    price = ModelPrice(input=3.0, output=15.0, cached_input=0.3, cache_write=3.75)
    assert price.cost(1000, 100, 800, 100) == pytest.approx((100 * 3 + 800 * 0.3 + 100 * 3.75 + 100 * 15) / 1e6)
    assert price.cost(None, 5) is None
    assert ModelPrice(input=1.0, output=1.0).cost(10, 0, 10) == pytest.approx(10 / 1e6)   # no cached price
    assert TokenTotals(turns=2).cost(price) is None
    assert PriceTable().for_model("x") is None
    assert fmt_cost(0.01234) == "$0.0123" and fmt_cost(1234.5) == "$1,234.50" and fmt_cost(None) == "no price"


# ---- the TUI's status bar -----------------------------------------------------------------------------

def bar_text(records, model="test-model"):
    from lhe_tui.core.events import RunStarted, TurnFinished
    from lhe_tui.ui.feed import RunModel
    from lhe_tui.ui.widgets.status_bar import SourceInfo, StatusBar

    run = RunModel()
    run.apply(RunStarted("s1", {"model": model, "provider": "openai", "mode": "direct", "k": 1}, {}, (("a",),),
                         f"openai:{model}", False))
    for record in records:
        run.apply(TurnFinished(record))
    bar = StatusBar()
    bar._s = lambda name: ""
    return bar.compose_text(run, None, SourceInfo()).plain


def turn_record(turn, **tokens):
    from lhe_tui.core.events import TurnRecord

    return TurnRecord(sample=0, turn=turn, keys=("a",), key_values=(1,), turn_sum=1, gold_sum=turn, seen_previous=0,
                      expected_step=1, raw_reply="", reasoning="", answer_status="ok", model_answer=turn,
                      correct=True, step_correct=True, history_answer=turn, **tokens)


def test_status_bar_shows_the_cost_so_far(monkeypatch, price_file):
    monkeypatch.setenv("LHE_TUI_PRICES", str(price_file))
    counts = dict(tokens_in=1000, tokens_out=20, tokens_cached=600)
    text = bar_text([turn_record(1, **counts), turn_record(2, **counts)])
    assert "tok 2.0k/40" in text and f" · {fmt_cost(2 * (400 * 2 + 600 * 0.5 + 20 * 10) / 1e6)}" in text
    assert "$" not in bar_text([turn_record(1, **counts)], model="unpriced")   # tokens only
    assert "tok not reported" in bar_text([turn_record(1), turn_record(2)])


def test_an_older_store_gets_the_columns_empty(tmp_path):
    """m004 adds the columns; turns stored before keep NULL (not reported), and their sums say so."""
    import shutil
    from pathlib import Path

    from lhe_tui.store.database import open_database
    from lhe_tui.store.queries import session_token_totals

    path = tmp_path / "old.db"
    shutil.copy(Path(__file__).parent / "data" / "store_before_issue13.db", path)
    db = open_database(path)
    sid = db.execute("SELECT id FROM sessions LIMIT 1").fetchone()[0]
    totals = session_token_totals(db, sid)
    assert totals.turns > 0 and totals.cached is None and totals.cache_write is None and totals.reasoning is None
    names = [r[0] for r in db.execute("SELECT name FROM _sqlite_migrations ORDER BY rowid")]
    assert "m004_turn_token_details" in names
