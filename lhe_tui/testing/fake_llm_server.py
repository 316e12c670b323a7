"""A local HTTP server that speaks the real OpenAI Chat Completions and Anthropic
Messages wire formats.

It is the test double for the provider code (the official SDKs talk to it over a
real socket, so nothing in the SDK is mocked), a fault injector for reliability
tests, and a fixed-latency server for benchmarks::

    with FakeLLMServer(lambda body: ScriptedReply(text="<answer>3</answer>")) as srv:
        client = openai.AsyncOpenAI(base_url=srv.openai_base_url, api_key="sk-test")
        ...
        srv.add_faults(Fault("status", status=429, retry_after=1))

``ECHO_API_KEY`` in a reply's text, chunks or reasoning, or in a fault's message, is sent as the key the
request carried (``Authorization: Bearer K`` or ``x-api-key: K``): a server that echoes the caller's key,
whole or split across stream chunks, to test that the key is stored, exported and shown nowhere.

``FakeLLMServer(anthropic_cache=True)`` bills the Anthropic endpoint like Anthropic's prompt cache
(``AnthropicPromptCache``): its usage counts input tokens from the request (characters / 4, rounded up,
per content block) and reports ``cache_read_input_tokens`` / ``cache_creation_input_tokens`` for the
prefixes marked with ``cache_control``.

Endpoints: ``POST /v1/chat/completions``, ``POST /v1/messages``, ``GET /v1/models``.

The server is an asyncio loop in one background thread, bound to 127.0.0.1 on an
ephemeral port. It speaks HTTP/1.1 with keep-alive; streamed replies use chunked
transfer encoding, so an intact stream ends with the zero-length chunk and a
"cut" stream is one that lacks it. ``stop()`` closes the listening socket,
resets every open connection (with SO_LINGER 0, so the server side leaves no
TIME_WAIT behind), cancels every handler, and joins the thread.

The responder runs on the server's event loop: it must be quick and must not
block (it is called once per completion request, with the parsed JSON body).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import dataclasses
import hashlib
import http
import itertools
import json
import socket
import struct
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Literal

from lhe_tui.core.cache_rules import min_cacheable_tokens

__all__ = [
    "DEFAULT_MODEL",
    "ECHO_API_KEY",
    "Fault",
    "AnthropicPromptCache",
    "FakeLLMServer",
    "RecordedRequest",
    "content_text",
    "ScriptedReply",
    "default_responder",
]

DEFAULT_MODEL = "fake-model"
ECHO_API_KEY = "<<echo-api-key>>"
"""Sent as the request's own API key wherever it appears in a reply or a fault's message."""
_HOST = "127.0.0.1"
_MAX_HEADER_BYTES = 64 * 1024
_STOP_JOIN_TIMEOUT = 10.0
_COMPLETION_PATHS = ("/v1/chat/completions", "/v1/messages")


# --------------------------------------------------------------------------- data


@dataclass
class ScriptedReply:
    """What the fake model answers to one completion request."""

    text: str
    """Assistant visible text."""
    reasoning: str | None = None
    """Reasoning text. OpenAI-compatible: streamed in the delta field named by
    ``reasoning_field`` (and set on the non-streamed message under that name).
    Anthropic: a ``thinking`` content block before the text block (thinking_delta
    events, then one signature_delta)."""
    reasoning_field: str = "reasoning_content"
    """``"reasoning_content"`` (DeepSeek, vLLM, llama.cpp) or ``"reasoning"`` (OpenRouter, Ollama)."""
    prompt_tokens: int = 10
    """All the input, as OpenAI's ``prompt_tokens`` counts it (cached and cache-written tokens included)."""
    completion_tokens: int | None = None
    """Default: the number of streamed chunks (text chunks plus reasoning chunks)."""
    cached_tokens: int = 0
    """Input read from the prompt cache: OpenAI ``prompt_tokens_details.cached_tokens``, Anthropic
    ``cache_read_input_tokens`` (Anthropic's ``input_tokens`` is then the rest: prompt - cached - cache writes)."""
    cache_creation_tokens: int = 0
    """Input written to the prompt cache: Anthropic ``cache_creation_input_tokens`` (OpenAI reports no writes)."""
    stream_usage: bool = True
    """False: an OpenAI-compatible stream carries no ``usage`` chunk even when asked for one (llama.cpp's server)."""
    chunks: list[str] | None = None
    """How to split ``text`` into stream chunks; must join back to ``text``.
    Default: pieces of 4 characters. Reasoning is always split in 4-character pieces."""

    def __post_init__(self) -> None:
        if self.chunks is not None and "".join(self.chunks) != self.text:
            raise ValueError("ScriptedReply.chunks must join back to ScriptedReply.text")

    def text_chunks(self) -> list[str]:
        if self.chunks is not None:
            return [c for c in self.chunks if c]
        return _split(self.text)

    def reasoning_chunks(self) -> list[str]:
        return _split(self.reasoning) if self.reasoning else []

    def output_tokens(self) -> int:
        if self.completion_tokens is not None:
            return self.completion_tokens
        return len(self.text_chunks()) + len(self.reasoning_chunks())

    def reasoning_tokens(self) -> int:
        if not self.reasoning:
            return 0
        n = len(self.reasoning_chunks())
        return min(n, self.output_tokens())


@dataclass
class Fault:
    """A failure applied to one completion request (FIFO, see ``FakeLLMServer.add_faults``).

    * ``status``: answer ``status`` with the provider's real JSON error body
      (plus ``Retry-After`` when ``retry_after`` is set: seconds, or a string sent
      as it is, garbage included; ``message`` replaces the body's message).
    * ``cut``: send the headers, the stream preamble (OpenAI role chunk /
      Anthropic message_start + content_block_start) and ``after_chunks``
      content chunks, then close the connection cleanly (FIN) without the rest
      of the stream, the ``[DONE]``/``message_stop`` and the chunked-encoding
      terminator. For a non-streaming request: a ``Content-Length`` header and
      only the first half of the body.
    * ``reset``: read the request, then reset the connection (RST) without a byte
      of response.
    * ``hang``: sleep ``seconds`` before answering normally (to trigger client
      timeouts). A client that gives up earlier just closes its socket.
    """

    kind: Literal["status", "cut", "reset", "hang"]
    status: int = 500
    retry_after: float | str | None = None
    after_chunks: int = 1
    seconds: float = 30.0
    message: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("status", "cut", "reset", "hang"):
            raise ValueError(f"unknown fault kind {self.kind!r}")
        if self.kind == "status" and not 400 <= self.status <= 599:
            raise ValueError("a status fault needs a 4xx or 5xx status")
        if self.after_chunks < 0:
            raise ValueError("after_chunks must be >= 0")


@dataclass
class RecordedRequest:
    method: str
    path: str
    """Path without the query string."""
    headers: dict[str, str]
    """Header names lower-cased (a repeated header keeps its last value)."""
    body: dict | None
    """The parsed JSON body, or None (no body, or not a JSON object)."""
    time: float
    """``time.monotonic()`` when the request had been read in full."""
    query: str = ""
    fault: Fault | None = None
    """The fault that was applied to this request, if any."""
    usage: dict | None = None
    """The Anthropic usage billed for it when the server bills like the prompt cache (``anthropic_cache``)."""


def default_responder(body: dict) -> ScriptedReply:
    return ScriptedReply(text="<answer>0</answer>")


def request_api_key(headers: dict[str, str]) -> str:
    """The key a request carried: ``Authorization: Bearer K`` (OpenAI) or ``x-api-key: K`` (Anthropic)."""
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return headers.get("x-api-key", "")


def with_echoed_key(reply: ScriptedReply, key: str) -> ScriptedReply:
    """``reply`` with every ``ECHO_API_KEY`` replaced by ``key`` (its chunks too, so they still join back)."""
    if ECHO_API_KEY not in reply.text and ECHO_API_KEY not in (reply.reasoning or ""):
        return reply
    chunks = None if reply.chunks is None else [c.replace(ECHO_API_KEY, key) for c in reply.chunks]
    reasoning = None if reply.reasoning is None else reply.reasoning.replace(ECHO_API_KEY, key)
    return dataclasses.replace(reply, text=reply.text.replace(ECHO_API_KEY, key), reasoning=reasoning,
                               chunks=chunks)


def _split(s: str, size: int = 4) -> list[str]:
    return [s[i : i + size] for i in range(0, len(s), size)]


# --------------------------------------------------------------------------- Anthropic's prompt cache

MAX_CACHE_BREAKPOINTS = 4
CACHE_LOOKBACK_BLOCKS = 20


def content_text(content: object) -> str:
    """A Messages ``system`` or message ``content``, a string or a list of blocks, as its text (for responders)."""
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    return content if isinstance(content, str) else ""


def approx_tokens(text: str) -> int:
    """The fake's token count of a text: characters / 4, rounded up (a real tokenizer differs; the ratios
    the cache produces do not depend much on it)."""
    return (len(text) + 3) // 4


class CacheRequestError(ValueError):
    """A request the real API refuses with a 400 (more than 4 breakpoints)."""


class AnthropicPromptCache:
    """Bills a Messages request the way Anthropic's prompt cache does, in simplified form.

    The request is read as its sequence of content blocks (system, then each message's; a string content is
    one text block; ``tools`` are not counted). A block with ``cache_control`` is a breakpoint; at most 4.
    The prefix up to a breakpoint is looked up in the cache at that breakpoint and at up to 20 block
    boundaries before it (Anthropic's lookback); the longest prefix found is ``cache_read_input_tokens``.
    The rest up to the last breakpoint is ``cache_creation_input_tokens`` (written: every breakpoint's prefix
    is stored), and what follows the last breakpoint is ``input_tokens``. A prefix is its blocks' role, type
    and text, not their cache_control. A breakpoint whose prefix is shorter than the minimum cacheable length
    (``min_tokens``; None: the request's model's, lhe_tui.core.cache_rules: 1,024 tokens, 2,048 for Haiku)
    is neither written nor read: its tokens are plain input. Simplifications: no TTL (entries never expire),
    tokens as ``approx_tokens``.
    """

    def __init__(self, min_tokens: int | None = None) -> None:
        self.prefixes: set[bytes] = set()
        self.min_tokens = min_tokens

    @staticmethod
    def blocks(body: dict) -> list[tuple[str, bool, int]]:
        """(the block as the prefix sees it, whether it is a breakpoint, its tokens), in request order."""
        out: list[tuple[str, bool, int]] = []

        def add(role: str, content: object) -> None:
            if isinstance(content, str):
                out.append((f"{role}\x00text\x00{content}", False, approx_tokens(content)))
                return
            for block in content if isinstance(content, list) else []:
                if not isinstance(block, dict):
                    continue
                text = block.get("text") if isinstance(block.get("text"), str) else json.dumps(
                    {k: v for k, v in block.items() if k != "cache_control"}, sort_keys=True)
                out.append((f"{role}\x00{block.get('type')}\x00{text}", "cache_control" in block,
                            approx_tokens(text)))

        if body.get("system"):
            add("system", body["system"])
        for message in body.get("messages") or []:
            if isinstance(message, dict):
                add(str(message.get("role")), message.get("content", ""))
        return out

    def bill(self, body: dict) -> dict:
        """The usage of one request (and the cache updated with its breakpoints' prefixes)."""
        blocks = self.blocks(body)
        marks = [i for i, (_, mark, _) in enumerate(blocks) if mark]
        if len(marks) > MAX_CACHE_BREAKPOINTS:
            raise CacheRequestError(f"A maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be "
                                    f"provided. Found {len(marks)}.")
        least = self.min_tokens if self.min_tokens is not None else \
            min_cacheable_tokens("anthropic", str(body.get("model") or ""))
        keys: list[bytes] = []     # keys[i]: the prefix up to and including block i
        ends: list[int] = []       # ends[i]: its tokens
        h, total = hashlib.sha256(), 0
        for text, _, tokens in blocks:
            h.update(text.encode() + b"\x01")
            keys.append(h.copy().digest())
            total += tokens
            ends.append(total)
        marks = [mark for mark in marks if ends[mark] >= least]    # shorter prefixes are not cached at all
        read = 0
        for mark in marks:
            for i in range(mark, max(-1, mark - CACHE_LOOKBACK_BLOCKS - 1), -1):
                if keys[i] in self.prefixes:
                    read = max(read, ends[i])
                    break
        cached_end = ends[marks[-1]] if marks else 0
        for mark in marks:
            self.prefixes.add(keys[mark])
        return {"input_tokens": total - cached_end, "cache_creation_input_tokens": max(0, cached_end - read),
                "cache_read_input_tokens": read}


# --------------------------------------------------------------------------- errors


def _reason(status: int) -> str:
    if status == 529:
        return "Overloaded"
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


_OPENAI_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist or you do not have access to it."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}

_ANTHROPIC_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out."),
    529: ("overloaded_error", "Overloaded"),
}


def openai_error_body(status: int, message: str | None = None) -> dict:
    """``{"error": {"message", "type", "param", "code"}}`` as the OpenAI API sends it."""
    default = _OPENAI_ERRORS.get(status) or (
        ("server_error", None, "Server error.") if status >= 500 else ("invalid_request_error", None, "Request error.")
    )
    etype, code, msg = default
    return {"error": {"message": message or msg, "type": etype, "param": None, "code": code}}


def anthropic_error_body(status: int, message: str | None = None, request_id: str | None = None) -> dict:
    """``{"type": "error", "error": {"type", "message"}, "request_id"}`` as the Anthropic API sends it."""
    default = _ANTHROPIC_ERRORS.get(status) or (
        ("api_error", "Internal server error") if status >= 500 else ("invalid_request_error", "Request error.")
    )
    etype, msg = default
    return {
        "type": "error",
        "error": {"type": etype, "message": message or msg},
        "request_id": request_id or "req_" + uuid.uuid4().hex[:24],
    }


def _fmt_seconds(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


# --------------------------------------------------------------------------- HTTP plumbing


class _BadRequest(Exception):
    pass


@dataclass
class _Request:
    method: str
    path: str
    query: str
    version: str
    headers: dict[str, str]
    raw_body: bytes

    @property
    def keep_alive(self) -> bool:
        conn = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in conn
        return "close" not in conn


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    """Read one request; None on a clean EOF between requests."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if not e.partial.strip():
            return None
        raise _BadRequest("incomplete request head") from e
    except asyncio.LimitOverrunError as e:
        raise _BadRequest("request head too large") from e
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, target, version = lines[0].split(" ", 2)
    except ValueError as e:
        raise _BadRequest("malformed request line") from e
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise _BadRequest("malformed header line")
        headers[name.strip().lower()] = value.strip()
    path, _, query = target.partition("?")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                # trailers, up to the blank line
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        raw_body = b"".join(parts)
    else:
        try:
            length = int(headers.get("content-length", "0") or "0")
        except ValueError as e:
            raise _BadRequest("bad content-length") from e
        raw_body = await reader.readexactly(length) if length > 0 else b""
    return _Request(method.upper(), path, query, version.strip().upper(), headers, raw_body)


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_reason(status)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


_CHUNK_END = b"0\r\n\r\n"


class _Dropped(Exception):
    """The handler closed or reset the connection on purpose."""


# --------------------------------------------------------------------------- wire formats

# Each stream is a sequence of (phase, payload) with phase in "pre", "content", "post":
# "content" events are the ones counted by Fault.after_chunks and spaced by chunk_delay;
# "pre" events (stream preamble, block boundaries between content) are always sent before
# the next content chunk; a "cut" stream is dropped at the first "post" event at the latest.


def _openai_events(body: dict, reply: ScriptedReply) -> Iterator[tuple[str, bytes]]:
    cid = "chatcmpl-" + uuid.uuid4().hex[:24]
    created = int(time.time())
    model = body.get("model") or DEFAULT_MODEL
    so = body.get("stream_options")
    include_usage = bool(isinstance(so, dict) and so.get("include_usage"))

    def ev(delta: dict, finish: str | None = None, choices: bool = True, usage: dict | None = None) -> bytes:
        obj: dict[str, Any] = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}] if choices else [],
        }
        if include_usage:
            obj["usage"] = usage
        return b"data: " + json.dumps(obj).encode() + b"\n\n"

    yield "pre", ev({"role": "assistant", "content": ""})
    for piece in reply.reasoning_chunks():
        yield "content", ev({"content": None, reply.reasoning_field: piece})
    for piece in reply.text_chunks():
        yield "content", ev({"content": piece})
    yield "post", ev({}, finish="stop")
    if include_usage and reply.stream_usage:
        yield "post", ev({}, choices=False, usage=_openai_usage(reply))
    yield "post", b"data: [DONE]\n\n"


def _openai_usage(reply: ScriptedReply) -> dict:
    out = reply.output_tokens()
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": out,
        "total_tokens": reply.prompt_tokens + out,
        "prompt_tokens_details": {"cached_tokens": reply.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reply.reasoning_tokens(),
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _openai_completion(body: dict, reply: ScriptedReply) -> dict:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text, "refusal": None}
    if reply.reasoning is not None:
        message[reply.reasoning_field] = reply.reasoning
    return {
        "id": "chatcmpl-" + uuid.uuid4().hex[:24],
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model") or DEFAULT_MODEL,
        "system_fingerprint": None,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
        "usage": _openai_usage(reply),
    }


def _signature(reasoning: str) -> str:
    return base64.b64encode(hashlib.sha256(reasoning.encode()).digest()).decode()


def _anthropic_usage(reply: ScriptedReply, output_tokens: int, billed: dict | None = None) -> dict:
    """Anthropic counts the input in three parts that do not overlap: uncached, read from and written to the
    cache. `billed`: what the prompt-cache model billed this request (it replaces the scripted parts)."""
    usage = {
        "input_tokens": max(0, reply.prompt_tokens - reply.cached_tokens - reply.cache_creation_tokens),
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": reply.cache_creation_tokens,
        "cache_read_input_tokens": reply.cached_tokens,
    }
    if billed is not None:
        usage.update(billed)
    return usage


def _anthropic_events(body: dict, reply: ScriptedReply, billed: dict | None = None) -> Iterator[tuple[str, bytes]]:
    def ev(name: str, obj: dict) -> bytes:
        return f"event: {name}\ndata: ".encode() + json.dumps(obj).encode() + b"\n\n"

    out = reply.output_tokens()
    message = {
        "id": "msg_" + uuid.uuid4().hex[:24],
        "type": "message",
        "role": "assistant",
        "model": body.get("model") or DEFAULT_MODEL,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": _anthropic_usage(reply, min(1, out), billed),
    }
    yield "pre", ev("message_start", {"type": "message_start", "message": message})
    index = 0
    if reply.reasoning is not None:
        start = {"type": "thinking", "thinking": "", "signature": ""}
        yield "pre", ev("content_block_start", {"type": "content_block_start", "index": index, "content_block": start})
        yield "pre", ev("ping", {"type": "ping"})
        for piece in reply.reasoning_chunks():
            delta = {"type": "thinking_delta", "thinking": piece}
            yield "content", ev("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
        delta = {"type": "signature_delta", "signature": _signature(reply.reasoning)}
        yield "pre", ev("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
        yield "pre", ev("content_block_stop", {"type": "content_block_stop", "index": index})
        index += 1
    start = {"type": "text", "text": ""}
    yield "pre", ev("content_block_start", {"type": "content_block_start", "index": index, "content_block": start})
    if reply.reasoning is None:
        yield "pre", ev("ping", {"type": "ping"})
    for piece in reply.text_chunks():
        delta = {"type": "text_delta", "text": piece}
        yield "content", ev("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
    yield "post", ev("content_block_stop", {"type": "content_block_stop", "index": index})
    yield "post", ev(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": _anthropic_usage(reply, out, billed),  # the API repeats the input counts here (cumulative)
        },
    )
    yield "post", ev("message_stop", {"type": "message_stop"})


def _anthropic_message(body: dict, reply: ScriptedReply, billed: dict | None = None) -> dict:
    content: list[dict] = []
    if reply.reasoning is not None:
        content.append({"type": "thinking", "thinking": reply.reasoning, "signature": _signature(reply.reasoning)})
    content.append({"type": "text", "text": reply.text, "citations": None})
    return {
        "id": "msg_" + uuid.uuid4().hex[:24],
        "type": "message",
        "role": "assistant",
        "model": body.get("model") or DEFAULT_MODEL,
        "content": content,
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": _anthropic_usage(reply, reply.output_tokens(), billed),
    }


# --------------------------------------------------------------------------- server


class FakeLLMServer:
    """See the module docstring.

    ``latency`` is slept before the first byte of every reply to a completion
    endpoint (error faults included; not for ``/v1/models``). ``chunk_delay`` is
    slept before every streamed content chunk but the first, so a streamed reply
    of n content chunks takes about ``latency + (n - 1) * chunk_delay``.
    ``port=0`` picks an ephemeral port; pass a port to restart on the same one.
    ``max_streams`` caps the completion requests it serves at once, as a model server's batch does
    (vLLM's ``--max-num-seqs``): the others wait in line, unanswered, until one ends.
    ``anthropic_cache=True`` bills Anthropic requests like the prompt cache (``AnthropicPromptCache``, with
    ``cache_min_tokens`` as its minimum cacheable length, None: the model's; in
    ``self.prompt_cache``; each request's usage in ``RecordedRequest.usage``); otherwise their usage is the
    responder's ``prompt_tokens`` with no cache tokens.
    """

    def __init__(
        self,
        responder: Callable[[dict], ScriptedReply] | None = None,
        *,
        latency: float = 0.0,
        chunk_delay: float = 0.0,
        port: int = 0,
        anthropic_cache: bool = False,
        cache_min_tokens: int | None = None,
        max_streams: int | None = None,
    ) -> None:
        if max_streams is not None and max_streams < 1:
            raise ValueError("max_streams must be at least 1")
        self.max_streams = max_streams
        self._streams: asyncio.Semaphore | None = None
        self.prompt_cache = AnthropicPromptCache(cache_min_tokens) if anthropic_cache else None
        self.responder = responder or default_responder
        self.latency = latency
        self.chunk_delay = chunk_delay
        self.port = port
        self.requests: list[RecordedRequest] = []
        self._requested_port = port
        self._lock = threading.Lock()
        self._faults: collections.deque[Fault] = collections.deque()
        self._connections_accepted = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._conns: dict[asyncio.Task, asyncio.StreamWriter] = {}
        self._ids = itertools.count(1)

    # ------------------------------------------------------------------ public API

    @property
    def openai_base_url(self) -> str:
        return f"http://{_HOST}:{self.port}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return f"http://{_HOST}:{self.port}"

    @property
    def connections_accepted(self) -> int:
        """TCP connections accepted so far (keep-alive reuse shows as fewer connections than requests)."""
        return self._connections_accepted

    @property
    def pending_faults(self) -> int:
        with self._lock:
            return len(self._faults)

    def add_faults(self, *faults: Fault) -> None:
        """Queue faults; each applies to the next request to a completion endpoint, in order."""
        for f in faults:
            if not isinstance(f, Fault):
                raise TypeError(f"expected Fault, got {type(f).__name__}")
        with self._lock:
            self._faults.extend(faults)

    def start(self) -> "FakeLLMServer":
        if self._thread is not None:
            raise RuntimeError("FakeLLMServer already started")
        self._ready.clear()
        self._startup_error = None
        self._thread = threading.Thread(target=self._run, name=f"FakeLLMServer:{self._requested_port}", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            self._thread.join()
            self._thread = None
            raise self._startup_error
        return self

    def stop(self) -> None:
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        if threading.current_thread() is thread:
            raise RuntimeError("FakeLLMServer.stop() called from its own thread (e.g. from a responder)")
        if loop is not None and self._stop_event is not None:
            try:
                loop.call_soon_threadsafe(self._stop_event.set)
            except RuntimeError:
                pass  # loop already closed
        thread.join(_STOP_JOIN_TIMEOUT)
        if thread.is_alive():
            raise RuntimeError("FakeLLMServer thread did not stop")
        self._thread = None
        self._loop = None

    def __enter__(self) -> "FakeLLMServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ loop thread

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as e:  # startup failure; reported by start()
            if not self._ready.is_set():
                self._startup_error = e
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                self._ready.set()

    async def _main(self) -> None:
        self._stop_event = asyncio.Event()
        self._streams = asyncio.Semaphore(self.max_streams) if self.max_streams else None
        server = await asyncio.start_server(
            self._on_connection, _HOST, self._requested_port, backlog=1024, limit=_MAX_HEADER_BYTES
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stop_event.wait()
        finally:
            server.close()
            for task, writer in list(self._conns.items()):
                _reset(writer)
                task.cancel()
            if self._conns:
                await asyncio.gather(*self._conns, return_exceptions=True)
            await server.wait_closed()

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns[task] = writer
        with self._lock:
            self._connections_accepted += 1
        sock = writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        try:
            while True:
                try:
                    req = await _read_request(reader)
                except _BadRequest as e:
                    await self._send_json(writer, 400, {"error": {"message": str(e)}}, keep_alive=False)
                    break
                if req is None:
                    break
                if self._streams is not None and req.method == "POST" and req.path in _COMPLETION_PATHS:
                    async with self._streams:
                        keep = await self._handle(req, writer)
                else:
                    keep = await self._handle(req, writer)
                if not keep:
                    break
        except (_Dropped, ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        except asyncio.CancelledError:
            pass  # stop(): the connection has already been reset
        finally:
            self._conns.pop(task, None)
            if not writer.is_closing():
                writer.close()

    # ------------------------------------------------------------------ request handling

    async def _handle(self, req: _Request, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; return whether the connection stays open."""
        body: dict | None = None
        bad_json = False
        if req.raw_body:
            try:
                parsed = json.loads(req.raw_body)
                body = parsed if isinstance(parsed, dict) else None
                bad_json = body is None
            except (ValueError, UnicodeDecodeError):
                bad_json = True

        api: str | None = None
        if req.path == "/v1/chat/completions":
            api = "openai"
        elif req.path == "/v1/messages":
            api = "anthropic"

        fault: Fault | None = None
        if api is not None and req.method == "POST":
            with self._lock:
                fault = self._faults.popleft() if self._faults else None

        record = RecordedRequest(
            method=req.method,
            path=req.path,
            headers=dict(req.headers),
            body=body,
            time=time.monotonic(),
            query=req.query,
            fault=fault,
        )
        with self._lock:
            self.requests.append(record)

        keep = req.keep_alive
        flavour = "anthropic" if api == "anthropic" or "anthropic-version" in req.headers else "openai"

        if req.path == "/v1/models" and req.method == "GET":
            await self._send_json(writer, 200, self._models_body(flavour), keep)
            return keep
        if api is None:
            await self._send_error(writer, flavour, 404, keep, message=f"Unknown path {req.method} {req.path}")
            return keep
        if req.method != "POST":
            await self._send_error(writer, flavour, 405, keep, message=f"Method {req.method} not allowed")
            return keep

        if fault is not None and fault.kind == "reset":
            _reset(writer)
            raise _Dropped
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        if fault is not None and fault.kind == "hang":
            await asyncio.sleep(fault.seconds)
        if fault is not None and fault.kind == "status":
            message = fault.message
            if message is not None:
                message = message.replace(ECHO_API_KEY, request_api_key(req.headers))
            await self._send_error(writer, api, fault.status, keep, retry_after=fault.retry_after,
                                   message=message)
            return keep
        if bad_json or body is None:
            await self._send_error(writer, api, 400, keep, message="Request body must be a JSON object")
            return keep

        try:
            reply = self.responder(body)
            if not isinstance(reply, ScriptedReply):
                raise TypeError(f"responder returned {type(reply).__name__}, not ScriptedReply")
            reply = with_echoed_key(reply, request_api_key(req.headers))
        except Exception as e:  # a broken responder is a 500 in the provider's shape
            await self._send_error(writer, api, 500, keep, message=f"fake responder failed: {e!r}")
            return keep

        billed: dict | None = None
        if api == "anthropic" and self.prompt_cache is not None:
            try:
                billed = self.prompt_cache.bill(body)
            except CacheRequestError as e:
                await self._send_error(writer, api, 400, keep, message=str(e))
                return keep
            record.usage = billed

        cut = fault if fault is not None and fault.kind == "cut" else None
        stream = bool(body.get("stream"))
        if not stream:
            obj = _openai_completion(body, reply) if api == "openai" else _anthropic_message(body, reply, billed)
            if cut is not None:
                data = json.dumps(obj).encode()
                headers = self._base_headers(api, "application/json", keep=True)
                headers["content-length"] = str(len(data))
                writer.write(_head(200, headers) + data[: len(data) // 2])
                await _close(writer)
                raise _Dropped
            await self._send_json(writer, 200, obj, keep, api=api)
            return keep

        events = _openai_events(body, reply) if api == "openai" else _anthropic_events(body, reply, billed)
        headers = self._base_headers(api, "text/event-stream; charset=utf-8", keep)
        headers["cache-control"] = "no-cache"
        headers["transfer-encoding"] = "chunked"
        writer.write(_head(200, headers))
        sent = 0
        for phase, payload in events:
            if cut is not None and (phase == "post" or (phase == "content" and sent >= cut.after_chunks)):
                await _close(writer)
                raise _Dropped
            if phase == "content":
                if sent > 0 and self.chunk_delay > 0:
                    await asyncio.sleep(self.chunk_delay)
                sent += 1
            writer.write(_chunk(payload))
            await writer.drain()
        writer.write(_CHUNK_END)
        await writer.drain()
        return keep

    # ------------------------------------------------------------------ responses

    def _request_id(self) -> str:
        return f"req_{next(self._ids):08d}{uuid.uuid4().hex[:16]}"

    def _base_headers(self, api: str, content_type: str, keep: bool, rid: str | None = None) -> dict[str, str]:
        headers = {"content-type": content_type}
        rid = rid or self._request_id()
        if api == "anthropic":
            headers["request-id"] = rid
        else:
            headers["x-request-id"] = rid
        headers["connection"] = "keep-alive" if keep else "close"
        return headers

    async def _send_json(
        self, writer: asyncio.StreamWriter, status: int, obj: dict, keep: bool, *, api: str = "openai",
        extra: dict[str, str] | None = None, rid: str | None = None,
    ) -> None:
        data = json.dumps(obj).encode()
        headers = self._base_headers(api, "application/json", keep, rid)
        headers["content-length"] = str(len(data))
        if extra:
            headers.update(extra)
        writer.write(_head(status, headers) + data)
        await writer.drain()
        if not keep:
            await _close(writer)

    async def _send_error(
        self, writer: asyncio.StreamWriter, api: str, status: int, keep: bool, *,
        message: str | None = None, retry_after: float | str | None = None,
    ) -> None:
        rid = self._request_id()
        obj = anthropic_error_body(status, message, rid) if api == "anthropic" else openai_error_body(status, message)
        extra = None
        if retry_after is not None:
            extra = {"retry-after": retry_after if isinstance(retry_after, str) else _fmt_seconds(retry_after)}
        await self._send_json(writer, status, obj, keep, api=api, extra=extra, rid=rid)

    @staticmethod
    def _models_body(flavour: str) -> dict:
        if flavour == "anthropic":
            return {
                "data": [
                    {
                        "type": "model",
                        "id": DEFAULT_MODEL,
                        "display_name": "Fake Model",
                        "created_at": "2025-01-01T00:00:00Z",
                    }
                ],
                "has_more": False,
                "first_id": DEFAULT_MODEL,
                "last_id": DEFAULT_MODEL,
            }
        return {
            "object": "list",
            "data": [{"id": DEFAULT_MODEL, "object": "model", "created": 1735689600, "owned_by": "lhe-tui"}],
        }


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0): no FIN handshake, no TIME_WAIT on the server port."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


async def _close(writer: asyncio.StreamWriter) -> None:
    """Flush what was written, then close with FIN."""
    try:
        await writer.drain()
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass
