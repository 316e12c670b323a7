"""Hostile servers (issue 14, items 6-10 and 12), both OpenAI clients and the anthropic provider.

Every server here is a real socket server on 127.0.0.1 that misbehaves on purpose; every loop in it is
bounded, and it stops writing once the client has gone.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import time

import pytest

from lhe_tui.cli.args import build_parser
from lhe_tui.cli.main import main
from lhe_tui.common.errors import ConfigError, ProviderError
from lhe_tui.providers.anthropic_messages import AnthropicProvider
from lhe_tui.providers.base import GenerationSettings, RequestMeta
from lhe_tui.providers.factory import generation_settings
from lhe_tui.providers.failures import cannot_connect, retry_after_seconds
from lhe_tui.providers.openai_chat import OpenAIChatProvider
from lhe_tui.providers.openai_http import SSEDecoder
from lhe_tui.core.config import RunConfig
from lhe_tui.core.events import EventBus, RetryScheduled, SampleFinished, TurnFinished
from lhe_tui.runner.retry import Backoff
from lhe_tui.runner.runner import Runner
from lhe_tui.runs.session import build_task
from lhe_tui.testing.fake_llm_server import FakeLLMServer, Fault, ScriptedReply

from tests.test_providers import summing_responder

KEY = "sk-test-hostile-0123456789"
MESSAGES = [{"role": "user", "content": "a"}]
KINDS = ["direct", "sdk", "anthropic"]


class Hostile:
    """Reads each request (head and Content-Length body) and hands the writer to `script(writer, n)`,
    n counting requests from 1; the connection stays open while the script returns True."""

    def __init__(self, script):
        self.script = script
        self.requests: list[bytes] = []
        self.connections = 0
        self.tasks: set[asyncio.Task] = set()

    async def __aenter__(self):
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.anthropic_url = f"http://127.0.0.1:{port}"
        self.url = self.anthropic_url + "/v1"
        return self

    async def __aexit__(self, *exc):
        self.server.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def handle(self, reader, writer):
        self.tasks.add(asyncio.current_task())
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                self.requests.append(head + await reader.readexactly(length))
                if not await self.script(writer, len(self.requests)):
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


async def hold(writer, seconds: float = 5.0) -> None:
    """Keep the connection open, silent, until the client closes it (at most `seconds`)."""
    for _ in range(int(seconds / 0.05)):
        if writer.is_closing():
            return
        await asyncio.sleep(0.05)


def provider(kind: str, server: Hostile, **settings):
    s = GenerationSettings(**{"timeout": 5.0, **settings})
    if kind == "anthropic":
        return AnthropicProvider("m", s, api_key=KEY, base_url=server.anthropic_url)
    return OpenAIChatProvider("m", s, api_key=KEY, base_url=server.url, client=kind)


async def complete(kind: str, server: Hostile, **settings):
    p = provider(kind, server, **settings)
    try:
        return await p.complete(MESSAGES, RequestMeta(0, 1))
    finally:
        await p.aclose()


SSE_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def openai_event(delta: dict | None = None, finish: str | None = None) -> bytes:
    body = {"choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}]}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def anthropic_event(name: str, body: dict) -> bytes:
    return f"event: {name}\ndata: {json.dumps({'type': name, **body})}\n\n".encode()


ANTHROPIC_START = anthropic_event("message_start", {"message": {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": [], "stop_reason": None,
    "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1}}}) + anthropic_event(
    "content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})


def text_event(kind: str, text: str) -> bytes:
    if kind == "anthropic":
        return anthropic_event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": text}})
    return openai_event({"content": text})


# ---- 6: an overall deadline, a reply size cap, linear-time decoding ------------------------------------

async def pings(writer, n):
    writer.write(SSE_HEAD)
    for _ in range(500):  # a comment every 10 ms: never silent for the idle timeout
        if writer.is_closing():
            break
        writer.write(chunk(b": ping\n\n"))
        await asyncio.sleep(0.01)
    return False


async def trickle(writer, n):
    writer.write(SSE_HEAD)
    for byte in b"data: " + b"x" * 100:  # one byte every 50 ms
        if writer.is_closing():
            break
        writer.write(chunk(bytes([byte])))
        await asyncio.sleep(0.05)
    return False


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("script", [pings, trickle])
async def test_a_server_that_never_finishes_meets_the_deadline(kind, script):
    async with Hostile(script) as server:   # the scripts run 5 s: the message tells the deadline from their end
        with pytest.raises(ProviderError) as caught:
            await complete(kind, server, deadline=0.6)
    assert caught.value.transient and "deadline of 0.6 s" in str(caught.value)


def endless_text(kind: str, pieces: int = 100, size: int = 10_000):
    async def script(writer, n):
        writer.write(SSE_HEAD + (chunk(ANTHROPIC_START) if kind == "anthropic" else b""))
        for i in range(pieces):
            if writer.is_closing():
                break
            writer.write(chunk(text_event(kind, ("<answer>7</answer>" if i == 0 else "") + "x" * size)))
            await writer.drain()
            await asyncio.sleep(0)
        return False
    return script


@pytest.mark.parametrize("kind", KINDS)
async def test_a_reply_past_the_size_cap_is_cut_off_not_read_whole(kind):
    async with Hostile(endless_text(kind)) as server:
        reply = await complete(kind, server, max_reply_chars=50_000)
    assert reply.cut_off == "the reply passed 50,000 characters"
    assert 0 < len(reply.text) <= 50_000


@pytest.mark.parametrize("client", ["direct", "sdk"])
async def test_an_endless_event_line_is_cut_off_and_memory_stays_bounded(client):
    sent = [0]

    async def script(writer, n):
        writer.write(SSE_HEAD + chunk(b"data: "))
        for _ in range(400):  # 26 MB if nobody stopped reading
            if writer.is_closing():
                break
            writer.write(chunk(b"x" * 65536))
            sent[0] += 1
            await writer.drain()
        return False

    async with Hostile(script) as server:
        reply = await complete(client, server, max_reply_chars=100_000)
    assert reply.cut_off.startswith("an event line passed") and reply.text == ""
    assert sent[0] < 200   # the client stopped reading near its cap (464 KB), long before the 26 MB


async def test_a_cut_off_reply_is_a_format_miss_with_its_reason_stored():
    config = RunConfig(provider="openai", model="m", turns=1, samples=1, max_reply_mb=0.05).validate()
    async with Hostile(endless_text("direct")) as server:
        bus, events = EventBus(), []
        bus.subscribe(events.append)
        p = OpenAIChatProvider("m", generation_settings(config), api_key=KEY, base_url=server.url)
        assert await Runner(config, build_task(config), p, "t", bus).run() == "finished"
        await p.aclose()
    record = next(e.record for e in events if isinstance(e, TurnFinished))
    assert record.answer_status == "format" and record.model_answer is None and not record.correct
    assert record.raw_reply.startswith("[lhe-tui: the reply passed 50,000 characters (--max-reply-mb)")
    assert len(record.raw_reply) < 2500


def test_sse_decoding_of_a_long_line_in_small_reads():
    """A 16 MB line in 16 KiB reads is one event (its time, linear in the line: bench/suite_timings.py)."""
    line = b"data: " + b"x" * (16 << 20) + b"\n\n"
    decoder = SSEDecoder()
    events = [e for i in range(0, len(line), 16384) for e in decoder.feed(line[i:i + 16384])]
    assert len(events) == 1 and len(events[0]) == 16 << 20


@pytest.mark.parametrize("newline", [b"\r", b"\r\n", b"\n"])
def test_sse_lines_may_end_with_a_lone_cr(newline):
    stream = (b": c" + newline + b"data: a" + newline + b"data: b" + newline + newline) * 2
    for cuts in ([], [len(stream) // 3], list(range(1, len(stream))), random.Random(1).sample(range(len(stream)), 9)):
        points = sorted(set(cuts) | {0, len(stream)})
        decoder = SSEDecoder()
        events = [e for a, b in zip(points, points[1:]) for e in decoder.feed(stream[a:b])]
        assert events == [b"a\nb", b"a\nb"], cuts


def test_network_bounds_are_checked_and_shown_in_help(capsys):
    for flag in ("--deadline", "--max-reply-mb"):
        for bad in ("0", "-1", "nan", "inf"):
            with pytest.raises(ConfigError, match=flag):
                from lhe_tui.runs.run_flags import config_from_args
                config_from_args(build_parser().parse_args(["run", flag, bad]))
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for text in ("--deadline SECONDS", "(default 1800)", "Retry-After honoured up to 120 s", "--retry-budget",
                 "(default 600)", "--max-reply-mb MB"):
        assert text in out


# ---- 7: Retry-After within bounds, a retry budget per turn -----------------------------------------------

@pytest.mark.parametrize("value", ["soon", "nan", "inf", "-inf", "0", "-5", "1e999", "Mon, 99 Foo 2025 25:61:00",
                                   "Wed, 21 Oct 2015 07:28:00 GMT", ""])
def test_retry_after_garbage_leaves_the_usual_backoff(value):
    assert retry_after_seconds({"retry-after": value}) is None
    assert retry_after_seconds({"retry-after-ms": value, "retry-after": "2"}) == 2.0
    backoff = Backoff(base_s=1, cap_s=8)
    for given in (float("nan"), float("inf"), 0.0, -3.0, None):
        assert 0.5 <= backoff.delay(1, random.Random(0), given) <= 1.0  # never below the backoff
    assert backoff.delay(1, random.Random(0), 1e9) == 120.0  # and honoured up to a cap


@pytest.mark.parametrize("client", ["direct", "sdk"])
def test_garbage_retry_after_is_retried_with_backoff_not_an_internal_error(client):
    config = RunConfig(provider="openai", model="m", turns=2, samples=1, max_retries=6).validate()
    with FakeLLMServer(summing_responder()) as server:
        server.add_faults(*(Fault("status", status=429, retry_after=v) for v in ("soon", "nan", "0", "-5", "inf")))
        bus, events = EventBus(), []
        bus.subscribe(events.append)
        p = OpenAIChatProvider("m", generation_settings(config), api_key=KEY, base_url=server.openai_base_url,
                               client=client)
        runner = Runner(config, build_task(config), p, "t", bus, backoff=Backoff(base_s=0.01, cap_s=0.05))
        assert asyncio.run(runner.run()) == "finished"
    delays = [e.delay_s for e in events if isinstance(e, RetryScheduled)]
    assert len(delays) == 5 and all(0.005 <= d <= 0.05 for d in delays)


def run_with_faults(faults, **config_fields):
    """(status, the sample's message, seconds taken, requests sent)."""
    config = RunConfig(provider="openai", model="m", turns=1, samples=1, **config_fields).validate()
    with FakeLLMServer(summing_responder()) as server:
        server.add_faults(*faults)
        bus, events = EventBus(), []
        bus.subscribe(events.append)
        p = OpenAIChatProvider("m", generation_settings(config), api_key=KEY, base_url=server.openai_base_url)
        started = time.monotonic()
        status = asyncio.run(Runner(config, build_task(config), p, "t", bus,
                                    backoff=Backoff(base_s=0.1, cap_s=0.2)).run())
    finished = next(e for e in events if isinstance(e, SampleFinished))
    return status, finished.message, time.monotonic() - started, len(server.requests)


def test_a_long_retry_after_past_the_turns_budget_gives_up_at_once():
    # lenient: the turn that gives up ends its sample (paper records it and goes on: test_failed_replies.py)
    status, message, took, sent = run_with_faults([Fault("status", status=429, retry_after=3600)], retry_budget=60,
                                                  protocol="lenient")
    assert status == "failed" and sent == 1 and took < 60   # not the hour it was asked to wait
    assert "gave up after 0 retries" in message and "retry budget of 60 s" in message


def test_retrying_one_turn_stops_at_its_budget():
    status, message, took, sent = run_with_faults([Fault("status", status=503)] * 40, max_retries=100,
                                                  retry_budget=0.6, protocol="lenient")
    # waits of 0.05-0.2 s: the budget ends the retries after a few of the 40 failures, at 0.3 s at the earliest
    assert status == "failed" and "retry budget of 0.6 s" in message and 0.3 < took and 2 <= sent < 40


# ---- 8: a complete reply is kept whatever the framing does after [DONE] -------------------------------------

REPLY = openai_event({"content": "<answer>1</answer>"}) + openai_event(finish="stop") + b"data: [DONE]\n\n"
BROKEN_AFTER_DONE = {
    "content-length too long": b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % (len(REPLY) + 100) + REPLY,
    "chunk longer than its data": SSE_HEAD + b"%x\r\n" % (len(REPLY) + 50) + REPLY,
    "final CRLF missing": SSE_HEAD + chunk(REPLY) + b"0\r\n",
    "garbage after the last chunk": SSE_HEAD + chunk(REPLY) + b"zz\r\n",
}


@pytest.mark.parametrize("client", ["direct", "sdk"])
@pytest.mark.parametrize("then_close", [False, True])
@pytest.mark.parametrize("shape", BROKEN_AFTER_DONE)
async def test_a_reply_whose_done_came_is_kept_however_the_framing_breaks_after_it(shape, then_close, client):
    async def script(writer, n):
        if n == 1:
            writer.write(BROKEN_AFTER_DONE[shape])
            if not then_close:
                await hold(writer, 60)
            return False
        writer.write(SSE_HEAD + chunk(REPLY) + b"0\r\n\r\n")
        return True

    async with Hostile(script) as server:
        p = provider(client, server, timeout=60.0)
        started = time.monotonic()
        first = await p.complete(MESSAGES, RequestMeta(0, 1))
        took = time.monotonic() - started
        second = await p.complete(MESSAGES, RequestMeta(0, 2))
        await p.aclose()
    assert first.text == second.text == "<answer>1</answer>"
    assert took < 30  # not after the 60 s the server holds the connection, on the SDK's path too
    assert server.connections == 2  # the broken connection was not used again


async def test_connections_are_still_reused_after_a_clean_done():
    async def script(writer, n):
        writer.write(SSE_HEAD + chunk(REPLY))
        await writer.drain()
        await asyncio.sleep(0.01)  # the end of the body comes a little after [DONE]
        writer.write(b"0\r\n\r\n")
        return True

    async with Hostile(script) as server:
        p = provider("direct", server)
        for turn in range(4):
            assert (await p.complete(MESSAGES, RequestMeta(0, turn + 1))).text == "<answer>1</answer>"
        await p.aclose()
    assert server.connections == 1


# ---- 9: malformed data is a transient server fault that names the field ---------------------------------------

@pytest.mark.parametrize("client", ["direct", "sdk"])
@pytest.mark.parametrize("data, needle", [
    (b'{"choices": {"0": {"delta": {"content": "x"}}}}', "`choices` is dict"),
    (b'{"choices": [{"delta": ["x"]}]}', "`delta` is list"),
    (b'{"choices": ["x"]}', "`choices[]` is str"),
    (b'{"choices": [{"delta": {"content": 5}}]}', "`delta.content` is int"),
    (b'{"choices": [{"delta": {}, "finish_reason": ["stop"]}]}', "`finish_reason` is list"),
    (b'{"choices": [{"delta": {"cont', "malformed JSON"),
])
async def test_malformed_server_data_is_a_transient_fault_naming_the_field(client, data, needle):
    async def script(writer, n):
        writer.write(SSE_HEAD + chunk(b"data: " + data + b"\n\n" + REPLY) + b"0\r\n\r\n")
        return False

    async with Hostile(script) as server:
        with pytest.raises(ProviderError) as caught:
            await complete(client, server)
    assert caught.value.transient and needle in str(caught.value), str(caught.value)


# ---- 10: messages keep their detail; redirects are named and not followed --------------------------------------

@pytest.mark.parametrize("kind", KINDS)
async def test_a_redirect_is_named_and_not_followed(kind):
    async def elsewhere(writer, n):
        writer.write(SSE_HEAD + chunk(REPLY) + b"0\r\n\r\n")
        return False

    async with Hostile(elsewhere) as target:
        async def redirect(writer, n):
            location = f"{target.url}/chat/completions".encode()
            writer.write(b"HTTP/1.1 307 Temporary Redirect\r\nlocation: %s\r\ncontent-length: 0\r\n\r\n" % location)
            return True

        async with Hostile(redirect) as server:
            with pytest.raises(ProviderError) as caught:
                await complete(kind, server)
    message = str(caught.value)
    assert not caught.value.transient and caught.value.status == 307
    assert f"the server redirected to {target.url}/chat/completions" in message
    assert "lhe-tui does not follow redirects: fix --base-url" in message
    assert target.requests == []  # the prompt (and the key) went nowhere else


@pytest.mark.parametrize("client, needle", [("direct", "malformed response header"), ("sdk", "illegal header line")])
async def test_a_broken_response_says_what_broke(client, needle):
    async def script(writer, n):
        writer.write(b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n")
        return False

    async with Hostile(script) as server:
        with pytest.raises(ProviderError) as caught:
            await complete(client, server)
    assert caught.value.transient and str(caught.value).startswith("openai: connection lost (")
    assert needle in str(caught.value), str(caught.value)


def test_cannot_connect_names_the_os_reason_or_at_least_the_error():
    import httpx2

    try:
        try:
            raise OSError(113, "No route to host")
        except OSError as exc:
            raise httpx2.ConnectError("") from exc
    except httpx2.ConnectError as exc:
        assert str(cannot_connect("openai", exc)) == "openai: cannot connect (No route to host)"
    assert str(cannot_connect("openai", httpx2.ConnectTimeout(""))) == "openai: cannot connect (ConnectTimeout)"


# ---- 12: an API key a server echoes is stored, exported, shown and printed nowhere -----------------------------

def test_an_echoed_api_key_is_redacted_everywhere(tmp_path, capsys, monkeypatch):
    other = "sk-ant-other-configured-key-42"
    db = tmp_path / "lhe.db"
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", other)
    with FakeLLMServer(lambda body: ScriptedReply(text=f"{KEY} and {other} <answer>0</answer>")) as server:
        server.add_faults(Fault("status", status=500, message=f"upstream rejected key {KEY}"),
                          Fault("status", status=429, retry_after=0.01, message=f"key {other} is rate limited"))
        base = ["run", "--headless", "--provider", "openai", "--model", "m", "--base-url", server.openai_base_url,
                "--samples", "1", "--db", str(db)]
        assert main(base + ["--turns", "2"]) == 0
        server.add_faults(Fault("status", status=401, message=f"Incorrect API key provided: {KEY}"))
        assert main(base + ["--turns", "3"]) == 1
    with sqlite3.connect(db) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM sessions ORDER BY rowid")]
        stored = [repr(row) for table in ("sessions", "turns", "events")
                  for row in conn.execute(f"SELECT * FROM {table}")]
    for sid in ids:
        assert main(["export", sid, "--format", "json", "--db", str(db)]) == 0
        assert main(["show", sid, "--db", str(db)]) == 0
    out, err = capsys.readouterr()
    everything = "\n".join([out, err, *stored])
    assert KEY not in everything and other not in everything
    assert "[redacted]" in err and "Incorrect API key provided: [redacted]" in everything
    assert "upstream rejected key [redacted]" in everything  # the retry's message, in the events
    assert "[redacted] and [redacted] <answer>0</answer>" in everything  # the reply as stored
