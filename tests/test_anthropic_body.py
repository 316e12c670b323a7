"""The Anthropic request body (issue 26): encoded from the runner's own message list without copying it or
reading it all again each turn, and still byte for byte what `messages.create(**request_params(...))` sends
for the whole request built anew (tests/test_providers.py ties request_params to the SDK)."""

import asyncio
import json

import pytest

from lhe_tui.core.config import Injection, RunConfig
from lhe_tui.core.events import EventBus
from lhe_tui.providers.anthropic_messages import AnthropicProvider
from lhe_tui.providers.base import GenerationSettings
from lhe_tui.runner.runner import Runner
from lhe_tui.runs.session import build_task
from lhe_tui.testing.fake_llm_server import FakeLLMServer, ScriptedReply


def fresh_body(provider: AnthropicProvider, messages: list[dict]) -> bytes:
    """The body of create(**request_params(messages)), with its extra_body merged as the SDK does."""
    params = provider.request_params([dict(m) for m in messages])   # copies: nothing cached is reused
    chat = params.pop("messages")
    extra = params.pop("extra_body", None) or {}
    return json.dumps({"messages": chat, **params, **extra}).encode()


class Counted(dict):
    """A message that counts how often its fields are read by key."""

    reads = 0

    def __getitem__(self, key):
        Counted.reads += 1
        return super().__getitem__(key)


@pytest.mark.parametrize("cache", [True, False])
def test_a_growing_history_is_read_once_and_sent_as_a_fresh_encoding_would_be(cache):
    """As the runner's MessageLog hands them: one list, grown at its end, its last (the pending user turn)
    replaced once answered. Reading every message each request (what this replaced) is 2t reads at turn t."""
    provider = AnthropicProvider("m", GenerationSettings(prompt_cache=cache, temperature=0.5), api_key="k")
    messages = [Counted(role="system", content="the dictionary")]
    per_request = []
    for turn in range(1, 201):
        messages.append(Counted(role="user", content=f"key{turn}"))
        Counted.reads = 0
        body = provider.request_body(0, messages)
        per_request.append(Counted.reads)
        assert body == fresh_body(provider, messages), turn
        messages[-1] = Counted(role="user", content=f"key{turn}")   # the answered turn, rendered anew
        messages.append(Counted(role="assistant", content=f"<answer>{turn}</answer>"))
    assert max(per_request[1:]) <= 10, per_request[:5]   # 8: the first, the new ones, the last
    assert provider._bodies.reencoded == 0


def test_a_system_message_after_the_first_still_joins_the_system_prompt():
    """The reading that is skipped is only of messages already read: a system message that comes later, in
    the same list or in a new one that starts with the same messages, is still found."""
    provider = AnthropicProvider("m", GenerationSettings(), api_key="k")
    messages = [{"role": "system", "content": "S"}] + [{"role": "user" if i % 2 else "assistant", "content": f"m{i}"}
                                                       for i in range(1, 8)]
    # a rebuilt list (an injection): the same first message, new objects after it, a system message among
    # those already read in the list before
    rebuilt = messages[:1] + [dict(m) for m in messages[1:3]] + [{"role": "system", "content": "rebuilt"}] + [
        dict(m) for m in messages[3:]] + [{"role": "user", "content": "u"}]
    for later, found in ((messages + [{"role": "system", "content": "later"}, {"role": "user", "content": "u"}],
                          "later"),
                         (messages[:4] + [{"role": "system", "content": "shorter"}], "shorter"),
                         (rebuilt, "rebuilt")):
        provider.request_body(0, messages)
        body = json.loads(provider.request_body(0, later))
        assert body == json.loads(fresh_body(provider, later))
        assert found in json.dumps(body["system"])
        assert all(m["role"] != "system" for m in body["messages"])


def test_a_list_with_no_system_message_sends_every_message_and_an_empty_system_prompt():
    provider = AnthropicProvider("m", GenerationSettings(prompt_cache=False), api_key="k")
    chat = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]
    for _ in range(2):   # the second time with the sample seen before
        body = json.loads(provider.request_body(0, chat))
        assert body["system"] == "" and body["messages"] == chat


def test_the_bodies_sent_equal_a_fresh_encoding_under_every_policy_injection_and_cache_setting():
    """Through the SDK against the local server, a whole run per setting; each body the server got is compared
    with the request built anew from the runner's history (HistoryPolicy.messages: neither the MessageLog's
    list nor the encoder's cached JSON)."""

    def answer(body):
        n = len(body["messages"])
        return ScriptedReply(text=["<answer>3</answer>", "no tag", f"<answer>{n}</answer>", ""][n % 4])

    with FakeLLMServer(answer) as server:
        for extra in ({}, {"prompt_cache": False}, {"window": 2}, {"heal": True}, {"induced_error_rate": 0.5},
                      {"window": 1, "prompt_cache": False}):
            config = RunConfig(provider="anthropic", model="m", base_url=server.anthropic_base_url, turns=10,
                               samples=2, concurrency=2, seed=3, max_retries=0,
                               inject_at=(Injection(turn=4, offset=5),), **extra).validate()
            settings = GenerationSettings(prompt_cache=config.prompt_cache)
            provider = AnthropicProvider("m", settings, api_key="k", base_url=server.anthropic_base_url)
            runner = Runner(config, build_task(config), provider, "t", EventBus())
            mismatches, checked = [], [0]
            request_body = provider.request_body

            def checked_body(sample, messages):
                history = runner.history[sample]
                keys = runner.task.samples[sample].turn_keys(history[-1].turn + 1 if history else 1)
                body = request_body(sample, messages)
                if body != fresh_body(provider, runner.policy.messages(runner.system, history, keys)):
                    mismatches.append(f"sample {sample} turn {len(history) + 1}")
                checked[0] += 1
                return body

            provider.request_body = checked_body   # type: ignore[method-assign]

            async def go():
                try:
                    return await runner.run()
                finally:
                    await provider.aclose()

            assert asyncio.run(go()) == "finished", extra
            assert mismatches == [], extra
            assert checked[0] >= 10 * 2, extra
