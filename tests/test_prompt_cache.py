"""Prompt caching (issue 17): Anthropic cache_control breakpoints through the real anthropic SDK against a
local server that bills like Anthropic's prompt cache; --no-cache; the notice when the history policy
rewrites earlier messages (docs/prompt-caching.md)."""

import json
import sqlite3

import pytest

from lhe_tui.cli.main import main
from lhe_tui.core.config import Injection, RunConfig
from lhe_tui.common.errors import ProviderError
from lhe_tui.providers.anthropic_messages import AnthropicProvider
from lhe_tui.providers.base import GenerationSettings, RequestMeta
from lhe_tui.providers.factory import generation_settings
from lhe_tui.task.prompts import parse_dictionary
from lhe_tui.testing.fake_llm_server import AnthropicPromptCache, FakeLLMServer, ScriptedReply, approx_tokens

EPH = {"type": "ephemeral"}
SYSTEM = "You add numbers. " * 40


def summing(body):
    system = body.get("system") or ""
    if isinstance(system, list):
        system = "".join(block["text"] for block in system)
    values = parse_dictionary(system) or {}
    users = [m["content"] for m in body["messages"] if m["role"] == "user"]
    users = [c if isinstance(c, str) else "".join(b["text"] for b in c) for c in users]
    return ScriptedReply(text=f"<answer>{sum(values.get(k.strip(), 0) for u in users for k in u.split(','))}</answer>")


@pytest.fixture
def server():
    # no minimum cacheable length: these tests follow the breakpoints from the first turn on
    with FakeLLMServer(summing, anthropic_cache=True, cache_min_tokens=0) as srv:
        yield srv


def conversation(turns):
    """The message lists of `turns` successive requests, as the runner builds them (the history grows)."""
    history = [{"role": "system", "content": SYSTEM}]
    out = []
    for t in range(1, turns + 1):
        history.append({"role": "user", "content": f"key{t}"})
        out.append(list(history))
        history.append({"role": "assistant", "content": f"<answer>{t}</answer>"})
    return out


def expected_body_messages(messages, cache):
    chat = [dict(m) for m in messages[1:]]
    if cache:
        chat[-1] = {"role": chat[-1]["role"], "content": [{"type": "text", "text": chat[-1]["content"],
                                                           "cache_control": EPH}]}
    return chat


async def test_breakpoints_in_every_request_and_the_cache_bills_the_growing_prefix(server):
    provider = AnthropicProvider("claude-x", GenerationSettings(), api_key="sk-ant-test",
                                 base_url=server.anthropic_base_url)
    requests = conversation(4)
    replies = [await provider.complete(messages, RequestMeta(0, t)) for t, messages in enumerate(requests, 1)]
    await provider.aclose()
    recorded = [r for r in server.requests if r.path == "/v1/messages"]
    assert len(recorded) == 4
    for messages, request in zip(requests, recorded):
        # the exact JSON on the wire: the system prompt as one cached block, the last message as one
        assert request.body["system"] == [{"type": "text", "text": SYSTEM, "cache_control": EPH}]
        assert request.body["messages"] == expected_body_messages(messages, cache=True)
        assert json.dumps(request.body).count('"cache_control"') == 2
    system = approx_tokens(SYSTEM)
    u = [r.usage for r in recorded]
    # turn 1: everything up to the last breakpoint is written; nothing after it
    assert u[0] == {"input_tokens": 0, "cache_read_input_tokens": 0,
                    "cache_creation_input_tokens": system + approx_tokens("key1")}
    # turn 2 reads turn 1's prefix (2 blocks back, within the lookback) and writes only the new turn's 2 blocks
    assert u[1]["cache_read_input_tokens"] == system + approx_tokens("key1")
    assert u[1]["cache_creation_input_tokens"] == approx_tokens("<answer>1</answer>") + approx_tokens("key2")
    for prev, now in zip(u[1:], u[2:]):
        assert now["cache_read_input_tokens"] == prev["cache_read_input_tokens"] + prev["cache_creation_input_tokens"]
    # what the server billed comes back through the provider: tokens_in is all the input, cached parts
    # included (the token accounting's convention), and the cached and cache-written parts apart
    assert [r.tokens_in for r in replies] == [x["input_tokens"] + x["cache_read_input_tokens"]
                                              + x["cache_creation_input_tokens"] for x in u]
    assert [r.tokens_cached for r in replies] == [x["cache_read_input_tokens"] for x in u]
    assert [r.tokens_cache_write for r in replies] == [x["cache_creation_input_tokens"] for x in u]
    assert all(r.text.startswith("<answer>") for r in replies)


async def test_no_cache_sends_no_breakpoint_and_pays_full_input(server):
    provider = AnthropicProvider("claude-x", GenerationSettings(prompt_cache=False), api_key="k",
                                 base_url=server.anthropic_base_url)
    requests = conversation(3)
    for t, messages in enumerate(requests, 1):
        await provider.complete(messages, RequestMeta(0, t))
    await provider.aclose()
    for messages, request in zip(requests, server.requests):
        assert request.body["system"] == SYSTEM
        assert request.body["messages"] == expected_body_messages(messages, cache=False)
        assert "cache_control" not in json.dumps(request.body)
        total = sum(approx_tokens(m["content"]) for m in messages)
        assert request.usage == {"input_tokens": total, "cache_read_input_tokens": 0,
                                 "cache_creation_input_tokens": 0}


def test_request_params_leaves_the_callers_messages_alone_and_reuses_the_system_block():
    provider = AnthropicProvider("m", GenerationSettings(), api_key="k")
    first, second = conversation(2)
    snapshot = json.dumps(second)
    a, b = provider.request_params(first), provider.request_params(second)
    assert json.dumps(second) == snapshot                     # the runner's dicts are not changed
    assert a["system"] is b["system"]                         # built once per system prompt
    assert b["messages"][0] is second[1]                      # earlier messages sent as they are
    # system messages elsewhere than first still join into the system prompt
    odd = provider.request_params([{"role": "user", "content": "a"}, {"role": "system", "content": "s"}])
    assert odd["system"] == [{"type": "text", "text": "s", "cache_control": EPH}]
    assert odd["messages"] == [{"role": "user", "content": [{"type": "text", "text": "a", "cache_control": EPH}]}]


def test_cache_model_lookback_window_rewrite_and_breakpoint_limit():
    cache = AnthropicPromptCache(min_tokens=0)

    def body(contents, marks, system="S" * 400):
        msgs = [{"role": "user" if i % 2 == 0 else "assistant",
                 "content": [{"type": "text", "text": c, **({"cache_control": EPH} if i in marks else {})}]}
                for i, c in enumerate(contents)]
        return {"system": [{"type": "text", "text": system, "cache_control": EPH}], "messages": msgs}

    history = [f"m{i}" * 10 for i in range(30)]
    cache.bill(body(history[:1], {0}))
    # 24 blocks later, the one breakpoint written before is outside the 20-block lookback: only the system hits
    far = cache.bill(body(history[:25], {24}))
    assert far["cache_read_input_tokens"] == 100
    near = cache.bill(body(history[:27], {26}))               # 2 blocks after the last one: read all of it
    assert near["cache_read_input_tokens"] == 100 + sum(map(approx_tokens, history[:25]))
    # a sliding window changes the first message: only the system prompt is read
    window = cache.bill(body(history[1:28], {26}))
    assert window["cache_read_input_tokens"] == 100
    # what follows the last breakpoint is plain input
    tail = cache.bill(body(history[:28], {26}))
    assert tail["input_tokens"] == approx_tokens(history[27]) and tail["cache_creation_input_tokens"] == 0
    with pytest.raises(ValueError, match="maximum of 4 blocks with cache_control"):
        cache.bill(body(history[:6], {0, 1, 2, 3}))


async def test_more_than_four_breakpoints_is_a_400_like_the_real_api(server):
    provider = AnthropicProvider("m", GenerationSettings(), api_key="k", base_url=server.anthropic_base_url)
    params = provider.request_params(conversation(1)[0])
    params["messages"] = [{"role": "user", "content": [{"type": "text", "text": f"x{i}", "cache_control": EPH}
                                                       for i in range(4)]}]
    provider.request_params = lambda messages: params          # type: ignore[method-assign]
    with pytest.raises(ProviderError, match="400"):
        await provider.complete([], RequestMeta(0, 1))
    await provider.aclose()


def test_no_cache_is_a_run_option_stored_with_the_session():
    from lhe_tui.cli.args import build_parser
    from lhe_tui.runs.run_flags import config_from_args

    parse = build_parser().parse_args
    on = config_from_args(parse(["run", "--provider", "anthropic", "--model", "c"]))
    off = config_from_args(parse(["run", "--provider", "anthropic", "--model", "c", "--no-cache"]))
    assert on.prompt_cache is True and off.prompt_cache is False
    assert RunConfig.from_dict(off.to_dict()).prompt_cache is False
    assert RunConfig.from_dict({k: v for k, v in on.to_dict().items() if k != "prompt_cache"}).prompt_cache
    assert generation_settings(off).prompt_cache is False and generation_settings(on).prompt_cache is True


@pytest.mark.parametrize("config, needle", [
    (RunConfig(provider="openai", model="m", window=5), "--window 5"),
    (RunConfig(provider="anthropic", model="m", window=5), "--window 5"),
    (RunConfig(provider="local", window=1), "--window 1"),
    (RunConfig(provider="openai", model="m", inject_at=(Injection(3),)), None),   # answer 3 is not sent yet
    (RunConfig(provider="anthropic", model="m", window=5, prompt_cache=False), None),
    (RunConfig(provider="sim", window=5), None),
    (RunConfig(provider="openai", model="m"), None),
    (RunConfig(provider="openai", model="m", induced_error_rate=0.5, heal=True), None),  # decided once: stable
])
def test_prefix_cache_notice(config, needle):
    notice = config.prefix_cache_notice()
    if needle is None:
        assert notice is None
    else:
        assert needle in notice and "\n" not in notice and "docs/prompt-caching.md" in notice


@pytest.mark.parametrize("extra", [[], ["--no-cache"], ["--window", "2"]])
def test_headless_anthropic_run_end_to_end(server, tmp_path, capsys, monkeypatch, extra):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key")
    db = str(tmp_path / "lhe.db")
    code = main(["run", "--headless", "--provider", "anthropic", "--model", "claude-x", "--base-url",
                 server.anthropic_base_url, "--turns", "6", "--samples", "1", "--db", db, *extra])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert ("prompt cache: --window 2" in err) == (extra == ["--window", "2"])
    with sqlite3.connect(db) as conn:
        config = json.loads(conn.execute("SELECT config_json FROM sessions").fetchone()[0])
        correct = conn.execute("SELECT SUM(correct) FROM turns").fetchone()[0]
    assert correct == 6 or "--window" in extra    # the summing fake sees only the window's keys
    assert config["prompt_cache"] is ("--no-cache" not in extra)
    bodies = [r.body for r in server.requests if r.path == "/v1/messages"]
    assert len(bodies) == 6
    marks = [json.dumps(b).count('"cache_control"') for b in bodies]
    assert marks == ([0] * 6 if "--no-cache" in extra else [2] * 6)
    reads = [r.usage["cache_read_input_tokens"] for r in server.requests if r.path == "/v1/messages"]
    if not extra:
        assert reads[0] == 0 and all(b > a for a, b in zip(reads[1:], reads[2:]))
    elif extra == ["--window", "2"]:
        system = approx_tokens(bodies[0]["system"][0]["text"])
        assert reads[-1] == system        # past the window only the system prompt is read from cache
