"""The small HTTP/1.1 client the OpenAI provider sends through: body framings, keep-alive, TLS, and
servers that break the protocol (each a clear HTTPError, never a hang or a traceback of our own)."""

import asyncio
import ssl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lhe_tui.providers.http1 import ConnectError, HTTPError, Http1Pool, ReadTimeout, ResponseCut


class Closing(bytes):
    """A scripted response after which the server closes the connection."""


class ScriptedServer:
    """Answers the n-th request with responses[n] (bytes, written at once); None: close without a word.
    After an HTTP/1.0 or a `Closing` response the server closes the connection.

    Reads each request's head and Content-Length body, so requests on one connection are kept apart.
    """

    def __init__(self, *responses, ssl_context=None):
        self.responses = list(responses)
        self.requests: list[bytes] = []
        self.connections = 0
        self.ssl = ssl_context

    async def __aenter__(self):
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0, ssl=self.ssl)
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"{'https' if self.ssl else 'http'}://{'localhost' if self.ssl else '127.0.0.1'}:{port}/v1"
        return self

    async def __aexit__(self, *exc):
        self.server.close()

    async def handle(self, reader, writer):
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                self.requests.append(head + await reader.readexactly(length))
                response = self.responses.pop(0) if self.responses else None
                if response is None:
                    break
                writer.write(response)
                await writer.drain()
                if response.startswith(b"HTTP/1.0") or isinstance(response, Closing):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


async def post(pool, body=b"{}"):
    async with pool.post("/chat/completions", b"X-Test: 1\r\n", body) as response:
        return response.status, response.headers, await response.read()


CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
SIZED = b"HTTP/1.1 201 Created\r\nContent-Length: 5\r\nRetry-After: 3\r\n\r\nhello"


@pytest.mark.parametrize("response, status, body", [
    (CHUNKED, 200, b"hello world"),
    (SIZED, 201, b"hello"),
    (b"HTTP/1.1 100 Continue\r\n\r\n" + SIZED, 201, b"hello"),
    (b"HTTP/1.1 204 No Content\r\n\r\n", 204, b""),
])
async def test_bodies_framed_every_way_are_read_and_the_connection_reused(response, status, body):
    async with ScriptedServer(response, response) as server:
        pool = Http1Pool(server.url, timeout=5)
        first = await post(pool, b'{"a": 1}')
        second = await post(pool)
        pool.close()
    assert first[0] == second[0] == status and first[2] == second[2] == body
    assert server.connections == 1
    request = server.requests[0]
    assert request.startswith(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"X-Test: 1\r\n" in request and request.endswith(b'Content-Length: 8\r\n\r\n{"a": 1}')


async def test_a_body_in_pieces_is_sent_as_their_concatenation_with_its_length():
    """The OpenAI provider hands its body as the encoder's pieces (one of them a bytearray it grows later)."""
    grown = bytearray(b'"messages": [1, 2')
    async with ScriptedServer(SIZED, SIZED) as server:
        pool = Http1Pool(server.url, timeout=5)
        assert (await post(pool, (b"{", grown, b"", b"]}")))[2] == b"hello"
        grown += b", 3"
        assert (await post(pool, (b"{", grown, b"]}")))[2] == b"hello"
        pool.close()
    assert server.requests[0].endswith(b'Content-Length: 20\r\n\r\n{"messages": [1, 2]}')
    assert server.requests[1].endswith(b'Content-Length: 23\r\n\r\n{"messages": [1, 2, 3]}')


async def test_headers_are_lower_cased_and_a_body_read_until_close_ends_the_connection():
    until_close = b"HTTP/1.0 200 OK\r\nRetry-After: 3\r\n\r\nstreamed until the end"
    async with ScriptedServer(until_close, None) as server:
        pool = Http1Pool(server.url, timeout=5)
        status, headers, body = await post(pool)
        assert (status, headers["retry-after"], body) == (200, "3", b"streamed until the end")
    assert pool._idle == []


async def test_pieces_arrive_as_they_are_sent():
    async def handle(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\none\r\n")
        await writer.drain()
        await release.wait()
        writer.write(b"3\r\ntwo\r\n0\r\n\r\n")
        await writer.drain()

    release = asyncio.Event()
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    pool = Http1Pool(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", timeout=5)
    seen = []
    async with pool.post("/x", b"", b"") as response:
        async for piece in response.pieces():
            seen.append(piece)
            release.set()
    pool.close()
    server.close()
    assert seen == [b"one", b"two"]


@pytest.mark.parametrize("response, error, needle", [
    (b"SSH-2.0-OpenSSH\r\n\r\n", HTTPError, "not an HTTP/1.x response"),
    (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", HTTPError, "malformed response header"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", HTTPError, "bad chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY", HTTPError, "CRLF"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", ResponseCut, "closed before"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", ResponseCut, "closed before"),
])
async def test_broken_responses_raise_a_clear_http_error(response, error, needle):
    async with ScriptedServer(Closing(response)) as server:
        pool = Http1Pool(server.url, timeout=5)
        with pytest.raises(error, match=needle):
            await post(pool)
        pool.close()


async def test_a_kept_alive_connection_the_server_dropped_is_retried_once_on_a_new_one():
    async with ScriptedServer(SIZED, None, SIZED) as server:
        pool = Http1Pool(server.url, timeout=5)
        await post(pool)
        # the server reads the second request and closes without a byte: the client asks again, anew
        status, _, body = await post(pool)
        pool.close()
    assert (status, body) == (201, b"hello") and server.connections == 2 and len(server.requests) == 3


async def test_a_fresh_connection_closed_without_an_answer_is_not_retried():
    async with ScriptedServer(None) as server:
        pool = Http1Pool(server.url, timeout=5)
        with pytest.raises(ResponseCut):
            await post(pool)
        pool.close()
    assert len(server.requests) == 1


async def test_silence_is_a_read_timeout_and_no_server_is_a_connect_error():
    async def never(reader, writer):
        await asyncio.sleep(5)

    server = await asyncio.start_server(never, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = Http1Pool(f"http://127.0.0.1:{port}", timeout=0.2)
    with pytest.raises(ReadTimeout):
        await post(pool)
    server.close()
    await server.wait_closed()
    with pytest.raises(ConnectError, match=f"127.0.0.1:{port}"):
        await post(Http1Pool(f"http://127.0.0.1:{port}", timeout=0.5))


async def test_a_connection_that_never_completes_is_a_connect_error_after_the_timeout(monkeypatch):
    """The handshake hangs (a filtered port): the pool gives up after its timeout, in one line, and the
    request does not hang."""
    loop = asyncio.get_running_loop()

    async def hang(*args, **kwargs):
        await asyncio.sleep(30)

    monkeypatch.setattr(loop, "create_connection", hang)
    started = loop.time()
    with pytest.raises(ConnectError, match="connecting to 127.0.0.1:9 timed out"):
        await asyncio.wait_for(post(Http1Pool("http://127.0.0.1:9", timeout=0.2)), 5)
    assert 0.15 < loop.time() - started < 2


async def test_the_read_timeout_counts_silence_not_the_whole_response():
    """Pieces 0.15 s apart, 0.6 s in all, with a 0.3 s timeout: no timeout; then silence: a timeout."""
    async def handle(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(4):
            await asyncio.sleep(0.15)
            writer.write(b"1\r\nx\r\n")
        writer.write(b"0\r\n\r\n")
        await reader.readuntil(b"\r\n\r\n")  # the second request: a head, one piece, then silence
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\ny\r\n")
        await asyncio.sleep(5)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    pool = Http1Pool(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", timeout=0.3)
    assert (await post(pool, b""))[2] == b"xxxx"
    seen = []
    with pytest.raises(ReadTimeout):
        async with pool.post("/x", b"", b"") as response:
            async for piece in response.pieces():
                seen.append(piece)
    assert seen == [b"y"]
    pool.close()
    server.close()


def test_only_http_urls_are_accepted_and_the_host_header_omits_default_ports():
    with pytest.raises(ValueError, match="not an http"):
        Http1Pool("ftp://example.com", timeout=1)
    assert Http1Pool("https://api.example.com/v1/", timeout=1).host_header == b"api.example.com"
    assert Http1Pool("http://[::1]:8080/v1", timeout=1).host_header == b"[::1]:8080"


async def test_https_with_a_trusted_certificate_and_refusal_of_an_untrusted_one():
    trustme = pytest.importorskip("trustme", reason="trustme (in the test extra) makes the test CA")
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    async with ScriptedServer(SIZED, SIZED, ssl_context=server_context) as server:
        pool = Http1Pool(server.url, timeout=5, ssl_context=client_context)
        assert (await post(pool))[2] == b"hello"
        pool.close()
        with pytest.raises(ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await post(Http1Pool(server.url, timeout=5, ssl_context=ssl.create_default_context()))


def parse_in_pieces(response: bytes, cuts: list[int]):
    """Feed a response to one connection's parser in the given pieces; return (status, body, done)."""
    from lhe_tui.providers import http1

    conn = http1._Connection()

    class Transport:
        def write(self, data):
            pass

        def is_closing(self):
            return False

    conn.connection_made(Transport())
    conn.start(b"")
    points = sorted({min(c, len(response)) for c in cuts} | {0, len(response)})
    for a, b in zip(points, points[1:]):
        conn.data_received(response[a:b])
    return conn.status, b"".join(conn.pieces), conn.state == http1._DONE, conn.error


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=40), max_size=6), st.booleans(),
       st.lists(st.integers(min_value=0, max_value=400), max_size=12))
def test_any_split_of_a_response_parses_to_the_same_body(chunks, chunked, cuts):
    body = b"".join(chunks)
    if chunked:
        framed = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
        head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    else:
        framed = body
        head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
    assert parse_in_pieces(head + framed, cuts) == (200, body, True, None)
