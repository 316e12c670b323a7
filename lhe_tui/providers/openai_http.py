"""Streamed Chat Completions requests over `http1`: the OpenAI provider's default client.

Why not the openai SDK here: it costs ~4 ms of client CPU per streamed request (request building,
httpx's pool bookkeeping, pure-Python SSE decoding), which made the client, not the model, the
bottleneck from ~16 concurrent samples on (docs/benchmarks.md, section 1). This client, with the body
pre-encoded by `BodyEncoder`, costs a fraction of that. The SDK stays the client when a proxy applies
or when asked for (`LHE_TUI_OPENAI_CLIENT=sdk`); both are tested against the same local server.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
from collections.abc import Callable
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

from lhe_tui import __version__
from lhe_tui.common.errors import ProviderError
from lhe_tui.providers.failures import (broke_off, cannot_connect, connection_lost, invalid_utf8, redirected,
                                        status_error, timed_out)
from lhe_tui.providers.http1 import Body, ConnectError, HTTPError, Http1Pool, ReadTimeout, Response, ResponseCut
from lhe_tui.providers.base import ReplyTooLarge
from lhe_tui.providers.openai_stream import stream_error

OPENAI_API = "https://api.openai.com/v1"
_decoder = json.JSONDecoder()
_scan = _decoder.scan_once


def _loads(text: str) -> object:
    """json.loads(text), for a stream event's data: the C scanner straight on it (JSONDecoder.decode adds two
    regex matches and two Python calls, about a quarter of the cost of a chunk), the full decoder for
    anything else (whitespace around the value, extra data, errors), so the outcome is always decode's."""
    try:
        value, end = _scan(text, 0)
    except (StopIteration, ValueError):
        return _decoder.decode(text)
    return value if end == len(text) else _decoder.decode(text)


def proxy_for(url: str) -> str | None:
    """The proxy the environment (HTTP(S)_PROXY, NO_PROXY) sets for `url`, if any."""
    parts = urlsplit(url)
    proxy = getproxies().get(parts.scheme)
    if not proxy or (parts.hostname and proxy_bypass(parts.hostname)):
        return None
    return proxy


def _ssl_context() -> ssl.SSLContext:
    try:  # the CA bundle the SDK (httpx) uses, for the same verdicts; the system's otherwise
        import certifi
    except ImportError:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


def _error_message(raw: bytes) -> str:
    """The `error.message` of an error body, else its text."""
    try:
        body = json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    return raw.decode("utf-8", "replace")


class SSEDecoder:
    """Server-sent events from bytes as they arrive: `feed` returns the `data` of each complete event.

    Lines end with CRLF, LF or a lone CR (the SSE spec). A line still open is kept as its pieces and
    joined once it ends, so a long line costs time linear in its length (re-joining it on every read
    was quadratic: a 40 MB line took 12 s); one longer than `max_line` bytes raises ReplyTooLarge.
    """

    __slots__ = ("_partial", "_size", "_data", "_skip_lf", "max_line")

    def __init__(self, max_line: int | None = None) -> None:
        self._partial: list[bytes] = []  # the pieces of the line not yet ended
        self._size = 0
        self._data: list[bytes] = []
        self._skip_lf = False            # the last read ended with CR: an LF first in the next is its pair
        self.max_line = max_line

    def feed(self, chunk: bytes) -> list[bytes]:
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if self._partial:
            self._partial.append(chunk)
            if b"\n" not in chunk and b"\r" not in chunk:  # the line goes on: keep the piece, join later
                self._size += len(chunk)
                if self.max_line is not None and self._size > self.max_line:
                    raise ReplyTooLarge(f"an event line passed {self.max_line:,} bytes")
                return []
            text = b"".join(self._partial)
            self._partial, self._size = [], 0
        else:
            text = chunk
        if b"\r" in text:
            self._skip_lf = text.endswith(b"\r")
            text = text.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if not self._data and text.endswith(b"\n\n"):
            # The usual shape (what OpenAI, vLLM and llama.cpp send): whole `data: ...` events, one
            # line each. Anything else takes the line-by-line way below.
            blocks = text[:-2].split(b"\n\n")
            # (told by counting, in C: with no newline inside a block, the 2 per block are the separators,
            # and every block starts with `data: ` when the first does and every separator is followed by it)
            if (text.count(b"\n") == 2 * len(blocks) and text.startswith(b"data: ")
                    and text.count(b"\n\ndata: ") == len(blocks) - 1):
                return [b[6:] for b in blocks]
        lines = text.split(b"\n")
        rest = lines.pop()
        if rest:
            self._partial, self._size = [rest], len(rest)
            if self.max_line is not None and self._size > self.max_line:
                raise ReplyTooLarge(f"an event line passed {self.max_line:,} bytes")
        events = []
        for line in lines:
            if not line:
                if self._data:
                    events.append(b"\n".join(self._data))
                    self._data = []
            elif line.startswith(b"data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(b" ") else value)
            # other fields (event:, id:, retry:) and comments (":") carry nothing for chat completions
        return events


DONE_GRACE = 0.1  # seconds the body may take to end after the stream's [DONE] (the last chunk's CRLFs)


async def _ended_soon(response: Response) -> bool:
    """After [DONE] the reply is complete. Whether the body also ends cleanly within DONE_GRACE (the
    usual case: its last bytes are on their way), so that the connection can serve again; a body that is
    late, cut off or broken (Content-Length too long, a chunk longer than its data, the final CRLF
    missing) holds the reply up no longer than that and its connection is closed."""
    end = asyncio.get_running_loop().time() + DONE_GRACE
    try:
        while not response.ended():
            left = end - asyncio.get_running_loop().time()
            if left <= 0:
                return False
            await response.wait(left)
            response.take()
    except HTTPError:
        return False
    return True


class DirectChatClient:
    """POSTs a pre-encoded body to {base_url}/chat/completions and yields the stream's chunks as dicts.

    One connection pool per event loop (made on first use there).
    """

    def __init__(self, *, api_key: str, base_url: str | None, timeout: float, provider: str = "openai",
                 max_line: int | None = None) -> None:
        self.provider = provider
        self.max_line = max_line
        self.base_url = base_url or OPENAI_API
        self.timeout = timeout
        headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json",
                   "Accept": "text/event-stream", "User-Agent": f"lhe-tui/{__version__}"}
        for env, header in (("OPENAI_ORG_ID", "OpenAI-Organization"), ("OPENAI_PROJECT_ID", "OpenAI-Project")):
            if os.environ.get(env):
                headers[header] = os.environ[env]
        self.header_block = "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode("latin-1")
        self._pool: Http1Pool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _pool_for_loop(self) -> Http1Pool:
        loop = asyncio.get_running_loop()
        if self._pool is None or self._loop is not loop:
            self._loop = loop
            https = self.base_url.startswith("https:")
            self._pool = Http1Pool(self.base_url, timeout=self.timeout, ssl_context=_ssl_context() if https else None)
        return self._pool

    async def send(self, body: Body, on_chunks: Callable[[list[dict]], None]) -> None:
        """POSTs `body` (bytes, or pieces: http1.Body) and hands the stream's chunks (parsed JSON) to
        `on_chunks`, a list per network read (so deltas can be handed on once per read); errors as
        ProviderErrors.

        Plain awaits and a callback rather than context managers and async generators, whose machinery
        (two context managers, two async generators with their first-iteration hooks and closing) was a
        good part of the client's CPU per request.
        """
        provider = self.provider
        pool = self._pool_for_loop()
        try:
            response = await pool.send("/chat/completions", self.header_block, body)
            try:
                if 300 <= response.status < 400:
                    raise redirected(provider, response.status, response.headers)
                if response.status >= 400:
                    raise status_error(provider, response.status, _error_message(await response.read()),
                                       response.headers)
                decoder = SSEDecoder(self.max_line)
                done = False
                while True:
                    raw = response.take()
                    if raw:
                        batch, done = self._chunks(decoder, raw)
                        if batch:
                            on_chunks(batch)
                        if done:  # the reply is complete, whatever the framing does next
                            break
                    if response.ended():
                        break
                    await response.wait()
            except BaseException:
                response.close()
                raise
            if done and not await _ended_soon(response):
                response.close()
            else:
                pool.release(response)
        except ReadTimeout as exc:
            raise timed_out(provider) from exc
        except ConnectError as exc:
            raise cannot_connect(provider, exc, self.base_url) from exc
        except ResponseCut as exc:
            raise broke_off(provider, exc) from exc
        except (HTTPError, OSError) as exc:
            raise connection_lost(provider, exc) from exc

    def _chunks(self, decoder: SSEDecoder, raw: bytes) -> tuple[list[dict], bool]:
        """The chunks of one network read, and whether the stream's [DONE] came."""
        batch = []
        for data in decoder.feed(raw):
            if data.startswith(b"[DONE]"):
                return batch, True
            try:
                chunk = _loads(data.decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise invalid_utf8(self.provider, exc) from None
            except ValueError:
                raise ProviderError(f"{self.provider}: the stream sent malformed JSON: {data[:80]!r}",
                                    transient=True) from None
            if isinstance(chunk, dict):
                if "error" in chunk:
                    message = stream_error(chunk)
                    if message is not None:
                        raise ProviderError(f"{self.provider}: the server sent an error: {message}", transient=True)
                batch.append(chunk)
        return batch, False

    async def aclose(self) -> None:
        if self._pool is not None:
            self._pool.close()
        self._pool = None
