"""The OpenAI streaming format pieces the direct client is made of: body encoding, SSE decoding, and
what it does with a stream that carries an error or garbage."""

import asyncio
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lhe_tui.common.errors import ProviderError
from lhe_tui.providers.base import GenerationSettings, RequestMeta
from lhe_tui.providers.openai_chat import OpenAIChatProvider
from lhe_tui.providers.openai_http import SSEDecoder
from lhe_tui.providers.openai_stream import BodyEncoder, ChunkReader, message_json

FIELDS = {"model": "m", "stream": True, "stream_options": {"include_usage": True}}


def message(i: int, text: str = "") -> dict:
    return {"role": "user" if i % 2 else "assistant", "content": f"{text}é{i}"}


# Each step makes the next request's history from the previous one the way the runner's policies can:
# append a turn, slide a window (drop the oldest turn after the system prompt), or replace a message
# with a new object (an injected answer, a healed history).
# slide_append and prompt_append change the messages the previous request started with and add a turn at
# once (the request is longer than the last: only the identity of its first and last old message tell).
STEPS = st.lists(st.sampled_from(["append", "slide", "replace", "same", "slide_append", "prompt_append"]),
                 min_size=1, max_size=40)


@settings(max_examples=100, deadline=None)
@given(STEPS, st.text(max_size=8), st.integers(0, 1), st.booleans())
def test_body_encoder_equals_encoding_the_whole_body_every_time(steps, text, start, marked):
    """Also as the Anthropic provider calls it: the messages from `start` on (its system prompt is a field,
    not a message), the last replaced by a new dict (its cache breakpoint)."""
    encoder = BodyEncoder()
    history = [{"role": "system", "content": "dictionary"}]
    n = 0
    for step in steps:
        if step == "append":
            history = history + [message(n, text), message(n + 1, text)]
            n += 2
        elif step == "slide" and len(history) > 3:
            history = history[:1] + history[3:]
        elif step == "replace" and len(history) > 1:
            history = history[:-1] + [dict(history[-1], content="injected")]
        elif step == "slide_append" and len(history) > 3:
            history = history[:1] + history[3:] + [message(n, text), message(n + 1, text)]
            n += 2
        elif step == "prompt_append":
            history = [{"role": "system", "content": f"prompt {n}"}] + history[1:] + [message(n, text)]
            n += 1
        sent = history[start:]
        last = {"role": sent[-1]["role"], "content": [{"text": sent[-1]["content"]}]} if marked and sent else None
        if last is not None:
            sent[-1] = last
        body = encoder.encode(7, history, FIELDS, start=start, last=last)
        assert body == json.dumps({"messages": sent, **FIELDS}).encode()


@settings(max_examples=200, deadline=None)
@given(st.one_of(
    st.dictionaries(st.text(), st.text(), max_size=4),
    st.dictionaries(st.text(max_size=3), st.one_of(st.text(), st.integers(), st.none(), st.lists(st.text())),
                    max_size=3),
    st.lists(st.text(), max_size=3)))
def test_message_json_is_json_dumps(message):
    assert message_json(message) == json.dumps(message)


def test_body_encoder_takes_the_fast_path_for_the_runners_append_only_history():
    """The runner's MessageLog: each request is the previous one's messages (its last, the pending user
    turn, rendered anew once answered) plus the new turn: never a full re-encode."""
    from lhe_tui.runner.history import HistoryEntry, HistoryPolicy, MessageLog

    encoder = BodyEncoder()
    log = MessageLog(HistoryPolicy(), "dictionary")
    history: list[HistoryEntry] = []
    for turn in range(1, 30):
        messages = log.messages(history, ("apple",))
        assert json.loads(encoder.encode(0, messages, FIELDS)) == {"messages": messages, **FIELDS}
        history.append(HistoryEntry(turn=turn, keys=("apple",), reply_visible=f"<answer>{turn}</answer>",
                                    model_answer=turn, history_answer=turn, gold_sum=turn))
    assert encoder.reencoded == 0


def test_body_encoder_reuses_the_json_of_messages_it_has_seen():
    encoder = BodyEncoder()
    history = [message(i) for i in range(4)]
    encoder.encode(0, history, FIELDS)
    history[1]["content"] = "changed in place"  # the runner never does this; a reused piece shows it
    assert "changed in place" not in encoder.encode(0, list(history), FIELDS).decode()
    assert "changed in place" in encoder.encode(1, list(history), FIELDS).decode()  # per sample


def test_sse_decoder_joins_lines_split_across_reads_and_multi_line_data():
    decoder = SSEDecoder()
    stream = b': comment\r\ndata: {"a": 1}\r\n\r\nevent: x\ndata: line1\ndata:line2\n\ndata: [DONE]\n\n'
    events = []
    for i in range(0, len(stream), 3):  # three bytes at a time
        events += decoder.feed(stream[i:i + 3])
    assert events == [b'{"a": 1}', b"line1\nline2", b"[DONE]"]


async def serve_raw(payload: bytes):
    """A server that answers every request with `payload` (a whole HTTP response) and closes."""

    async def handle(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(payload)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"


def sse_response(*events: bytes) -> bytes:
    body = b"".join(b"data: " + e + b"\n\n" for e in events)
    return (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(body), body))


@pytest.mark.parametrize("events, needle", [
    ((b'{"choices": [{"delta": {"content": "<ans"}}]}', b'{"error": {"message": "overloaded"}}'),
     "the server sent an error: overloaded"),
    ((b'{"choices": [{"delta": {"content": "<ans"}}]}', b"{not json"), "malformed JSON"),
    ((b'{"choices": [{"delta": {"content": "<answer>1</answer>"}}]}', b"[DONE]"), "stream ended before"),
])
async def test_a_stream_with_an_error_or_garbage_is_a_transient_provider_error(events, needle):
    server, url = await serve_raw(sse_response(*events))
    provider = OpenAIChatProvider("m", GenerationSettings(), api_key="k", base_url=url, client="direct")
    try:
        with pytest.raises(ProviderError) as caught:
            await provider.complete([{"role": "user", "content": "a"}], RequestMeta(0, 1))
    finally:
        await provider.aclose()
        server.close()
    assert caught.value.transient and needle in str(caught.value) and "\n" not in str(caught.value)


async def test_a_refused_loopback_connection_is_not_retried():
    # Nothing listens on a loopback port that refuses: retrying only hides that (issue 12; it was
    # transient before, and a dead local server then took 52 s of retries to fail).
    server, url = await serve_raw(b"")
    server.close()
    await server.wait_closed()
    provider = OpenAIChatProvider("m", GenerationSettings(timeout=2), api_key="k", base_url=url, client="direct")
    with pytest.raises(ProviderError) as caught:
        await provider.complete([{"role": "user", "content": "a"}], RequestMeta(0, 1))
    await provider.aclose()
    assert not caught.value.transient
    assert str(caught.value).startswith("openai: cannot connect: connection refused by 127.0.0.1:")


async def test_error_status_body_message_is_shown():
    body = b'{"error": {"message": "The model `nope` does not exist", "type": "invalid_request_error"}}'
    server, url = await serve_raw(b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\n"
                                  b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body))
    provider = OpenAIChatProvider("m", GenerationSettings(), api_key="k", base_url=url, client="direct")
    with pytest.raises(ProviderError) as caught:
        await provider.complete([{"role": "user", "content": "a"}], RequestMeta(0, 1))
    await provider.aclose()
    server.close()
    assert not caught.value.transient and caught.value.status == 404
    assert str(caught.value) == "openai: HTTP 404 not found (check --model and --base-url): " \
                                "The model `nope` does not exist"


PAYLOAD = st.binary(min_size=1, max_size=12).filter(lambda b: b"\n" not in b and b"\r" not in b)


@settings(max_examples=80, deadline=None)
@given(st.lists(PAYLOAD, min_size=1, max_size=6), st.sampled_from([b"\n", b"\r\n"]), st.booleans(),
       st.lists(st.integers(min_value=0, max_value=200), max_size=6))
def test_sse_decoder_gives_the_same_events_however_the_bytes_are_cut(payloads, newline, comment, cuts):
    """The fast path (whole `data: ` events) and the line-by-line path agree, across any split."""
    stream = b"".join((b": keep-alive" + newline if comment else b"") + b"data: " + p + newline + newline
                      for p in payloads)
    points = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    decoder = SSEDecoder()
    events = []
    for a, b in zip(points, points[1:]):
        events += decoder.feed(stream[a:b])
    assert events == payloads  # one space after "data:" is the separator; a second one is data


def _merged(deltas: list[tuple[str, str]]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for kind, text in deltas:
        if out and out[-1][0] == kind:
            out[-1] = (kind, out[-1][1] + text)
        else:
            out.append((kind, text))
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["content", "reasoning_content"]), st.text("<>/thinkTHINK ab7", max_size=9)),
                max_size=12),
       st.lists(st.integers(0, 12), max_size=6))
def test_chunk_reader_gives_the_same_deltas_and_reply_however_the_chunks_come_in_reads(chunks, cuts):
    """Chunk by chunk (the SDK path flushes after each) or in reads of several (the direct client): the
    same text, reasoning and deltas in the same order (merged by kind)."""
    def read(batches):
        deltas: list[tuple[str, str]] = []
        reader = ChunkReader("openai", lambda kind, text: deltas.append((kind, text)))
        for batch in batches:
            reader.feed_batch([{"choices": [{"delta": {field: text}}]} for field, text in batch])
        reader.feed_batch([{"choices": [{"delta": {}, "finish_reason": "stop"}]}])
        reply = reader.reply(0.1)
        return _merged(deltas), reply.text, reply.reasoning

    points = sorted({min(c, len(chunks)) for c in cuts} | {0, len(chunks)})
    in_reads = [chunks[a:b] for a, b in zip(points, points[1:])]
    assert read(in_reads) == read([[chunk] for chunk in chunks])


class _RebuildCheckedProvider(OpenAIChatProvider):
    """The direct client, each body it sends compared with `json.dumps` of a full rebuild of the request
    (HistoryPolicy.messages over the runner's history: neither MessageLog's list nor BodyEncoder's
    cached JSON); a hand injection lands, while some requests are in flight, in an entry already sent."""

    def __init__(self, url: str) -> None:
        super().__init__("m", GenerationSettings(), api_key="k", base_url=url, client="direct")
        self.runner = None
        self.checked = 0
        self.mismatches: list[str] = []   # (an assert in here would only fail the sample, as any bug does)
        pieces = self._bodies.pieces

        def checked_pieces(sample, messages, fields):
            runner = self.runner
            history = runner.history[sample]
            keys = runner.task.samples[sample].turn_keys(history[-1].turn + 1 if history else 1)
            parts = pieces(sample, messages, fields)
            body = b"".join(parts)
            fresh = runner.policy.messages(runner.system, history, keys)
            if body != json.dumps({"messages": fresh, **fields}).encode():
                self.mismatches.append(f"sample {sample} turn {len(history) + 1}")
            self.checked += 1
            return parts

        self._bodies.pieces = checked_pieces

    async def complete(self, messages, meta, on_delta=None):
        reply = await super().complete(messages, meta, on_delta)
        if (meta.turn + meta.sample_index) % 4 == 0:
            self.runner.inject(meta.sample_index, offset=3)   # rewrites the entry this request carried
        return reply


def test_the_bodies_sent_equal_a_fresh_encoding_under_every_policy_and_injection():
    """BodyEncoder appends to the JSON it encoded for the sample's previous request: the bytes on the wire
    must be those of encoding the whole request anew, whatever the policy rewrites (heal, induced errors,
    a sliding window) and whatever injections (scripted, or by hand into an entry already sent) change."""
    from lhe_tui.core.config import Injection, RunConfig
    from lhe_tui.core.events import EventBus
    from lhe_tui.runner.runner import Runner
    from lhe_tui.runs.session import build_task
    from lhe_tui.testing.fake_llm_server import FakeLLMServer, ScriptedReply

    def answer(body):   # right, wrong, no tag and empty answers, so every placeholder shows up
        n = len(body["messages"])
        return ScriptedReply(text=["<answer>3</answer>", "no tag", f"<answer>{n}</answer>", ""][n % 4])

    server = FakeLLMServer(answer).start()
    try:
        for extra in ({}, {"window": 3}, {"window": 1}, {"heal": True}, {"induced_error_rate": 0.4},
                      {"window": 2, "induced_error_rate": 0.5}):
            config = RunConfig(provider="openai", model="m", base_url=server.openai_base_url, turns=12, samples=3,
                               concurrency=3, seed=4, max_retries=0,
                               inject_at=(Injection(turn=3, offset=5), Injection(turn=7, value=0)),
                               **extra).validate()
            provider = _RebuildCheckedProvider(server.openai_base_url)
            runner = provider.runner = Runner(config, build_task(config), provider, "t", EventBus())

            async def go(runner, provider):
                try:
                    return await runner.run()
                finally:
                    await provider.aclose()

            status = asyncio.run(go(runner, provider))
            assert provider.mismatches == [], extra
            assert status == "finished", extra
            assert provider.checked >= 12 * 3, extra
            if extra.get("window") is None:
                assert provider._bodies.reencoded > 0, extra   # the injections took the slow path
    finally:
        server.stop()
