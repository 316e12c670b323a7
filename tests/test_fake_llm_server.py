"""The fake LLM server, driven by the real openai / anthropic SDKs over a real socket."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import anthropic
import httpx2
import openai
import pytest

from lhe_tui.testing.fake_llm_server import (
    Fault,
    FakeLLMServer,
    RecordedRequest,
    ScriptedReply,
)

MSGS = [{"role": "user", "content": "What is 1+1?"}]


@pytest.fixture
def server():
    srv = FakeLLMServer().start()
    try:
        yield srv
    finally:
        srv.stop()


def oai(srv: FakeLLMServer, **kw) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=srv.openai_base_url, api_key="sk-test", max_retries=0, **kw)


def ant(srv: FakeLLMServer, **kw) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=srv.anthropic_base_url, api_key="sk-test", max_retries=0, **kw)


async def oai_stream(client: openai.AsyncOpenAI, **kw) -> list:
    stream = await client.chat.completions.create(model="m", messages=MSGS, stream=True, **kw)
    return [chunk async for chunk in stream]


# ----------------------------------------------------------------------------- OpenAI


async def test_openai_stream_chunks_usage_and_reasoning(server: FakeLLMServer) -> None:
    server.responder = lambda body: ScriptedReply(
        text="<answer>42</answer>", chunks=["<answer>", "42", "</answer>"], reasoning="add them up", prompt_tokens=17
    )
    async with oai(server) as client:
        chunks = await oai_stream(client, stream_options={"include_usage": True})

    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert deltas[0].role == "assistant"
    texts = [d.content for d in deltas if d.content]
    assert texts == ["<answer>", "42", "</answer>"]
    reasoning = [d.model_extra["reasoning_content"] for d in deltas if (d.model_extra or {}).get("reasoning_content")]
    assert "".join(reasoning) == "add them up"
    assert len(reasoning) == 3  # 4-character pieces
    assert getattr(deltas[1], "reasoning_content") == "add "
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"

    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.prompt_tokens == 17
    assert last.usage.completion_tokens == 6  # default: one token per chunk (3 text + 3 reasoning)
    assert last.usage.total_tokens == 23
    assert last.usage.completion_tokens_details.reasoning_tokens == 3
    assert all(c.usage is None for c in chunks[:-1])


async def test_openai_stream_without_include_usage_and_reasoning_field(server: FakeLLMServer) -> None:
    server.responder = lambda body: ScriptedReply(
        text="abcdefghij", reasoning="hmm", reasoning_field="reasoning", completion_tokens=99
    )
    async with oai(server) as client:
        chunks = await oai_stream(client)
    assert all(c.usage is None for c in chunks)
    deltas = [c.choices[0].delta for c in chunks]
    assert [d.content for d in deltas if d.content] == ["abcd", "efgh", "ij"]
    assert [d.model_extra.get("reasoning") for d in deltas if d.model_extra.get("reasoning")] == ["hmm"]
    assert not any("reasoning_content" in (d.model_extra or {}) for d in deltas)


async def test_openai_non_streaming(server: FakeLLMServer) -> None:
    server.responder = lambda body: ScriptedReply(text="<answer>7</answer>", reasoning="r", prompt_tokens=5)
    async with oai(server) as client:
        resp = await client.chat.completions.create(model="my-model", messages=MSGS)
    assert resp.object == "chat.completion"
    assert resp.model == "my-model"
    assert resp.choices[0].message.content == "<answer>7</answer>"
    assert resp.choices[0].message.reasoning_content == "r"
    assert resp.choices[0].finish_reason == "stop"
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (5, 6)


async def test_default_responder_and_models(server: FakeLLMServer) -> None:
    async with oai(server) as oc, ant(server) as ac:
        resp = await oc.chat.completions.create(model="m", messages=MSGS)
        assert resp.choices[0].message.content == "<answer>0</answer>"
        assert [m.id for m in (await oc.models.list()).data] == ["fake-model"]
        assert [m.id for m in (await ac.models.list()).data] == ["fake-model"]


# ----------------------------------------------------------------------------- Anthropic


async def test_anthropic_stream_events_usage_and_thinking(server: FakeLLMServer) -> None:
    server.responder = lambda body: ScriptedReply(
        text="<answer>5</answer>", chunks=["<answer>", "5</answer>"], reasoning="two plus three", prompt_tokens=31
    )
    async with ant(server) as client:
        stream = await client.messages.create(model="claude-x", max_tokens=64, messages=MSGS, stream=True)
        events = [ev async for ev in stream]

    types = [e.type for e in events]
    assert types[0] == "message_start" and types[-2:] == ["message_delta", "message_stop"]
    assert events[0].message.usage.input_tokens == 31
    assert events[0].message.model == "claude-x"
    starts = [e.content_block.type for e in events if e.type == "content_block_start"]
    assert starts == ["thinking", "text"]
    deltas = [e.delta for e in events if e.type == "content_block_delta"]
    assert "".join(d.thinking for d in deltas if d.type == "thinking_delta") == "two plus three"
    assert [d.text for d in deltas if d.type == "text_delta"] == ["<answer>", "5</answer>"]
    assert len([d for d in deltas if d.type == "signature_delta"]) == 1
    assert types.count("content_block_stop") == 2
    final = events[-2]
    assert final.delta.stop_reason == "end_turn"
    assert final.usage.output_tokens == 2 + 4  # text chunks + reasoning chunks


async def test_anthropic_stream_helper_final_message(server: FakeLLMServer) -> None:
    server.responder = lambda body: ScriptedReply(text="hello there", reasoning="think", completion_tokens=12)
    async with ant(server) as client:
        async with client.messages.stream(model="m", max_tokens=64, messages=MSGS) as stream:
            text = [t async for t in stream.text_stream]
            msg = await stream.get_final_message()
    assert text == ["hell", "o th", "ere"]
    assert [b.type for b in msg.content] == ["thinking", "text"]
    assert msg.content[0].thinking == "think" and msg.content[0].signature
    assert msg.content[1].text == "hello there"
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (10, 12)
    assert msg.stop_reason == "end_turn"


async def test_anthropic_non_streaming(server: FakeLLMServer) -> None:
    server.responder = lambda body: ScriptedReply(text="<answer>3</answer>", prompt_tokens=8, completion_tokens=4)
    async with ant(server) as client:
        msg = await client.messages.create(model="m", max_tokens=64, messages=MSGS)
    assert msg.type == "message"
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == "<answer>3</answer>"
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (8, 4)


# ----------------------------------------------------------------------------- recording


async def test_requests_are_recorded_and_responder_sees_body(server: FakeLLMServer) -> None:
    seen: list[dict] = []

    def responder(body: dict) -> ScriptedReply:
        seen.append(body)
        return ScriptedReply(text="ok")

    server.responder = responder
    t0 = time.monotonic()
    async with oai(server) as oc, ant(server) as ac:
        await oai_stream(oc, temperature=0.0)
        await ac.messages.create(model="claude", max_tokens=9, messages=MSGS, system="be brief")

    assert [b["model"] for b in seen] == ["m", "claude"]
    reqs = server.requests
    assert all(isinstance(r, RecordedRequest) for r in reqs)
    assert [(r.method, r.path) for r in reqs] == [("POST", "/v1/chat/completions"), ("POST", "/v1/messages")]
    assert reqs[0].body == {"model": "m", "messages": MSGS, "stream": True, "temperature": 0.0}
    assert reqs[0].headers["authorization"] == "Bearer sk-test"
    assert reqs[1].body["system"] == "be brief" and reqs[1].body["max_tokens"] == 9
    # anthropic 2.x sends the api key as a bearer token (older releases used x-api-key)
    assert reqs[1].headers["authorization"] == "Bearer sk-test"
    assert "anthropic-version" in reqs[1].headers
    assert t0 <= reqs[0].time <= reqs[1].time <= time.monotonic()
    assert all(r.fault is None for r in reqs)


async def test_keep_alive_reuses_one_connection(server: FakeLLMServer) -> None:
    async with oai(server) as oc:
        for _ in range(3):
            await oai_stream(oc, stream_options={"include_usage": True})
        await oc.chat.completions.create(model="m", messages=MSGS)
    async with ant(server) as ac:
        for _ in range(3):
            async with ac.messages.stream(model="m", max_tokens=5, messages=MSGS) as s:
                await s.get_final_message()
    assert len(server.requests) == 7
    assert server.connections_accepted == 2


# ----------------------------------------------------------------------------- faults


async def test_status_faults_are_fifo_and_in_provider_shape(server: FakeLLMServer) -> None:
    server.add_faults(
        Fault("status", status=429, retry_after=2),
        Fault("status", status=500),
        Fault("status", status=429, retry_after=0.5),
        Fault("status", status=500),
    )
    assert server.pending_faults == 4
    async with oai(server) as oc, ant(server) as ac:
        await oc.models.list()  # not a completion endpoint: consumes no fault
        with pytest.raises(openai.RateLimitError) as rl:
            await oai_stream(oc)
        assert rl.value.response.headers["retry-after"] == "2"
        assert rl.value.code == "rate_limit_exceeded" and rl.value.type == "requests"
        assert rl.value.body == json.loads(rl.value.response.text)["error"]

        with pytest.raises(openai.InternalServerError) as ise:
            await oc.chat.completions.create(model="m", messages=MSGS)
        assert ise.value.status_code == 500 and ise.value.type == "server_error"
        assert "retry-after" not in ise.value.response.headers

        with pytest.raises(anthropic.RateLimitError) as arl:
            await ac.messages.create(model="m", max_tokens=5, messages=MSGS, stream=True)
        assert arl.value.response.headers["retry-after"] == "0.5"
        assert arl.value.body["type"] == "error" and arl.value.body["error"]["type"] == "rate_limit_error"
        assert arl.value.body["request_id"] == arl.value.response.headers["request-id"]

        with pytest.raises(anthropic.InternalServerError) as aise:
            await ac.messages.create(model="m", max_tokens=5, messages=MSGS)
        assert aise.value.body["error"]["type"] == "api_error"

        # queue drained: the next request is answered normally, on the same connection
        resp = await oc.chat.completions.create(model="m", messages=MSGS)
        assert resp.choices[0].message.content == "<answer>0</answer>"
    assert server.pending_faults == 0
    assert [r.fault.status if r.fault else None for r in server.requests] == [None, 429, 500, 429, 500, None]


async def test_sdk_retries_honour_retry_after(server: FakeLLMServer) -> None:
    server.add_faults(Fault("status", status=503, retry_after=0.2))
    async with openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="sk-test", max_retries=1) as oc:
        chunks = await oai_stream(oc)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "<answer>0</answer>"
    first, second = server.requests
    assert first.fault is not None and second.fault is None
    assert second.time - first.time >= 0.2


# A cut stream must never end silently. Which exception an SDK raises for it is the SDK's business and has
# changed between releases (anthropic 2.17 wraps httpx2.RemoteProtocolError in APIConnectionError; earlier
# 2.x raised the transport error bare), so these tests accept either and pin only what we rely on: the
# events that arrived are delivered, an error follows, and *our* providers turn it into a transient
# ProviderError (retried), whatever the SDK raised.
CUT_ERRORS = (openai.APIConnectionError, anthropic.APIConnectionError, httpx2.TransportError)


async def test_cut_stream_openai(server: FakeLLMServer) -> None:
    server.add_faults(Fault("cut", after_chunks=2))
    got: list[str] = []
    async with oai(server) as oc:
        stream = await oc.chat.completions.create(model="m", messages=MSGS, stream=True)
        with pytest.raises(CUT_ERRORS):
            async for chunk in stream:
                got.append(chunk.choices[0].delta.content)
        # the client recovers on a fresh connection
        assert (await oc.chat.completions.create(model="m", messages=MSGS)).choices[0].message.content
    assert got == ["", "<ans", "wer>"]  # role chunk + 2 content chunks, no finish chunk


async def test_cut_stream_anthropic(server: FakeLLMServer) -> None:
    server.add_faults(Fault("cut", after_chunks=1), Fault("cut", after_chunks=0))
    types: list[str] = []
    async with ant(server) as ac:
        stream = await ac.messages.create(model="m", max_tokens=5, messages=MSGS, stream=True)
        with pytest.raises(CUT_ERRORS):
            async for ev in stream:
                types.append(ev.type)
        assert types == ["message_start", "content_block_start", "content_block_delta"]

        # the high-level stream helper behaves the same
        with pytest.raises(CUT_ERRORS):
            async with ac.messages.stream(model="m", max_tokens=5, messages=MSGS) as s:
                await s.get_final_message()
        assert (await ac.messages.create(model="m", max_tokens=5, messages=MSGS)).content[0].text


@pytest.mark.parametrize("provider_name", ["openai-direct", "openai-sdk", "anthropic"])
async def test_a_cut_stream_is_a_transient_provider_error(server: FakeLLMServer, provider_name: str) -> None:
    """Our behaviour, on every client: a cut stream is retried, never an internal error or a silent end."""
    from lhe_tui.common.errors import ProviderError
    from lhe_tui.providers.anthropic_messages import AnthropicProvider
    from lhe_tui.providers.base import GenerationSettings, RequestMeta
    from lhe_tui.providers.openai_chat import OpenAIChatProvider

    settings = GenerationSettings(timeout=5.0)
    if provider_name == "anthropic":
        provider = AnthropicProvider("m", settings, api_key="k", base_url=server.anthropic_base_url)
        server.add_faults(Fault("cut", after_chunks=1))
    else:
        provider = OpenAIChatProvider("m", settings, api_key="k", base_url=server.openai_base_url,
                                      client=provider_name.removeprefix("openai-"))
        server.add_faults(Fault("cut", after_chunks=2))
    try:
        with pytest.raises(ProviderError) as info:
            await provider.complete(MSGS, RequestMeta(0, 1))
        assert info.value.transient, info.value
        assert "internal error" not in str(info.value)
        assert (await provider.complete(MSGS, RequestMeta(0, 1, 1))).text   # and the retry goes through
    finally:
        await provider.aclose()


async def test_cut_non_streaming_reset_and_hang(server: FakeLLMServer) -> None:
    server.add_faults(Fault("cut"), Fault("reset"), Fault("reset"), Fault("hang", seconds=5.0))
    async with oai(server) as oc, ant(server) as ac:
        # a cut non-streaming body (half of the Content-Length) and a reset both are connection errors
        with pytest.raises(anthropic.APIConnectionError):
            await ac.messages.create(model="m", max_tokens=5, messages=MSGS)
        with pytest.raises(openai.APIConnectionError):
            await oai_stream(oc)
        with pytest.raises(anthropic.APIConnectionError):
            await ac.messages.create(model="m", max_tokens=5, messages=MSGS, stream=True)
        with pytest.raises(openai.APITimeoutError):   # not the reply the server sends after 5 s
            await oc.chat.completions.create(model="m", messages=MSGS, timeout=0.3)
    assert [r.fault.kind for r in server.requests] == ["cut", "reset", "reset", "hang"]
    # stop() below (fixture) must not wait for the hang to finish


# ----------------------------------------------------------------------------- load & lifecycle


async def test_64_concurrent_streams_with_latency() -> None:
    """Served concurrently: requests are read while earlier ones wait out their latency (its time:
    bench/suite_timings.py)."""
    n = 64
    with FakeLLMServer(
        lambda b: ScriptedReply(text=f"<answer>{b['messages'][0]['content']}</answer>"),
        latency=1.0,
        chunk_delay=0.01,
    ) as srv:
        async with oai(srv) as oc, ant(srv) as ac:

            async def one(i: int) -> tuple[str, float]:
                t0 = time.monotonic()
                msgs = [{"role": "user", "content": str(i)}]
                first = None
                parts = []
                if i % 2:
                    stream = await oc.chat.completions.create(model="m", messages=msgs, stream=True)
                    async for c in stream:
                        if c.choices and c.choices[0].delta.content:
                            first = first or time.monotonic() - t0
                            parts.append(c.choices[0].delta.content)
                else:
                    async with ac.messages.stream(model="m", max_tokens=9, messages=msgs) as s:
                        async for t in s.text_stream:
                            first = first or time.monotonic() - t0
                            parts.append(t)
                return "".join(parts), first

            results = await asyncio.gather(*(one(i) for i in range(n)))
    assert [r[0] for r in results] == [f"<answer>{i}</answer>" for i in range(n)]
    assert all(r[1] >= 1.0 for r in results)  # latency before the first byte
    assert len(srv.requests) == n
    # one after another, the second request would be read once the first was answered, 1 s later
    times = sorted(r.time for r in srv.requests)
    assert times[1] - times[0] < 1.0
    assert srv.connections_accepted >= 32


def _bind(port: int) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # no SO_REUSEADDR on purpose
    try:
        s.bind(("127.0.0.1", port))
        s.listen()
    finally:
        s.close()


async def test_stop_frees_port_and_thread() -> None:
    srv = FakeLLMServer().start()
    assert srv._thread in threading.enumerate()
    port = srv.port
    assert srv.openai_base_url == f"http://127.0.0.1:{port}/v1"
    assert srv.anthropic_base_url == f"http://127.0.0.1:{port}"
    oc = oai(srv)
    hung: asyncio.Task | None = None
    try:
        await oai_stream(oc)  # leaves an idle keep-alive connection open
        srv.add_faults(Fault("hang", seconds=30))
        hung = asyncio.create_task(oc.chat.completions.create(model="m", messages=MSGS))
        while len(srv.requests) < 2:
            await asyncio.sleep(0.01)

        t0 = time.monotonic()
        await asyncio.to_thread(srv.stop)  # open connections and the hanging handler do not hold it up
        assert time.monotonic() - t0 < 15  # not the 30 s hang (stop() raises after 10 s)
        srv.stop()  # idempotent
        assert not [t for t in threading.enumerate() if t.name.startswith("FakeLLMServer")]
        with pytest.raises(openai.APIConnectionError):
            await hung
    finally:
        srv.stop()
        if hung is not None and not hung.done():
            hung.cancel()
        await oc.close()
    _bind(port)

    # and a new server can take the very same port
    with FakeLLMServer(port=port) as again:
        assert again.port == port
        async with oai(again) as oc2:
            assert (await oc2.chat.completions.create(model="m", messages=MSGS)).choices[0].message.content
    _bind(port)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError):
        ScriptedReply(text="abc", chunks=["ab"])
    with pytest.raises(ValueError):
        Fault("explode")  # type: ignore[arg-type]
    with FakeLLMServer() as srv, pytest.raises(OSError):
        FakeLLMServer(port=srv.port).start()


async def test_broken_responder_is_a_500(server: FakeLLMServer) -> None:
    def responder(body: dict) -> ScriptedReply:
        raise RuntimeError("boom")

    server.responder = responder
    async with oai(server) as oc:
        with pytest.raises(openai.InternalServerError, match="boom"):
            await oc.chat.completions.create(model="m", messages=MSGS)


@pytest.mark.parametrize("max_streams, held", [(1, True), (None, False)])
async def test_max_streams_holds_requests_in_line_until_one_ends(max_streams, held) -> None:
    """max_streams=1: a request waits, unanswered, while another is served (a model server's full batch).
    Told by when the server took each request (a request is recorded once it has a stream), not by which
    client finished first: with one stream the second reply starts as the first ends, and the two clients
    then race to read theirs."""
    with FakeLLMServer(max_streams=max_streams) as srv:
        srv.add_faults(Fault("hang", seconds=0.5))   # the first request is served slowly
        client, done = oai(srv), []

        async def ask(name: str) -> None:
            await oai_stream(client)
            done.append(name)

        hung = asyncio.create_task(ask("hung"))
        while not srv.requests:                      # the first is in before the second is sent
            await asyncio.sleep(0.005)
        await asyncio.gather(hung, ask("quick"))
        await client.close()
    first, second = srv.requests
    assert first.fault is not None and second.fault is None
    if held:
        assert second.time - first.time >= 0.5 - 0.01    # taken only once the hung one had been answered
    else:
        assert second.time - first.time < 0.5 and done[0] == "quick"
    with pytest.raises(ValueError, match="max_streams"):
        FakeLLMServer(max_streams=0)
