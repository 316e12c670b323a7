"""The floor under bench/overhead.py, taken apart: what one round trip over loopback costs on this machine
beyond the model's latency L, with no HTTP, no JSON and no engine.

A server in a child process (on bench/_fake_server.py's `timely_runner`, whose timers it keeps to the
microsecond) answers each 1-byte request with 1 byte, L seconds after it read it; one client sends
the requests one after another. Both stamp with CLOCK_MONOTONIC, which the two processes share, so each
round trip splits into

    to the server   the client's send to the server's read of it
    server's timer  how much later than L after that read the server's reply went (its timer firing)
    to the client   the server's send to the client's read of the reply
    over L          the client's send to its read, less L: the three above

A 50 ms wait lets both vCPUs go idle, so on a VM each hop includes waking one (the host must schedule it
again); `--latency 0` shows the same hops with neither idle for long. Printed: median and mean a round trip
for each, and the overhead a client that does nothing else would measure at that L, (L + over L) / L.
bench/overhead.py's ideal is T x L: that overhead is the part of its figure no client can remove here.

    python bench/wakeup_latency.py                        # L = 50 ms and L = 0, 200 round trips each
    python bench/wakeup_latency.py --latency 0.05 --round-trips 500
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import statistics
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _fake_server import timely_runner  # noqa: E402

STOP = b"q"


def serve(latency: float, ports: multiprocessing.Queue, stamps: multiprocessing.Queue) -> None:
    """The child: answers each byte with a byte `latency` s after reading it; on STOP, hands back its
    (read, answered) stamps."""
    read: list[float] = []
    answered: list[float] = []

    class Echo(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            if data == STOP:
                stamps.put((read, answered))
                return
            read.append(time.monotonic())
            loop = asyncio.get_running_loop()
            loop.call_at(loop.time() + latency, self.answer)

        def answer(self) -> None:
            answered.append(time.monotonic())
            self.transport.write(b"a")  # type: ignore[attr-defined]

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", 0)
        ports.put(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()   # killed by the parent

    with timely_runner() as runner:
        runner.run(main())


async def round_trips(port: int, count: int) -> tuple[list[float], list[float]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent: list[float] = []
    got: list[float] = []
    for _ in range(count):
        sent.append(time.monotonic())
        writer.write(b"r")
        await reader.readexactly(1)
        got.append(time.monotonic())
    writer.write(STOP)
    await writer.drain()
    return sent, got


def measure(latency: float, count: int) -> dict[str, list[float]]:
    """One server at `latency`, `count` round trips: each hop's time a round trip, in seconds."""
    context = multiprocessing.get_context("spawn")
    ports, stamps = context.Queue(), context.Queue()
    child = context.Process(target=serve, args=(latency, ports, stamps), daemon=True)
    child.start()
    try:
        port = ports.get(timeout=30)
        sent, got = asyncio.run(round_trips(port, count))
        read, answered = stamps.get(timeout=30)
    finally:
        child.kill()
        child.join()
    return {
        "to the server": [r - s for s, r in zip(sent, read)],
        "server's timer": [a - r - latency for r, a in zip(read, answered)],
        "to the client": [g - a for a, g in zip(answered, got)],
        "over L": [g - s - latency for s, g in zip(sent, got)],
    }


def cpu_idle() -> str:
    base = Path("/sys/devices/system/cpu/cpuidle")
    try:
        driver, governor = ((base / name).read_text().strip() for name in ("current_driver", "current_governor"))
    except OSError:
        return "cpuidle unknown"
    return f"cpuidle {driver}/{governor}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, nargs="+", default=[0.05, 0.0], help="L in seconds (default 0.05 0)")
    parser.add_argument("--round-trips", type=int, default=200)
    args = parser.parse_args(argv)
    if args.round_trips < 1 or any(not 0 <= latency <= 10 for latency in args.latency):
        parser.error("--round-trips must be at least 1 and --latency between 0 and 10 s")
    print(f"one round trip over loopback, 1 byte each way: {os.cpu_count()} cores, {cpu_idle()}, "
          f"load {os.getloadavg()[0]:.2f}; ms a round trip, median (mean)")
    for latency in args.latency:
        hops = measure(latency, args.round_trips)
        cells = "  ".join(f"{name} {statistics.median(v) * 1e3:.3f} ({statistics.mean(v) * 1e3:.3f})"
                          for name, v in hops.items())
        floor = ""
        if latency > 0:
            floor = f"  -> a client that does nothing: overhead {1 + statistics.mean(hops['over L']) / latency:.4f}"
        print(f"  L = {latency * 1e3:g} ms, {args.round_trips} round trips: {cells}{floor}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
