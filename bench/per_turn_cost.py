"""Flat per-turn cost (issues 6 and 26): the engine's own CPU per turn at turn 10, 1,000 and 10,000 of one
sample, on every provider path: an instant in-process provider (the engine alone), the sim, and the real
OpenAI and Anthropic providers against a local zero-latency server in a child process.

Each path runs one sample through the real engine (Runner, EventBus, SessionWriter on a throw-away SQLite
store, token deltas emitted). The instant and sim paths run whole, from turn 1 (the sim's row also gives
the wall time of the whole run). The HTTP paths start each checkpoint's window from a history of gold
answers already that long (as a resume does; sending 10,000 growing histories of up to 1 MB would take
minutes): the first turns of the window warm up and are not counted. The bus gets a stamping subscriber
before the store and one after it; the provider's `complete` is wrapped to stamp its entry and exit and
the time spent in the token-delta callback. Per turn t, in this thread's CPU time (`--clock wall` for wall
time; the bench machine is shared, and CPU time is what the engine costs, not who else ran):

    history  = TurnStarted(t) - TurnFinished(t-1)     the message list handed to the provider (the runner's
                                                      MessageLog appends the last turn's pair to the list it
                                                      grows in place; a new list of O(t) references until
                                                      issue 26), and for the sim the yield between turns
    body     = building the request body (BodyEncoder: its pieces, or the body joined for Anthropic's SDK)
               and writing it to the socket (OpenAI's direct client: head and pieces joined, and the write;
               Anthropic: httpcore's sending of the body; both: asyncio's sending of what the socket did
               not take at once), inside the provider: its JSON holds the whole history, O(t) bytes
    provider = the provider's own CPU (entry to exit, less the delta callback) less `body`: the sim's
               reading of its history and its reply; an HTTP client's reading and parsing of the reply
               (and what the body it sent costs afterwards: the kernel's share of a 1 MB loopback write,
               the caches it evicted; `--history-window 5` shows these spans flat with small bodies)
    score    = [provider entry - TurnStarted(t)] + [TurnFinished(t) emitted - provider exit]
    store    = TurnFinished(t) through every subscriber (store insert + commit) + the delta callback
    flat     = provider + score + store: must not grow with t (target: within 1.2x of turn 10 at 10,000)

`history` and `body` are the parts that must grow: the request carries the whole history. Printed: for
each path, medians over the turns of a window around each checkpoint (+-`--window` turns), the median over
`--repeats`, and the ratios to turn 10.

    python bench/per_turn_cost.py                                  # all paths, turns 10 1000 10000, 3 repeats
    python bench/per_turn_cost.py --paths sim --checkpoints 10 1000 10000 20000
    python bench/per_turn_cost.py --paths openai anthropic --repeats 5
    python bench/per_turn_cost.py --paths openai anthropic --history-window 5   # diagnostic: small bodies
    python bench/per_turn_cost.py --paths openai anthropic --equal-bodies       # control: see below
    python bench/per_turn_cost.py --paths instant --socket-mb 1                 # diagnostic: see below

`--equal-bodies` (the HTTP paths): after the plain run, the same again with every request padded (an extra
body field of filler) to the size of the last checkpoint's, so turn 10 moves as many bytes as turn 10,000.
Its flat ratio is what the turn index costs with the body's size taken out; the plain run's, what both do.

`--socket-mb N` (diagnostic, the instant path): the provider also writes N MB through a local socket every
turn, from one buffer made once (a thread reads the other end): no HTTP, no JSON, nothing that grows with
the turn. The flat spans grow as on the HTTP paths at turn 10,000 (1 MB bodies), which shows that their
growth there is what moving the body does to this core's caches, not work of the engine's that grows.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lhe_tui.core.config import RunConfig  # noqa: E402
from lhe_tui.core.events import Event, EventBus, TurnFinished, TurnStarted  # noqa: E402
from lhe_tui.providers.base import GenerationSettings, Message, OnDelta, Provider, Reply, RequestMeta  # noqa: E402
from lhe_tui.runner.history import HistoryEntry, conversation  # noqa: E402
from lhe_tui.runner.runner import Runner  # noqa: E402
from lhe_tui.runs.session import build_task, new_session_id  # noqa: E402
from lhe_tui.store.database import open_database  # noqa: E402
from lhe_tui.store.writer import SessionWriter  # noqa: E402

clock = time.thread_time  # see --clock
PATHS = ("instant", "sim", "openai", "anthropic")
WARM_UP = 3   # turns at the start of a mid-run window that are not counted (the first reads the whole history)
SPANS = ("history", "body", "provider", "score", "store")
SOCKET_MB = 0.0   # see --socket-mb


class InstantProvider(Provider):
    """Answers the gold running sum at once (O(1): no reading of the history); with `socket_mb`, first writes
    that many MB through a local socket (see --socket-mb)."""

    name = "instant"

    def __init__(self, socket_mb: float = 0.0) -> None:
        super().__init__("instant-1", GenerationSettings())
        self.gold: dict[int, list[int]] = {}
        self.ballast = b"x" * int(socket_mb * (1 << 20))
        self.sink: socket.socket | None = None
        if self.ballast:
            self.sink, drain = socket.socketpair()
            threading.Thread(target=read_until_closed, args=(drain,), daemon=True).start()

    def bind_task(self, task) -> None:
        self.gold = {s.index: s.gold_sums() for s in task.samples}

    async def aclose(self) -> None:
        if self.sink is not None:   # the reading thread sees the end and closes its side
            self.sink.close()
            self.sink = None

    async def complete(self, messages: list[Message], meta: RequestMeta, on_delta: OnDelta | None = None) -> Reply:
        if self.sink is not None:
            self.sink.sendall(self.ballast)
        text = f"<answer>{self.gold[meta.sample_index][meta.turn - 1]}</answer>"
        if on_delta:
            on_delta("text", text)
        return Reply(text=text, tokens_in=len(messages), tokens_out=1, latency_s=0.0, finish_reason="stop")


def read_until_closed(conn: socket.socket) -> None:
    """Read and drop what comes in, until the other end is closed."""
    with conn:
        while conn.recv(1 << 20):
            pass


class Stamps:
    """The provider's entry and exit, the time inside its delta callback and inside its body encoder, per
    turn; and TurnStarted / TurnFinished as a subscriber sees them (one before the store, one after)."""

    def __init__(self) -> None:
        self.provider: dict[int, tuple[float, float, float]] = {}
        self.encode: dict[int, float] = {}
        self.turn = 0
        self.held: list[Message] | None = None

    def wrap(self, provider: Provider) -> None:
        inner = provider.complete

        async def complete(messages: list[Message], meta: RequestMeta, on_delta: OnDelta | None = None) -> Reply:
            enter = clock()
            self.turn = meta.turn
            self.held = messages   # freed at the next TurnStarted: inside that turn's `history` span
            in_delta = 0.0

            def timed(kind, text) -> None:
                nonlocal in_delta
                d0 = clock()
                on_delta(kind, text)  # type: ignore[misc]
                in_delta += clock() - d0

            reply = await inner(messages, meta, timed if on_delta else None)
            self.provider[meta.turn] = (enter, clock(), in_delta)
            return reply

        provider.complete = complete  # type: ignore[method-assign]

    def wrap_encoder(self, owner: object, name: str) -> None:
        inner = getattr(owner, name)
        if isinstance(owner, type):
            _WRAPPED.append((owner, name, inner))

        def encode(*args, **kwargs):
            e0 = clock()
            try:
                return inner(*args, **kwargs)
            finally:
                self.encode[self.turn] = self.encode.get(self.turn, 0.0) + clock() - e0

        setattr(owner, name, encode)

    def release(self, event: Event) -> None:
        if isinstance(event, TurnStarted):
            self.held = None


class Stamper:
    def __init__(self) -> None:
        self.started: dict[int, float] = {}
        self.finished: dict[int, float] = {}

    def __call__(self, event: Event) -> None:
        now = clock()
        if isinstance(event, TurnStarted):
            self.started[event.turn] = now
        elif isinstance(event, TurnFinished):
            self.finished[event.record.turn] = now


def gold_history(task, first_turn: int) -> list[HistoryEntry]:
    """Sample 0's history before `first_turn`, every answer right (what a resume would hand the runner)."""
    sample = task.samples[0]
    gold = sample.gold_sums()
    return [HistoryEntry(turn=t, keys=sample.turn_keys(t), reply_visible=f"<answer>{gold[t - 1]}</answer>",
                         model_answer=gold[t - 1], history_answer=gold[t - 1], gold_sum=gold[t - 1])
            for t in range(1, first_turn)]


def history_messages(turn: int) -> list[Message]:
    """The message list the runner sends at `turn` of sample 0 (its own answers in the history, all right):
    what bench/request_cpu.py sends."""
    config = RunConfig(provider="sim", turns=turn, samples=1, seed=0)
    task = build_task(config)
    policy, system = conversation(config, task)
    return policy.messages(system, gold_history(task, turn), task.samples[0].turn_keys(turn))


def history_bytes(turn: int) -> int:
    """The size of the messages' JSON at `turn` (what --equal-bodies pads the smaller requests up to)."""
    return len(json.dumps(history_messages(turn)))


_WRAPPED: list[tuple[object, str, object]] = []


def unwrap_sending() -> None:
    while _WRAPPED:
        owner, name, inner = _WRAPPED.pop()
        setattr(owner, name, inner)


def wrap_sending(stamps: Stamps, path: str) -> None:
    """Count writing the request to the socket with the body's encoding (class-wide: this process only; the
    server is another). What the socket does not take at once asyncio sends in `_write_ready` callbacks."""
    from asyncio import selector_events

    if path == "openai":
        from lhe_tui.providers import http1

        stamps.wrap_encoder(http1.Http1Pool, "_request_bytes")   # head + body: one copy of the body
        stamps.wrap_encoder(http1._Connection, "start")          # the write (what the socket takes at once)
    elif path == "anthropic":
        from httpcore2._async.http11 import AsyncHTTP11Connection

        wrap_async(stamps, AsyncHTTP11Connection, "_send_request_body")
    else:
        return
    stamps.wrap_encoder(selector_events._SelectorSocketTransport, "_write_ready")


def wrap_async(stamps: Stamps, owner: object, name: str) -> None:
    inner = getattr(owner, name)
    _WRAPPED.append((owner, name, inner))

    async def send(*args, **kwargs):
        e0 = clock()
        try:
            return await inner(*args, **kwargs)
        finally:
            stamps.encode[stamps.turn] = stamps.encode.get(stamps.turn, 0.0) + clock() - e0

    setattr(owner, name, send)


def make_provider(path: str, url: str, pad: int = 0) -> tuple[Provider, Callable[[Stamps, Provider], None]]:
    """The path's provider, and how to wrap its body encoder; `pad` bytes of filler in an extra body field
    (see --equal-bodies)."""
    settings = GenerationSettings(extra_body={"filler": "x" * pad} if pad > 0 else {})
    if path == "instant":
        return InstantProvider(SOCKET_MB), lambda stamps, provider: None
    if path == "sim":
        from lhe_tui.providers.sim import SimProvider, SimSettings

        return (SimProvider("sim-1", GenerationSettings(), SimSettings(seed=0, token_delay=0.0)),
                lambda stamps, provider: None)
    if path == "openai":
        from lhe_tui.providers.openai_chat import OpenAIChatProvider

        provider = OpenAIChatProvider("fake-model", settings, api_key="sk-bench-dummy", base_url=url)
        return provider, lambda stamps, p: stamps.wrap_encoder(p._bodies, "pieces")  # type: ignore[attr-defined]
    from lhe_tui.providers.anthropic_messages import AnthropicProvider

    provider = AnthropicProvider("fake-model", settings, api_key="sk-bench-dummy",
                                 base_url=url.removesuffix("/v1"))
    encoder = getattr(provider, "_bodies", None)
    if encoder is not None:
        return provider, lambda stamps, p: stamps.wrap_encoder(p._bodies, "encode")  # type: ignore[attr-defined]
    return provider, lambda stamps, p: None   # the SDK encodes: counted in `provider`


def engine_run(path: str, db_path: Path, first: int, last: int, url: str = "",
               window: int | None = None, pad: int = 0) -> tuple[dict[int, tuple[float, ...]], float]:
    """Sample 0 from turn `first` (a gold history before it) to `last`; per turn (history, encode, provider,
    score, store) seconds for turns first+1..last, and the run's wall time."""
    config = RunConfig(provider="sim", turns=last, samples=1, concurrency=1, seed=0, window=window).validate()
    task = build_task(config)
    provider, wrap_encoder = make_provider(path, url, pad)
    db = open_database(db_path)
    session_id = new_session_id()
    bus = EventBus()
    before, after, stamps = Stamper(), Stamper(), Stamps()
    bus.subscribe(before)
    bus.subscribe(stamps.release)
    writer = SessionWriter(db, session_id)
    bus.subscribe(writer)
    bus.subscribe(after)
    history = {0: gold_history(task, first)} if first > 1 else None
    runner = Runner(config, task, provider, session_id, bus, history=history, stream_deltas=True)
    writer.on_failure = runner.halt
    stamps.wrap(provider)
    wrap_encoder(stamps, provider)
    wrap_sending(stamps, path)

    async def go() -> str:
        try:
            return await runner.run()
        finally:
            await provider.aclose()

    started = time.perf_counter()
    try:
        status = asyncio.run(go())
    finally:
        unwrap_sending()
    wall = time.perf_counter() - started
    stored = db.execute("SELECT COUNT(*) FROM turns WHERE session_id = ?", [session_id]).fetchone()[0]
    db.conn.close()
    if status != "finished" or stored != last - first + 1:
        raise SystemExit(f"{path}: run ended {status!r} with {stored} turns stored, wanted {last - first + 1}")
    out = {}
    for t in range(first + 1, last + 1):
        enter, exit_, in_delta = stamps.provider[t]
        encode = stamps.encode.get(t, 0.0)
        history_span = after.started[t] - after.finished[t - 1]
        provider_span = exit_ - enter - in_delta - encode
        score = (enter - after.started[t]) + (before.finished[t] - exit_)
        store = (after.finished[t] - before.finished[t]) + in_delta
        out[t] = (history_span, encode, provider_span, score, store)
    return out, wall


def measure(path: str, checkpoints: list[int], half: int, repeats: int, url: str,
            window: int | None, pad_to: int = 0) -> tuple[dict[int, tuple[float, ...]], list[float]]:
    """Per checkpoint, the median span of its window's turns, medians over the repeats; and whole runs' walls.
    With `pad_to` bytes, each checkpoint's requests are padded up to about that size (--equal-bodies)."""
    pads = {c: pad_to - history_bytes(c) if pad_to else 0 for c in checkpoints}
    per_rep: dict[int, list[tuple[float, ...]]] = {c: [] for c in checkpoints}
    walls: list[float] = []
    whole = path in ("instant", "sim")
    with tempfile.TemporaryDirectory(prefix="lhe-bench-") as tmp:
        for rep in range(repeats):
            if whole:
                data, wall = engine_run(path, Path(tmp) / f"{path}-{rep}.db", 1, max(checkpoints) + half,
                                        window=window)
                walls.append(wall)
                print(f"  {path} repeat {rep + 1}: {max(checkpoints) + half} turns in {wall:.1f} s wall",
                      file=sys.stderr, flush=True)
            for c in checkpoints:
                lo, hi = max(2, c - half), c + half
                if not whole:
                    first = max(1, lo - WARM_UP)
                    data, _ = engine_run(path, Path(tmp) / f"{path}-{c}-{rep}.db", first, hi, url, window, pads[c])
                per_rep[c].append(tuple(statistics.median(data[t][i] for t in range(lo, hi + 1))
                                        for i in range(len(SPANS))))
    rows = {c: tuple(statistics.median(r[i] for r in per_rep[c]) for i in range(len(SPANS))) for c in checkpoints}
    return rows, walls


def report(path: str, rows: dict[int, tuple[float, ...]], walls: list[float], half: int) -> None:
    unit, scale = ("ms", 1e3) if path.split(",")[0] in ("openai", "anthropic") else ("us", 1e6)
    print(f"\n{path}: CPU per turn ({unit}), median over the window's turns, median of the repeats")
    print(f"{'turn':>6}  {'history':>8}  {'body':>8}  {'provider':>8}  {'score':>8}  {'store':>8}  "
          f"{'flat':>8}  {'flat/first':>10}  {'grows (history+body)':>20}")
    first = rows[min(rows)]
    flat0 = sum(first[2:])
    for c, spans in rows.items():
        history, encode, provider, score, store = spans
        flat = provider + score + store
        print(f"{c:>6}  {history * scale:>8.3f}  {encode * scale:>8.3f}  {provider * scale:>8.3f}  "
              f"{score * scale:>8.3f}  {store * scale:>8.3f}  {flat * scale:>8.3f}  {flat / flat0:>10.2f}  "
              f"{(history + encode) * scale:>20.3f}")
    last = rows[max(rows)]
    print(f"ratio turn {max(rows)} / turn {min(rows)}: flat {sum(last[2:]) / flat0:.2f} (target <= 1.2), "
          f"provider {last[2] / first[2]:.2f}, score {last[3] / first[3]:.2f}, store {last[4] / first[4]:.2f}; "
          f"history {last[0] / first[0]:.0f}x" + (f", body {last[1] / first[1]:.0f}x" if first[1] else ""))
    if walls:
        print(f"whole run of {max(rows) + half:,} turns (1 sample, full speed, store attached): "
              f"{statistics.median(walls):.1f} s wall (median of {len(walls)}; "
              f"{min(walls):.1f}..{max(walls):.1f})")


def socket_control(plain: dict[int, tuple[float, ...]], checkpoints: list[int], args: argparse.Namespace) -> None:
    """The instant path again, writing --socket-mb MB through a socket each turn; its spans over the plain ones."""
    global SOCKET_MB
    SOCKET_MB = args.socket_mb
    try:
        rows, walls = measure("instant", checkpoints, args.window, args.repeats, "", args.history_window)
    finally:
        SOCKET_MB = 0.0
    report(f"instant + {args.socket_mb:g} MB through a socket a turn", rows, walls, args.window)
    print(f"with {args.socket_mb:g} MB a turn / without, at each turn: "
          + "; ".join(f"turn {c}: score {rows[c][3] / plain[c][3]:.2f}, store {rows[c][4] / plain[c][4]:.2f}"
                      for c in checkpoints)
          + " (compare the HTTP paths, turn 10,000 / turn 10: bodies of 0.99 MB / 3 KB)")


def equal_bodies_control(path: str, plain: dict[int, tuple[float, ...]], checkpoints: list[int],
                         args: argparse.Namespace, url: str) -> None:
    """The HTTP path again with every request as large as the last checkpoint's (a filler field): the same
    bytes moved at turn 10 as at turn 10,000, so what is left of the flat part's growth is the turn's."""
    target = history_bytes(max(checkpoints))
    rows, walls = measure(path, checkpoints, args.window, args.repeats, url, args.history_window, pad_to=target)
    report(f"{path}, every request padded to {target / (1 << 20):.2f} MB", rows, walls, args.window)
    first, last = min(checkpoints), max(checkpoints)
    print(f"flat, padded turn {first} / plain turn {first} (what the body's size alone costs the flat part): "
          f"{sum(rows[first][2:]) / sum(plain[first][2:]):.2f}; "
          f"plain turn {last} / padded turn {first} (what the turn index costs with equal bodies): "
          f"{sum(plain[last][2:]) / sum(rows[first][2:]):.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS))
    parser.add_argument("--checkpoints", type=int, nargs="+", default=[10, 1000, 10000])
    parser.add_argument("--window", type=int, default=10, help="turns either side of each checkpoint")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="spans in this thread's CPU time (default) or in wall time (perf_counter)")
    parser.add_argument("--history-window", type=int, metavar="W",
                        help="diagnostic: a sliding history window of W turns, so the message list stays O(1)")
    parser.add_argument("--gc-off", action="store_true", help="diagnostic: the garbage collector disabled")
    parser.add_argument("--socket-mb", type=float, default=0.0, metavar="N",
                        help="diagnostic: the instant provider writes N MB through a local socket each turn")
    parser.add_argument("--equal-bodies", action="store_true",
                        help="the HTTP paths again, every request padded to the size of the last checkpoint's")
    args = parser.parse_args(argv)
    checkpoints = sorted(set(args.checkpoints))
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench-dummy")   # never sent anywhere but 127.0.0.1
    global clock
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    print(f"python {sys.version.split()[0]}, cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}, "
          f"clock: {'thread CPU time' if args.clock == 'cpu' else 'wall'}, "
          f"garbage collector: {'OFF (diagnostic)' if args.gc_off else 'on'}, {time.strftime('%Y-%m-%d %H:%M')}")
    if args.gc_off:
        gc.disable()
    http = [p for p in args.paths if p in ("openai", "anthropic")]
    server = None
    if http:
        from _fake_server import FakeServerProcess

        server = FakeServerProcess(0.0).__enter__()   # answers both APIs without parsing a body
    try:
        for path in [p for p in PATHS if p in args.paths]:
            rows, walls = measure(path, checkpoints, args.window, args.repeats, server.base_url if server else "",
                                  args.history_window)
            report(path, rows, walls, args.window)
            if path == "instant" and args.socket_mb:
                socket_control(rows, checkpoints, args)
            if path in http and args.equal_bodies:
                equal_bodies_control(path, rows, checkpoints, args, server.base_url)
    finally:
        if server is not None:
            server.__exit__(None, None, None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
