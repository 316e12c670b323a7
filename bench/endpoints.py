"""One model on several servers (issue 24, section 4): how much faster four servers finish a run than one,
what a server killed mid-run costs, and what pinning each sample to one server buys a prefix cache.

Each server is a FakeLLMServer (in this process, a thread each) that serves at most `--streams` requests
at once, as a model server's batch does (vLLM's --max-num-seqs); the rest wait in line. Every request takes
`--latency` seconds once served. The run is 64 samples x `--turns` turns through the real path
(`prepare_run`: Runner, the store on a throw-away file, lhe_tui's OpenAI client, the EndpointRouter), with
--concurrency 64 so that the client never holds a request back: the servers are the bottleneck.

Figures printed:
- wall time on one server, on four, and on four with one killed a third of the way through (its samples
  move to the other three), with the ideal (turns x ceil(samples / streams in all) x latency);
- the prefix-cache figure, from a run of its own (`--cache-samples` x `--cache-turns`, no latency): the
  input tokens a server must prefill (those not in its cache) over the run,
  with each sample pinned to one server (what lhe-tui does) against a load balancer in front of the same
  four servers that sends each request to any of them (at random: what round-robin or least-connections
  amount to for requests of many samples), so the server that gets a turn has seen the sample's history
  only up to the last turn it happened to serve (every token prefilled is also held in a cache: behind a
  balancer every server ends up caching every sample's history). Each server's cache is modelled as every
  message prefix it has seen (unbounded, whole messages, characters / 4 tokens); the balanced figure
  replays the same requests in the same order. Real caches are finite and block-granular (so the memory
  they need decides how much of the history stays cached): the ratios are the point, not the counts.

    python bench/endpoints.py [--turns 20] [--latency 0.2] [--streams 8]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import math
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _fake_server import CountingLog  # noqa: E402

from lhe_tui.core.config import RunConfig  # noqa: E402
from lhe_tui.runs.session import prepare_run  # noqa: E402
from lhe_tui.store.database import open_database  # noqa: E402
from lhe_tui.task.prompts import parse_dictionary  # noqa: E402
from lhe_tui.testing.fake_llm_server import FakeLLMServer, ScriptedReply, content_text  # noqa: E402

SAMPLES = 64


class PrefixLog:
    """What each request sent, as message-prefix hashes and token sizes, and which server got it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[tuple[int, list[tuple[bytes, int]]]] = []   # (server, [(prefix hash, tokens)])

    def note(self, server: int, messages: list[dict]) -> None:
        chain, prefix = [], hashlib.sha1()
        for message in messages:
            text = content_text(message.get("content"))
            prefix.update(f"{message.get('role')}\0{text}\0".encode())
            chain.append((prefix.copy().digest(), (len(text) + 3) // 4))
        with self.lock:
            self.requests.append((server, chain))

    def prefill(self, assign) -> tuple[int, int]:
        """(tokens sent, tokens to prefill) with request `index` sent to server `assign(index, server)`
        (`server`: the one that really got it). Every token prefilled is then held in that server's cache:
        the second figure is also what the caches hold at the end, all servers together."""
        seen: dict[int, set[bytes]] = {}
        total = uncached = 0
        for index, (server, chain) in enumerate(self.requests):
            cache = seen.setdefault(assign(index, server), set())
            hit = 0
            for position, (digest, _) in enumerate(chain):
                if digest not in cache:
                    break
                hit = position + 1
            total += sum(tokens for _, tokens in chain)
            uncached += sum(tokens for _, tokens in chain[hit:])
            cache.update(digest for digest, _ in chain)
        return total, uncached


_parsing = threading.Lock()
_dictionaries: dict[str, dict[str, int]] = {}


def dictionary_of(system: str) -> dict[str, int]:
    """parse_dictionary, once per system prompt and one server thread at a time (CPython 3.11's
    ast.literal_eval can fail when threads call it at once: "AST constructor recursion depth mismatch")."""
    with _parsing:
        if system not in _dictionaries:
            _dictionaries[system] = parse_dictionary(system) or {}
        return _dictionaries[system]


def summing(server: int, log: PrefixLog | None):
    def respond(body: dict) -> ScriptedReply:
        messages = body["messages"]
        if log is not None:
            log.note(server, messages)
        values = dictionary_of(content_text(messages[0]["content"]))
        total = sum(values.get(k.strip(), 0) for m in messages if m["role"] == "user"
                    for k in content_text(m["content"]).split(","))
        return ScriptedReply(text=f"<answer>{total}</answer>")

    return respond


def run(servers: int, args: argparse.Namespace, folder: Path, *, kill_at: float | None = None,
        log: PrefixLog | None = None, samples: int = SAMPLES, turns: int | None = None,
        latency: float | None = None) -> tuple[float, str]:
    turns = args.turns if turns is None else turns
    latency = args.latency if latency is None else latency
    fakes = []
    for index in range(servers):
        fake = FakeLLMServer(summing(index, log), latency=latency, max_streams=args.streams)
        fake.requests = CountingLog()   # keep no bodies: the histories would grow the process
        fakes.append(fake.start())
    urls = tuple(f.openai_base_url for f in fakes)
    config = RunConfig(provider="openai", model="fake", base_url=urls[0], endpoints=urls if servers > 1 else (),
                       samples=samples, turns=turns, concurrency=samples, seed=1).validate()
    db = open_database(folder / f"{len(list(folder.iterdir()))}.db")
    prepared = prepare_run(config, db, stream_deltas=False)
    if kill_at is not None:   # stop the second server once a third of the run's requests are served
        def killer() -> None:
            while fakes[1].requests.count < kill_at * turns * samples / servers:
                time.sleep(0.002)
            fakes[1].stop()
        threading.Thread(target=killer, daemon=True).start()

    started = time.perf_counter()
    status = asyncio.run(prepared.run())
    wall = time.perf_counter() - started
    for fake in fakes:
        fake.stop()
    turns, retries = db.execute("SELECT COUNT(*), COALESCE(SUM(retries), 0) FROM turns").fetchone()
    db.close()
    return wall, f"{status}, {turns:,} turns stored, {retries} retried"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per request once served")
    parser.add_argument("--streams", type=int, default=8, help="requests each server serves at once")
    parser.add_argument("--cache-turns", type=int, default=300, help="turns of the prefix-cache run")
    parser.add_argument("--cache-samples", type=int, default=16, help="samples of the prefix-cache run")
    args = parser.parse_args(argv)

    def ideal(servers: int) -> float:
        return args.turns * math.ceil(SAMPLES / (servers * args.streams)) * args.latency

    print(f"{SAMPLES} samples x {args.turns} turns; each server {args.streams} streams at once, "
          f"{args.latency * 1000:.0f} ms a request")
    log = PrefixLog()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        one, one_status = run(1, args, folder)
        four, four_status = run(4, args, folder)
        killed, killed_status = run(4, args, folder, kill_at=1 / 3)
        _, cache_status = run(4, args, folder, log=log, samples=args.cache_samples, turns=args.cache_turns,
                              latency=0.0)
    print(f"  one server            {one:6.1f} s  (ideal {ideal(1):5.1f} s)  {one_status}")
    print(f"  four servers          {four:6.1f} s  (ideal {ideal(4):5.1f} s)  {four_status}")
    print(f"  four, one killed at 1/3 {killed:4.1f} s  (ideal {ideal(4) / 3 + 2 * ideal(3) / 3:5.1f} s)  {killed_status}")
    print(f"  speed-up, four over one: {one / four:.2f}x")
    total, pinned = log.prefill(lambda index, server: server)
    print(f"prefix cache, four servers, {args.cache_samples} samples x {args.cache_turns} turns (direct mode): "
          f"{len(log.requests):,} requests, {total:,} input tokens ({cache_status})")
    spread = random.Random(0)
    _, balanced = log.prefill(lambda index, server: spread.randrange(4))
    print(f"  pinned (lhe-tui, one URL per replica)   {pinned:>10,} tokens to prefill ({pinned / total:5.1%})")
    print(f"  behind one load-balanced URL            {balanced:>10,} tokens to prefill ({balanced / total:5.1%})")
    print(f"  pinning prefills {balanced / pinned:.1f}x fewer tokens, and the caches hold {balanced / pinned:.1f}x "
          f"fewer (each history on one server, not on all)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
