"""Run a fixed-reply OpenAI-compatible server in its own process, for benchmarks that must not share the
GIL with the client.

    python bench/_fake_server.py --latency 0.05 [--reply '<answer>0</answer>'] [--chunk-delay 0] [--full]

By default the server is `FixedReplyServer`: an asyncio protocol that answers every POST after the latency
with the same pre-built bytes, the stream `FakeLLMServer` sends for that reply (role chunk, content chunks
of 4 characters, finish chunk, usage chunk, [DONE]; each event its own HTTP chunk, written at once). It
costs ~0.2 ms of CPU per request against FakeLLMServer's ~0.7 ms (which parses each body, records each
request and writes each event separately): at 64 samples x L = 50 ms the full server needs most of a core
itself, and on a 2-core machine it then competes with the client it is meant to measure. `--full` (or
`--chunk-delay` > 0) serves with FakeLLMServer instead.

Prints the OpenAI base URL on the first line of stdout, then serves until stdin is closed (so the
parent ending, even by a crash, ends the server). A line `cpu` on stdin answers `cpu=S requests=N`
(the server's own CPU seconds so far: how much of a core it needs). On exit prints the number of
completion requests and TCP connections it saw and its CPU, as `requests=N connections=M cpu=S`.

`FakeServerProcess` is the parent side (a context manager) used by bench/overhead.py.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import selectors
import subprocess
import sys
from pathlib import Path

DEFAULT_REPLY = "<answer>0</answer>"


class CountingLog(list):
    """Stands in for `FakeLLMServer.requests`: counts appended requests but keeps none.

    The server keeps every RecordedRequest with its parsed body; over a benchmark that is every
    history ever sent (hundreds of MB at 64 samples x 200 turns), which would slow the process down
    through memory and garbage collection and distort the figures.
    """

    count = 0

    def append(self, item: object) -> None:
        self.count += 1


def start_server(latency: float, chunk_delay: float = 0.0, reply: str = DEFAULT_REPLY):
    """A started in-process FakeLLMServer with a fixed reply and a request log that keeps nothing."""
    from lhe_tui.testing.fake_llm_server import FakeLLMServer, ScriptedReply

    fixed = ScriptedReply(text=reply)
    server = FakeLLMServer(lambda body: fixed, latency=latency, chunk_delay=chunk_delay)
    server.requests = CountingLog()
    return server.start()


def fixed_reply_bytes(reply: str, api: str = "openai") -> bytes:
    """The whole HTTP response FakeLLMServer sends for a streamed chat completion of `reply` (`api`
    "anthropic": for a streamed Messages request)."""
    from lhe_tui.testing.fake_llm_server import ScriptedReply, _anthropic_events, _openai_events

    body = {"model": "fake-model", "stream": True, "stream_options": {"include_usage": True}}
    stream = (_openai_events if api == "openai" else _anthropic_events)(body, ScriptedReply(text=reply))
    events = b"".join(b"%x\r\n%s\r\n" % (len(payload), payload) for _, payload in stream)
    head = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ncache-control: no-cache\r\n"
            b"transfer-encoding: chunked\r\n\r\n")
    return head + events + b"0\r\n\r\n"


class FixedReplyServer:
    """Answers each HTTP/1.1 POST (keep-alive, Content-Length bodies) with `response` after `latency` s
    (a POST to .../messages, with `anthropic` if given: the Anthropic SDK reads only its own stream)."""

    def __init__(self, latency: float, response: bytes, anthropic: bytes | None = None) -> None:
        self.latency = latency
        self.response = response
        self.anthropic = anthropic or response
        self.requests = CountingLog()
        self.connections_accepted = 0
        self.late_s = 0.0  # summed over requests: how much later than `latency` after its body each reply went

    def protocol(self) -> asyncio.Protocol:
        server = self

        class Connection(asyncio.BufferedProtocol):
            """Reads into one reused 64 KB buffer and counts a body's bytes without keeping them: the
            server shares this machine with the client it measures, and a 1 MB body copied and kept
            each request evicted the client's caches too (bench/per_turn_cost.py)."""

            def __init__(self) -> None:
                self.view = memoryview(bytearray(1 << 16))
                self.head = bytearray()              # a request head read so far
                self.body_left: int | None = None    # None: reading a request head
                self.reply = server.response

            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport
                server.connections_accepted += 1

            def get_buffer(self, sizehint: int) -> memoryview:
                return self.view

            def buffer_updated(self, nbytes: int) -> None:
                data = self.view[:nbytes]
                while True:
                    if self.body_left is None:
                        if not data:
                            return
                        self.head += data
                        end = self.head.find(b"\r\n\r\n")
                        if end < 0:
                            return
                        after = len(self.head) - (end + 4)   # bytes of this read past the head
                        head = bytes(self.head[:end]).lower()
                        self.head = bytearray()
                        data = data[len(data) - after:]
                        target = head.split(b" ", 2)[1].split(b"?", 1)[0] if head.count(b" ") >= 2 else b""
                        self.reply = server.anthropic if target.endswith(b"/messages") else server.response
                        at = head.find(b"\r\ncontent-length:")
                        self.body_left = int(head[at + 17:].split(b"\r\n", 1)[0]) if at >= 0 else 0
                    take = min(len(data), self.body_left)
                    self.body_left -= take
                    data = data[take:]
                    if self.body_left:
                        return
                    self.body_left = None
                    server.requests.append(None)
                    loop = asyncio.get_running_loop()
                    loop.call_later(server.latency, self.answer, loop.time() + server.latency)

            def answer(self, due: float) -> None:
                server.late_s += asyncio.get_running_loop().time() - due
                if not self.transport.is_closing():
                    self.transport.write(self.reply)

        return Connection()

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        listener = await loop.create_server(self.protocol, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        print(f"http://127.0.0.1:{port}/v1", flush=True)
        lines = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(lines), sys.stdin)
        try:
            while line := await lines.readline():  # "cpu" asks for the CPU used so far; end of input ends it
                if line.strip() == b"cpu":
                    print(f"cpu={cpu_seconds():.3f} requests={self.requests.count} late={self.late_s:.4f}",
                          flush=True)
        finally:
            listener.close()
            print(f"requests={self.requests.count} connections={self.connections_accepted} "
                  f"cpu={cpu_seconds():.3f} late={self.late_s:.4f}", flush=True)


def timely_runner() -> asyncio.Runner:
    """An asyncio Runner whose loop waits on select(), for a server that must keep its timers to the
    microsecond. select() takes its timeout in microseconds; epoll, asyncio's default, in whole milliseconds
    rounded up, which sent every reply 0.2-0.3 ms late on average: the ideal model is to take exactly L."""
    return asyncio.Runner(loop_factory=lambda: asyncio.SelectorEventLoop(selectors.SelectSelector()))


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _serve(latency: float, chunk_delay: float, reply: str) -> None:
    server = start_server(latency, chunk_delay, reply)
    print(server.openai_base_url, flush=True)
    try:
        for line in sys.stdin:  # "cpu" asks for the CPU time used so far; end of input ends the server
            if line.strip() == "cpu":
                print(f"cpu={cpu_seconds():.3f} requests={server.requests.count}", flush=True)
    finally:
        connections = server.connections_accepted
        server.stop()
        print(f"requests={server.requests.count} connections={connections} cpu={cpu_seconds():.3f}", flush=True)


class FakeServerProcess:
    """Start `_fake_server.py` as a child process; `.base_url` once entered."""

    def __init__(self, latency: float, chunk_delay: float = 0.0, reply: str = DEFAULT_REPLY,
                 full: bool = False) -> None:
        self.args = [sys.executable, str(Path(__file__).resolve()), "--latency", repr(latency),
                     "--chunk-delay", repr(chunk_delay), "--reply", reply] + (["--full"] if full else [])
        self.proc: subprocess.Popen | None = None
        self.base_url = ""
        self.stats = ""

    def __enter__(self) -> "FakeServerProcess":
        self.proc = subprocess.Popen(self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        assert self.proc.stdout is not None
        self.base_url = self.proc.stdout.readline().strip()
        if not self.base_url.startswith("http"):
            self.proc.kill()
            raise RuntimeError(f"fake server did not start (said {self.base_url!r})")
        return self

    def cpu(self) -> tuple[float, int, float]:
        """The server process's CPU seconds so far (user + system), the requests it has served, and the
        seconds its replies went out later than the latency, summed (its timer's lateness; nan if unknown)."""
        assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("cpu\n")
        self.proc.stdin.flush()
        fields = dict(part.split("=") for part in self.proc.stdout.readline().split())
        return float(fields["cpu"]), int(fields["requests"]), float(fields.get("late", "nan"))

    def __exit__(self, *exc: object) -> None:
        proc = self.proc
        if proc is None:
            return
        try:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.close()
            self.stats = proc.stdout.read().strip()
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--chunk-delay", type=float, default=0.0)
    parser.add_argument("--reply", default=DEFAULT_REPLY)
    parser.add_argument("--full", action="store_true", help="serve with FakeLLMServer (parses and records)")
    args = parser.parse_args()
    if args.full or args.chunk_delay > 0:
        _serve(args.latency, args.chunk_delay, args.reply)
    else:
        with timely_runner() as runner:
            runner.run(FixedReplyServer(args.latency, fixed_reply_bytes(args.reply),
                                        fixed_reply_bytes(args.reply, "anthropic")).serve())


if __name__ == "__main__":
    main()
