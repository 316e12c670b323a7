"""Provider code against the real openai/anthropic SDKs talking to a local server that speaks the real
streaming wire formats (SSE), including faults."""

import asyncio
import json

import pytest

from lhe_tui.common.errors import ProviderError
from lhe_tui.providers.anthropic_messages import AnthropicProvider
from lhe_tui.providers.base import GenerationSettings, RequestMeta
from lhe_tui.providers.openai_chat import OpenAIChatProvider
from lhe_tui.task.prompts import parse_dictionary
from lhe_tui.testing.fake_llm_server import FakeLLMServer, Fault, ScriptedReply, content_text

MESSAGES = [{"role": "system", "content": "sys"}, {"role": "user", "content": "alpha"}]
META = RequestMeta(0, 1)
CLIENTS = ["direct", "sdk"]  # OpenAIChatProvider's two ways of sending; both face the same server


def openai_provider(server, client, settings=None, **kw):
    return OpenAIChatProvider("m", settings or GenerationSettings(), api_key=kw.pop("api_key", "k"),
                              base_url=server.openai_base_url, client=client, **kw)


def summing_responder(reasoning=None, think_tags=False):
    """A correct model: running sum from the dictionary in the system prompt and the user turns."""

    def respond(body):
        messages = body["messages"]
        system = content_text(body.get("system") or messages[0]["content"])
        dictionary = parse_dictionary(system) or {}
        total = sum(dictionary.get(k.strip(), 0) for m in messages if m["role"] == "user"
                    for k in content_text(m["content"]).split(","))
        text = f"<answer>{total}</answer>"
        if think_tags:
            text = f"<think>adding up to {total}</think>{text}"
        return ScriptedReply(text=text, reasoning=reasoning, prompt_tokens=len(messages) * 10)

    return respond


@pytest.fixture
def server():
    # chunk_delay: each content chunk reaches the client in its own read, as from a model generating
    with FakeLLMServer(lambda body: ScriptedReply(text="<answer>42</answer>", reasoning="I think 42",
                                                  prompt_tokens=17, completion_tokens=5), chunk_delay=0.005) as srv:
        yield srv


@pytest.mark.parametrize("client", CLIENTS)
async def test_openai_streams_text_usage_and_native_reasoning(server, client):
    provider = openai_provider(server, client, GenerationSettings(temperature=0.6, top_p=0.95, max_tokens=64),
                               api_key="sk-test")
    deltas = []
    reply = await provider.complete(MESSAGES, META, lambda kind, text: deltas.append((kind, text)))
    await provider.aclose()
    assert reply.text == "<answer>42</answer>"
    assert reply.reasoning == "I think 42"
    assert (reply.tokens_in, reply.tokens_out) == (17, 5)
    assert len([d for d in deltas if d[0] == "text"]) > 1, "streamed in pieces"
    assert "".join(t for k, t in deltas if k == "reasoning") == "I think 42"
    body = server.requests[-1].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["temperature"] == 0.6 and body["top_p"] == 0.95 and body["max_tokens"] == 64
    assert server.requests[-1].headers["authorization"] == "Bearer sk-test"


@pytest.mark.parametrize("client", CLIENTS)
async def test_openai_sends_what_the_sdk_create_would_send(server, client):
    """Neither client goes through `chat.completions.create()` (its params transform is slow): the request
    must still be the one `create(**request_params)` sends. The SDK client's `post` sends the same headers
    too (bar per-request ids); the direct client sends the ones that matter (auth, content type)."""
    provider = openai_provider(server, client, GenerationSettings(temperature=0.6, top_p=0.95, max_tokens=64),
                               api_key="sk-test")
    await provider.complete(MESSAGES, META)
    ours = server.requests[-1]
    stream = await provider.client.chat.completions.create(**provider.request_params(MESSAGES))
    async for _chunk in stream:
        pass
    await provider.aclose()
    sdk = server.requests[-1]
    assert (ours.method, ours.path, ours.body) == (sdk.method, sdk.path, sdk.body)
    if client == "sdk":
        varying = {"x-stainless-retry-count", "x-stainless-read-timeout", "idempotency-key"}
        assert {k: v for k, v in ours.headers.items() if k not in varying} == \
            {k: v for k, v in sdk.headers.items() if k not in varying}
    else:
        for header in ("authorization", "content-type"):
            assert ours.headers[header] == sdk.headers[header]


@pytest.mark.parametrize("client", CLIENTS)
async def test_deltas_add_up_to_the_reply_in_order(client):
    with FakeLLMServer(lambda body: ScriptedReply(text="<answer>12345</answer>", reasoning="r1r2r3",
                                                  chunks=["<ans", "wer>1", "2345</", "answer>"])) as srv:
        provider = openai_provider(srv, client)
        deltas = []
        reply = await provider.complete(MESSAGES, META, lambda kind, text: deltas.append((kind, text)))
        await provider.aclose()
    assert "".join(t for k, t in deltas if k == "text") == reply.text == "<answer>12345</answer>"
    assert "".join(t for k, t in deltas if k == "reasoning") == "r1r2r3"


def test_chunk_reader_hands_on_the_deltas_of_one_read_merged_by_kind():
    """The direct client flushes once per network read: one TokenDelta per kind instead of one per chunk."""
    from lhe_tui.providers.openai_stream import ChunkReader

    deltas = []
    reader = ChunkReader("openai", lambda kind, text: deltas.append((kind, text)))
    for delta in ({"reasoning_content": "r1"}, {"reasoning_content": "r2"}, {"content": "<ans"},
                  {"content": "wer>7</answer>"}):
        reader.feed({"choices": [{"delta": delta}]})
    assert deltas == []
    reader.flush_deltas()
    reader.feed({"choices": [{"delta": {"content": " "}, "finish_reason": "stop"}]})
    assert deltas == [("reasoning", "r1r2"), ("text", "<answer>7</answer>")]
    reply = reader.reply(0.1)
    assert deltas[-1] == ("text", " ") and reply.text == "<answer>7</answer> " and reply.reasoning == "r1r2"


async def test_direct_client_reuses_connections_and_reads_the_stream_to_its_end():
    """Sequential requests go over one kept-alive connection: the stream is read past [DONE] to its end."""
    with FakeLLMServer(lambda body: ScriptedReply(text="<answer>1</answer>")) as srv:
        provider = openai_provider(srv, "direct")
        for turn in range(5):
            assert (await provider.complete(MESSAGES, RequestMeta(0, turn + 1))).text == "<answer>1</answer>"
        await provider.aclose()
        assert srv.connections_accepted == 1


async def test_openai_client_can_be_chosen_by_environment(server, monkeypatch):
    from lhe_tui.common.errors import ConfigError

    monkeypatch.setenv("LHE_TUI_OPENAI_CLIENT", "sdk")
    assert openai_provider(server, None).client_kind == "sdk"
    monkeypatch.setenv("LHE_TUI_OPENAI_CLIENT", "curl")
    with pytest.raises(ConfigError, match="LHE_TUI_OPENAI_CLIENT='curl': use one of direct, sdk"):
        openai_provider(server, None)
    monkeypatch.delenv("LHE_TUI_OPENAI_CLIENT")
    assert openai_provider(server, None).client_kind == "direct"
    # the direct client speaks to no proxy: where one applies, the SDK (httpx) sends
    for name in ("http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    assert openai_provider(server, None).client_kind == "sdk"
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    assert openai_provider(server, None).client_kind == "direct"


async def test_openai_reasoning_field_and_samples_spread_over_pools():
    """OpenRouter/Ollama name the reasoning delta `reasoning`; samples share out over POOL_SHARDS clients."""
    from lhe_tui.providers.openai_chat import POOL_SHARDS

    with FakeLLMServer(lambda body: ScriptedReply(text="<answer>7</answer>", reasoning="seven",
                                                  reasoning_field="reasoning", prompt_tokens=3,
                                                  completion_tokens=4)) as srv:
        provider = openai_provider(srv, "sdk")
        replies = await asyncio.gather(*(provider.complete(MESSAGES, RequestMeta(i, 1))
                                         for i in range(POOL_SHARDS + 3)))
        clients = list(provider._clients)
        await provider.aclose()
    assert {(r.text, r.reasoning, r.tokens_in, r.tokens_out, r.finish_reason) for r in replies} == \
        {("<answer>7</answer>", "seven", 3, 4, "stop")}
    assert len(clients) == POOL_SHARDS and clients[0] is provider.client
    assert all(c.is_closed() for c in clients)


@pytest.mark.parametrize("client", CLIENTS)
async def test_openai_think_tags_split_from_answer(client):
    with FakeLLMServer(lambda body: ScriptedReply(text="<think>7+5=12</think><answer>12</answer>",
                                                  chunks=["<thi", "nk>7+5", "=12</th", "ink><answer>12</answer>"])) as srv:
        provider = openai_provider(srv, client)
        reply = await provider.complete(MESSAGES, META)
        await provider.aclose()
    assert reply.text == "<answer>12</answer>" and reply.reasoning == "7+5=12"


async def test_openai_thinking_mode_sends_reasoning_effort_to_official_api_only(server):
    provider = OpenAIChatProvider("o-model", GenerationSettings(mode="thinking", reasoning_effort="high"),
                                  api_key="k", base_url=None)
    params = provider.request_params(MESSAGES)
    assert params["reasoning_effort"] == "high"
    await provider.aclose()


async def test_anthropic_streams_thinking_text_and_usage(server):
    provider = AnthropicProvider("claude-x", GenerationSettings(mode="thinking", thinking_budget=1500),
                                 api_key="sk-ant-test", base_url=server.anthropic_base_url)
    deltas = []
    reply = await provider.complete(MESSAGES, META, lambda kind, text: deltas.append(kind))
    await provider.aclose()
    assert reply.text == "<answer>42</answer>" and reply.reasoning == "I think 42"
    assert reply.tokens_in == 17 and reply.tokens_out == 5
    assert "reasoning" in deltas and "text" in deltas
    body = server.requests[-1].body
    # prompt caching (docs/prompt-caching.md): the system prompt and the last message carry a breakpoint
    eph = {"type": "ephemeral"}
    assert body["system"] == [{"type": "text", "text": "sys", "cache_control": eph}]
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "alpha", "cache_control": eph}]}]
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1500}
    assert body["max_tokens"] > 1500 and "temperature" not in body
    headers = server.requests[-1].headers
    assert headers.get("x-api-key") == "sk-ant-test" or headers.get("authorization") == "Bearer sk-ant-test"


@pytest.mark.parametrize("make", ["openai", "openai-sdk", "anthropic"])
@pytest.mark.parametrize("fault, transient, status, needle", [
    (Fault("status", status=401), False, 401, "authentication failed"),
    (Fault("status", status=404), False, 404, "not found"),
    (Fault("status", status=400), False, 400, "bad request"),
    (Fault("status", status=429, retry_after=3), True, 429, "429"),
    (Fault("status", status=503), True, 503, "503"),
    (Fault("cut", after_chunks=1), True, None, ""),
    (Fault("reset"), True, None, ""),
])
async def test_http_failures_become_clear_provider_errors(server, make, fault, transient, status, needle):
    if make.startswith("openai"):
        provider = openai_provider(server, "sdk" if make == "openai-sdk" else "direct")
    else:
        provider = AnthropicProvider("m", GenerationSettings(), api_key="k", base_url=server.anthropic_base_url)
    server.add_faults(fault)
    with pytest.raises(ProviderError) as caught:
        await provider.complete(MESSAGES, META)
    await provider.aclose()
    error = caught.value
    assert error.transient is transient
    assert error.status == status
    assert needle in str(error) and "\n" not in str(error) and str(error).startswith(make.split("-")[0])
    if fault.retry_after:
        assert error.retry_after == pytest.approx(3)


@pytest.mark.parametrize("client", CLIENTS)
async def test_timeout_is_transient(client):
    with FakeLLMServer() as srv:
        srv.add_faults(Fault("hang", seconds=3))
        provider = openai_provider(srv, client, GenerationSettings(timeout=0.3))
        with pytest.raises(ProviderError) as caught:
            await provider.complete(MESSAGES, META)
        await provider.aclose()
    assert caught.value.transient and "timed out" in str(caught.value)


@pytest.mark.parametrize("provider_name", ["openai", "openai-sdk", "anthropic"])
def test_reasoning_is_stored_but_stripped_from_history_sent_back(provider_name):
    from lhe_tui.core.config import RunConfig
    from lhe_tui.core.events import EventBus, TurnFinished
    from lhe_tui.runner.runner import Runner
    from lhe_tui.runs.session import build_task

    config = RunConfig(provider=provider_name.split("-")[0], model="m", turns=3, samples=1, mode="thinking").validate()
    with FakeLLMServer(summing_responder(reasoning="native thoughts", think_tags=True)) as server:
        if provider_name.startswith("openai"):
            provider = openai_provider(server, "sdk" if provider_name == "openai-sdk" else "direct")
        else:
            provider = AnthropicProvider("m", GenerationSettings(), api_key="k", base_url=server.anthropic_base_url)
        events = []
        bus = EventBus()
        bus.subscribe(events.append)
        assert asyncio.run(Runner(config, build_task(config), provider, "t", bus).run()) == "finished"
        bodies = [r.body["messages"] for r in server.requests if r.body]
        sent = json.dumps(bodies)
    records = [e.record for e in events if isinstance(e, TurnFinished)]
    assert all(r.correct for r in records)
    assert all("native thoughts" in r.reasoning and "adding up to" in r.reasoning for r in records)
    assert "<think>" not in sent and "native thoughts" not in sent and "adding up to" not in sent
    assistant = [m["content"] for m in bodies[-1] if m["role"] == "assistant"]
    assert assistant == [f"<answer>{r.model_answer}</answer>" for r in records[:2]]


