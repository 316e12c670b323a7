"""Run `FakeLLMServer` in its own process, for benchmarks that must not share the GIL with the client.

    python bench/_fake_server.py --latency 0.05 [--reply '<answer>0</answer>'] [--chunk-delay 0]

Prints the OpenAI base URL on the first line of stdout, then serves until stdin is closed (so the
parent ending, even by a crash, ends the server). A line `cpu` on stdin answers `cpu=S requests=N`
(the server's own CPU seconds so far: how much of a core it needs). On exit prints the number of
completion requests and TCP connections it saw and its CPU, as `requests=N connections=M cpu=S`.

`FakeServerProcess` is the parent side (a context manager) used by bench/overhead.py.
"""

from __future__ import annotations

import argparse
import resource
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

    def __init__(self, latency: float, chunk_delay: float = 0.0, reply: str = DEFAULT_REPLY) -> None:
        self.args = [sys.executable, str(Path(__file__).resolve()), "--latency", repr(latency),
                     "--chunk-delay", repr(chunk_delay), "--reply", reply]
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

    def cpu(self) -> tuple[float, int]:
        """The server process's CPU seconds so far (user + system) and the requests it has served."""
        assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("cpu\n")
        self.proc.stdin.flush()
        fields = dict(part.split("=") for part in self.proc.stdout.readline().split())
        return float(fields["cpu"]), int(fields["requests"])

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
    args = parser.parse_args()
    _serve(args.latency, args.chunk_delay, args.reply)


if __name__ == "__main__":
    main()
