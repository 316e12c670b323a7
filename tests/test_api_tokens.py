"""Issue 17 in the notebook API: the cache and reasoning counts and the cost of each turn and of each session
(and sample), "not reported" as None in the records and <NA>/NaN in the DataFrames, never 0, priced by the same
price files as the CLI, and a fork's inherited turns left out of its totals."""

from __future__ import annotations

import json
import sqlite3

import pytest

from lhe_tui.reports import api
from lhe_tui.cli.main import main
from lhe_tui.core.prices import parse_prices
from lhe_tui.testing.fake_llm_server import FakeLLMServer, ScriptedReply

TURNS, SAMPLES = 3, 2
PRICES = """
as_of = "2030-01-01"

[models.test-model]
input = 2.0
cached_input = 0.5
cache_write = 2.5
output = 10.0
"""
# One Anthropic request as the scripted server bills it: 300 uncached + 600 read + 100 written, 20 out.
PER_TURN = (300 * 2.0 + 600 * 0.5 + 100 * 2.5 + 20 * 10.0) / 1e6


def cached(body):
    return ScriptedReply(text="<answer>0</answer>", prompt_tokens=1000, completion_tokens=20, cached_tokens=600,
                         cache_creation_tokens=100)


def no_usage(body):
    return ScriptedReply(text="<answer>0</answer>", stream_usage=False)


@pytest.fixture(autouse=True)
def env(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.delenv("LHE_TUI_PRICES", raising=False)


@pytest.fixture
def store(tmp_path, capsys):
    """Two sessions: anthropic with cache counts, then openai whose server streams no usage."""
    db = tmp_path / "lhe.db"
    for provider, responder in (("anthropic", cached), ("openai", no_usage)):
        with FakeLLMServer(responder) as server:
            url = server.anthropic_base_url if provider == "anthropic" else server.openai_base_url
            assert main(["run", "--headless", "--provider", provider, "--model", "test-model", "--base-url", url,
                         "--turns", str(TURNS), "--samples", str(SAMPLES), "--seed", "2", "--db", str(db)]) == 0
    capsys.readouterr()
    return db


@pytest.fixture
def prices():
    return parse_prices(PRICES, "test prices")


def ids(db):
    """The sessions in the order they were run (api.sessions lists the newest first)."""
    return [info.id for info in reversed(api.sessions(api.open_store(db)))]


def test_turn_records_carry_the_cache_counts_and_cost(store, prices):
    db = api.open_store(store)
    cached_id, bare_id = ids(store)
    rows = api.turns(db, cached_id, prices=prices)
    assert len(rows) == TURNS * SAMPLES
    first = rows[0]
    assert (first.tokens_in, first.tokens_cached, first.tokens_cache_write, first.tokens_out) == (1000, 600, 100, 20)
    assert first.tokens_reasoning is None            # Anthropic reports no reasoning part: not 0
    assert first.cost_usd == pytest.approx(PER_TURN) and first.inherited is False
    bare = api.turns(db, bare_id, prices=prices)
    assert {(r.tokens_in, r.tokens_out, r.tokens_cached, r.cost_usd) for r in bare} == {(None, None, None, None)}
    # no price for the model: counts, but no cost
    assert {r.cost_usd for r in api.turns(db, cached_id, prices=parse_prices("", "empty"))} == {None}


def test_session_and_sample_totals_match_the_cli(store, prices, tmp_path, capsys):
    db = api.open_store(store)
    cached_id, bare_id = ids(store)
    bare, whole = api.tokens(db, prices=prices)     # newest first
    assert (whole.session_id, whole.sample, whole.model, whole.turns) == (cached_id, None, "test-model", 6)
    assert (whole.tokens_in, whole.tokens_cached, whole.tokens_cache_write, whole.tokens_out) == (6000, 3600, 600, 120)
    assert whole.tokens_reasoning is None and whole.turns_not_reported == 0
    assert whole.cost_usd == pytest.approx(PER_TURN * TURNS * SAMPLES)
    assert (bare.tokens_in, bare.tokens_out, bare.cost_usd, bare.turns_not_reported) == (None, None, None, 6)
    per_sample = api.tokens(db, cached_id, by_sample=True, prices=prices)
    assert [t.sample for t in per_sample] == [0, 1]
    assert sum(t.cost_usd for t in per_sample) == pytest.approx(whole.cost_usd)
    assert [t.tokens_in for t in per_sample] == [3000, 3000]
    # the JSON export of the same session, priced by the same file: the same numbers
    price_file = tmp_path / "prices.toml"
    price_file.write_text(PRICES)
    assert main(["export", cached_id, "--db", str(store), "--prices", str(price_file)]) == 0
    summary = json.loads(capsys.readouterr().out)["summary"]
    assert summary["cost_usd"] == pytest.approx(whole.cost_usd) and summary["tokens"]["cached"] == whole.tokens_cached


def test_a_forks_inherited_turns_are_not_in_its_totals(store, prices):
    cached_id = ids(store)[0]
    with sqlite3.connect(store) as conn:
        conn.execute("UPDATE turns SET inherited = 1 WHERE session_id = ? AND turn = 1", [cached_id])
    db = api.open_store(store)
    whole = api.tokens(db, cached_id, prices=prices)[0]
    assert whole.turns == 4 and whole.tokens_in == 4000
    assert whole.cost_usd == pytest.approx(PER_TURN * 4)
    rows = api.turns(db, cached_id, prices=prices)   # the turns themselves are all there, marked
    assert sum(r.inherited for r in rows) == 2 and len(rows) == 6


def test_frames_keep_not_reported_missing_not_zero(store, prices):
    pandas = pytest.importorskip("pandas")
    db = api.open_store(store)
    cached_id, bare_id = ids(store)
    frame = api.tokens_frame(db, prices=prices)
    assert list(frame.columns) == [f for f in api.SessionTokens.__dataclass_fields__]
    assert str(frame["tokens_in"].dtype) == "Int64"             # whole numbers, not floats
    assert frame.loc[1, "tokens_cached"] == 3600 and frame.loc[1, "cost_usd"] == pytest.approx(PER_TURN * 6)
    assert pandas.isna(frame.loc[0, "tokens_in"]) and pandas.isna(frame.loc[0, "cost_usd"])
    assert frame["tokens_reasoning"].isna().all()
    turns = api.turns_frame(db, bare_id, prices=prices)
    assert turns["tokens_in"].isna().all() and turns["cost_usd"].isna().all()
    assert not (turns["tokens_in"].fillna(-1) == 0).any()
    turns = api.turns_frame(db, cached_id, prices=prices)
    assert turns["cost_usd"].sum() == pytest.approx(PER_TURN * 6)
    assert list(api.tokens_frame(db, cached_id, by_sample=True, prices=prices)["sample"]) == [0, 1]


def test_api_prices_from_the_price_files_by_default(store, monkeypatch, tmp_path):
    db = api.open_store(store)
    assert api.tokens(db)[1].cost_usd is None                   # test-model is in no shipped file
    price_file = tmp_path / "prices.toml"
    price_file.write_text(PRICES)
    monkeypatch.setenv("LHE_TUI_PRICES", str(price_file))       # what --prices sets
    assert api.tokens(db)[1].cost_usd == pytest.approx(PER_TURN * 6)
    assert api.turns(db, "latest")[0].cost_usd is None           # no counts: no cost, not $0
