"""A small HTTP/1.1 client for streamed POSTs: keep-alive pool, TLS, chunked or sized bodies.

Why by hand: the OpenAI provider sends one streamed POST per turn per sample, and at 64 concurrent
samples against a fast server the client's CPU per request decides whether the app or the model is the
bottleneck. Measured here (bench/request_cpu.py, docs/benchmarks.md section 1): the openai SDK ~4 ms
per streamed request, aiohttp ~0.8 ms, h11 on asyncio ~0.6 ms, this ~0.3 ms. It does only what those
requests need: no redirects, no cookies, no compression, no proxies (the provider uses the SDK when a
proxy applies), no HTTP/2. Response bodies are handed over piece by piece as they arrive.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

Body = bytes | Sequence[bytes | bytearray]
"""A request body: bytes, or pieces whose concatenation it is (joined once, with the head)."""
MAX_HEAD = 64 * 1024  # every response head (an interim one too), and every chunk-size or trailer line

# RFC 9112's grammar, as strict as h11 (the reference the fuzz test holds this parser to): a status line
# with a three-digit code; `token ":" OWS field-value OWS` fields; chunk sizes of 1*HEXDIG (with h11's
# leniency for trailing whitespace), an extension after `;`; Content-Length 1*DIGIT.
_STATUS = re.compile(r"HTTP/1\.[0-9] ([0-9]{3})(?: [^\x00\n\r\x0b\x0c]*)?")
_FIELD = re.compile(r"([-!#$%&'*+.^_`|~0-9a-zA-Z]+):[ \t]*([^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?[ \t]*", re.ASCII)
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,20})(?:;[^\n]*)?[ \t]*")
_DIGITS = re.compile(r"[0-9]{1,20}")


class HTTPError(Exception):
    """The connection failed or the server broke the protocol."""


class ConnectError(HTTPError):
    """No connection could be made."""


class ResponseCut(HTTPError):
    """The connection closed before the response was complete."""


class ReadTimeout(HTTPError, TimeoutError):
    """Nothing arrived for `timeout` seconds."""


# Parser states
_HEAD, _SIZE, _DATA, _DATA_END, _TRAILER, _LENGTH, _UNTIL_CLOSE, _DONE = range(8)


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection and the parser of the response in flight on it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = b""           # the start of a head, size line or chunk end not yet whole
        self.state = _DONE
        self.left = 0
        self.status = 0
        self.headers: dict[str, str] = {}
        self.keep_alive = False
        self.pieces: list[bytes] = []
        self.received = False       # any byte of the current response
        self.closed = False
        self.error: HTTPError | None = None
        self.waiter: asyncio.Future[None] | None = None
        # The read timeout: one timer per connection, moved on rather than made anew for every wait
        # (a TimerHandle and a heap push per read cost more than the rest of `wait`).
        self.deadline = 0.0
        self.timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received = True
        if self.state == _DONE:  # bytes nobody asked for: this connection cannot be trusted again
            self.keep_alive = False
            return
        if self.buffer:
            data = self.buffer + data
        try:
            at = self._parse(data)
        except HTTPError as exc:
            self.error = exc
            self.keep_alive = False
            at = len(data)
        self.buffer = data[at:] if at < len(data) else b""
        self._wake()

    def eof_received(self) -> bool | None:
        self._at_close()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._at_close()

    # -- the request/response cycle
    def start(self, request: bytes) -> None:
        self.state, self.buffer, self.pieces, self.received, self.error = _HEAD, b"", [], False, None
        self.headers = {}
        assert self.transport is not None
        self.transport.write(request)

    async def wait(self, timeout: float) -> None:
        """Until there is news: a head, body pieces, the end, an error, or `timeout` seconds of silence."""
        loop = asyncio.get_running_loop()
        self.deadline = deadline = loop.time() + timeout
        timer = self.timer
        if timer is None or timer.when() > deadline:  # none yet, or set for a longer wait than this one
            if timer is not None:
                timer.cancel()
            self.timer = loop.call_at(deadline, self._timer_fired, deadline)
        waiter = self.waiter = loop.create_future()
        try:
            await waiter
        finally:
            self.waiter = None

    def close(self) -> None:
        self.keep_alive = False
        self._stop_timer()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    @property
    def reusable(self) -> bool:
        return self.keep_alive and self.state == _DONE and not self.closed and self.error is None and \
            self.transport is not None and not self.transport.is_closing()

    def _timer_fired(self, when: float) -> None:
        """The timer was set for `when`: a wait that began since has a later deadline, so move it there."""
        self.timer = None
        waiter = self.waiter
        if waiter is None or waiter.done():
            return  # nobody waits: the next wait sets the timer again
        if self.deadline <= when:
            waiter.set_exception(ReadTimeout("no data from the server"))
        else:
            self.timer = asyncio.get_running_loop().call_at(self.deadline, self._timer_fired, self.deadline)

    def _stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def _at_close(self) -> None:
        self.closed = True
        if self.state == _UNTIL_CLOSE:
            self.state = _DONE
        elif self.state != _DONE and self.error is None:
            self.error = ResponseCut("the connection closed before the response was complete")
        self._wake()
        self._stop_timer()

    def _parse(self, data: bytes) -> int:
        """Consume what `data` holds; returns how much was consumed (the rest waits for more bytes)."""
        size = len(data)
        at = 0
        state, left, pieces = self.state, self.left, self.pieces
        try:
            while at < size:
                if state == _SIZE:
                    end = data.find(b"\r\n", at)
                    if end < 0:
                        if size - at > MAX_HEAD:
                            raise HTTPError("chunk size line too long")
                        return at
                    match = _CHUNK_SIZE.fullmatch(data, at, end)
                    if match is None:
                        raise HTTPError(f"bad chunk size line {data[at:end][:20]!r}")
                    at = end + 2
                    left = int(match[1], 16)
                    state = _DATA if left else _TRAILER
                elif state == _DATA or state == _LENGTH:
                    take = left if left < size - at else size - at
                    pieces.append(data[at:at + take] if take < size else data)
                    at += take
                    left -= take
                    if not left:
                        state = _DATA_END if state == _DATA else _DONE
                elif state == _DATA_END:
                    if size - at < 2:
                        return at
                    if data[at:at + 2] != b"\r\n":
                        raise HTTPError("chunk not followed by CRLF")
                    at += 2
                    state = _SIZE
                elif state == _HEAD:
                    end = data.find(b"\r\n\r\n", at)
                    if (end if end >= 0 else size) - at > MAX_HEAD:
                        raise HTTPError(f"response head larger than {MAX_HEAD // 1024} KiB")
                    if end < 0:
                        return at
                    head = data[at:end].decode("latin-1")
                    at = end + 4
                    self.state = state
                    self._read_head(head)
                    state, left = self.state, self.left
                elif state == _TRAILER:
                    end = data.find(b"\r\n", at)
                    if end < 0:
                        if size - at > MAX_HEAD:
                            raise HTTPError("trailer line too long")
                        return at
                    if end == at:
                        state = _DONE
                    elif _FIELD.fullmatch(data[at:end].decode("latin-1")) is None:
                        raise HTTPError("malformed trailer field")
                    at = end + 2
                elif state == _UNTIL_CLOSE:
                    pieces.append(data[at:] if at else data)
                    at = size
                else:  # _DONE with bytes left over: nothing may follow a response we did not ask for
                    self.keep_alive = False
                    at = size
            return at
        finally:
            self.state, self.left = state, left

    def _read_head(self, head: str) -> None:
        status_line, *lines = head.split("\r\n")
        match = _STATUS.fullmatch(status_line)
        if match is None:
            raise HTTPError(f"not an HTTP/1.x response: {status_line[:40]!r}")
        status = int(match[1])
        if status < 100:
            raise HTTPError(f"not an HTTP status: {status_line[:40]!r}")
        headers: dict[str, str] = {}
        length = chunked = None
        for line in lines:
            field = _FIELD.fullmatch(line)
            if field is None:
                raise HTTPError(f"malformed response header {line[:40]!r}")
            name, value = field[1].lower(), field[2] or ""
            if name == "content-length":  # 1*DIGIT; repeats (or a list) must agree
                values = {v.strip() for v in value.split(",")}
                if len(values) != 1 or not _DIGITS.fullmatch(value := values.pop()) or \
                        length not in (None, value):
                    raise HTTPError(f"bad content-length {field[2]!r}")
                length = value
            elif name == "transfer-encoding":  # only chunked, once: no other coding is asked for
                if chunked is not None or value.lower() != "chunked":
                    raise HTTPError(f"unsupported transfer-encoding {value[:40]!r}")
                chunked = True
            headers[name] = value
        if 100 <= status < 200:  # an interim response (100 Continue): the real one follows
            return
        self.status, self.headers = status, headers
        connection = headers.get("connection", "").lower()
        self.keep_alive = "close" not in connection and (status_line[7] != "0" or "keep-alive" in connection)
        if status in (204, 304):
            self.state = _DONE
        elif chunked:
            self.state = _SIZE
        elif length is not None:
            self.left = int(length)
            self.state = _LENGTH if self.left > 0 else _DONE
        else:
            self.state, self.keep_alive = _UNTIL_CLOSE, False


class Response:
    """A response whose head has arrived; the body comes through `pieces()` or `read()`, or `take()`,
    `ended()` and `wait()` for callers that read it without an async generator."""

    def __init__(self, connection: _Connection, timeout: float) -> None:
        self._conn = connection
        self._timeout = timeout
        self.status = connection.status
        self.headers = connection.headers

    def take(self) -> bytes:
        """The body that came since the last take, as one bytes (b"" if none)."""
        conn = self._conn
        pieces = conn.pieces
        if not pieces:
            return b""
        conn.pieces = []
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def ended(self) -> bool:
        """Whether the whole body is in; HTTPError if the response broke off."""
        conn = self._conn
        if conn.error is not None:
            raise conn.error
        return conn.state == _DONE

    async def wait(self, timeout: float | None = None) -> None:
        """Until more of the body, its end or an error arrives (ReadTimeout after `timeout` s of silence,
        the pool's timeout by default)."""
        await self._conn.wait(self._timeout if timeout is None else timeout)

    async def pieces(self) -> AsyncIterator[bytes]:
        """The body as it arrives (what came since the last piece, as one bytes); HTTPError if cut off."""
        while True:
            piece = self.take()
            if piece:
                yield piece
            if self.ended():
                return
            await self.wait()

    async def read(self) -> bytes:
        return b"".join([piece async for piece in self.pieces()])

    def close(self) -> None:
        """Drops the connection (a body not read to its end, or an error while reading it)."""
        self._conn.close()


class Http1Pool:
    """Keep-alive connections to one origin, made as needed (one per concurrent request).

    A pool belongs to the event loop it was first used on; `aclose()` closes its idle connections.
    """

    def __init__(self, url: str, *, timeout: float, ssl_context: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = (ssl_context or ssl.create_default_context()) if parts.scheme == "https" else None
        default_port = self.port == (443 if parts.scheme == "https" else 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = (host if default_port else f"{host}:{self.port}").encode("idna")
        self.base_path = parts.path.rstrip("/")
        self.query = f"?{parts.query}" if parts.query else ""   # sent as given (--base-url ...?api-version=V)
        self.timeout = timeout
        self._idle: list[_Connection] = []

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout):   # not wait_for: no task of its own per connection
                _, conn = await loop.create_connection(_Connection, self.host, self.port, ssl=self.ssl,
                                                       server_hostname=self.host if self.ssl else None)
        except TimeoutError:
            raise ConnectError(f"connecting to {self.host}:{self.port} timed out") from None
        except ConnectionRefusedError as exc:
            raise ConnectError(f"{self.host}:{self.port}: connection refused (is the server running?)") from exc
        except ssl.SSLError as exc:
            raise ConnectError(f"{self.host}:{self.port}: TLS: {exc.reason or exc}") from exc
        except OSError as exc:
            raise ConnectError(f"{self.host}:{self.port}: {exc.strerror or exc}") from exc
        return conn

    def _request_bytes(self, path: str, headers: bytes, body: Body) -> bytes:
        """The request's bytes: its head and its body (or the body's pieces) in one copy."""
        target = (self.base_path + path + self.query).encode()
        pieces = (body,) if isinstance(body, bytes) else body
        head = (b"POST %s HTTP/1.1\r\nHost: %s\r\n%sContent-Length: %d\r\n\r\n"
                % (target, self.host_header, headers, sum(map(len, pieces))))
        return b"".join((head, *pieces))

    @asynccontextmanager
    async def post(self, path: str, headers: bytes, body: Body) -> AsyncIterator[Response]:
        """POST `body` to base path + `path`; `headers` is a block of `Name: value\\r\\n` lines.

        Yields once the response head is in (see `send`).
        """
        response = await self.send(path, headers, body)
        try:
            yield response
        except BaseException:
            response.close()
            raise
        self.release(response)

    async def send(self, path: str, headers: bytes, body: Body) -> Response:
        """POST as `post` does, without the context manager: the caller reads the body, then hands the
        response to `release()`, or `close()`s it if it stops early or fails.

        Returns once the response head is in. A kept-alive connection the server had dropped (no byte
        of response) is retried once on a new connection, as browsers and urllib3 do.
        """
        request = self._request_bytes(path, headers, body)
        conn = None
        for fresh in (False, True):
            conn = self._checkout() if not fresh else None
            reused = conn is not None
            if conn is None:
                conn = await self._connect()
            conn.start(request)
            try:
                while conn.state == _HEAD and conn.error is None:
                    await conn.wait(self.timeout)
            except BaseException:
                conn.close()
                raise
            if conn.error is not None and conn.state == _HEAD:  # (an error in the body comes with the body)
                conn.close()
                if reused and not conn.received:
                    continue
                raise conn.error
            break
        assert conn is not None
        return Response(conn, self.timeout)

    def release(self, response: Response) -> None:
        """Takes back the connection of a response read to its end (closes it if it cannot serve again)."""
        conn = response._conn
        if conn.reusable:
            self._idle.append(conn)
        else:
            conn.close()

    def _checkout(self) -> _Connection | None:
        while self._idle:
            conn = self._idle.pop()
            if conn.reusable:
                return conn
            conn.close()
        return None

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()
