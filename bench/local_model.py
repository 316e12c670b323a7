"""Speed of the real local model (SmolLM2-135M via llama-cpp-python's server) through the whole engine.

Prints, from short sessions stored in a throw-away database (medians over repetitions):
  - seconds per turn and output tokens/s in direct and cot mode (1 sample, so the server reuses the
    evaluated prefix of the growing history; turn 1, which evaluates the whole ~1000-token system
    prompt, is shown apart);
  - turns per minute at 1 and at 4 concurrent samples (the server computes one reply at a time; the
    local provider lets one sample's turns follow each other so the server re-uses the evaluated
    history, see StickySlot).

    python bench/local_model.py [--repeats 3] [--server-arg=--cache --server-arg=True]

Needs the [local] extra: pip install -e '.[local]'.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lhe_tui.common.errors import LheError
from lhe_tui.providers.local_provider import make_local_provider
from lhe_tui.providers.local_server import LocalModelServer
from lhe_tui.core.config import RunConfig
from lhe_tui.runs.session import prepare_run
from lhe_tui.store.database import open_database


def run_session(server: LocalModelServer, db, **fields) -> tuple[float, list[tuple]]:
    """One session through prepare_run + Runner; returns wall seconds and (turn, latency, in, out) rows."""
    config = RunConfig(provider="local", model=server.model_name, temperature=0.6, top_p=0.95, **fields).validate()
    prepared = prepare_run(config, db, provider=make_local_provider(config, server.base_url), stream_deltas=False)

    started = time.perf_counter()
    status = asyncio.run(prepared.run())
    wall = time.perf_counter() - started
    if status != "finished":
        raise SystemExit(f"bench session {prepared.session_id} ended {status}")
    rows = db.execute("SELECT turn, latency_s, tokens_in, tokens_out FROM turns WHERE session_id = ? "
                      "ORDER BY sample, turn", [prepared.session_id]).fetchall()
    return wall, rows


def per_turn(server: LocalModelServer, db, mode: str, turns: int, max_tokens: int, repeats: int) -> None:
    first, later, rates, outs = [], [], [], []
    for seed in range(repeats):
        _, rows = run_session(server, db, mode=mode, turns=turns, samples=1, concurrency=1, max_tokens=max_tokens,
                              seed=seed)
        for turn, latency, _tokens_in, tokens_out in rows:
            if turn == 1:
                first.append(latency)
                continue
            later.append(latency)
            outs.append(tokens_out)
            rates.append(tokens_out / latency)
    print(f"{mode:6} mode: {statistics.median(later):.2f} s/turn (median of turns 2..{turns}, "
          f"{len(later)} turns), turn 1 {statistics.median(first):.2f} s; "
          f"{statistics.median(rates):.1f} output tokens/s, median {statistics.median(outs):.0f} output tokens/turn "
          f"(max_tokens {max_tokens})", flush=True)


def throughput(server: LocalModelServer, db, samples: int, turns: int, repeats: int) -> None:
    rates = []
    for seed in range(repeats):
        wall, rows = run_session(server, db, mode="direct", turns=turns, samples=samples, concurrency=samples,
                                 max_tokens=16, seed=100 + seed)
        rates.append(len(rows) / wall * 60.0)
    print(f"{samples} concurrent sample{'s' if samples > 1 else ' '}: {statistics.median(rates):.1f} turns/min "
          f"(direct, K=1, {samples} x {turns} turns, median of {repeats}: "
          f"{', '.join(f'{r:.1f}' for r in rates)})", flush=True)


def describe(server: LocalModelServer, server_args: list[str]) -> None:
    print(f"server: {server.model_name} ({Path(server.model_path).name}) ready in {server.startup_s:.1f} s, "
          f"n_ctx {server.n_ctx}, {server.n_threads} thread(s), prompt cache {'on' if server.cache else 'off'} "
          f"{' '.join(server_args)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model-path", default=None)
    parser.add_argument("--server-arg", action="append", default=[], help="extra llama_cpp.server argument")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}, "
          f"load average before: {os.getloadavg()[0]:.2f}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            db = open_database(Path(tmp) / "bench.db")
            with LocalModelServer(args.model_path, extra_args=tuple(args.server_arg)) as server:
                describe(server, args.server_arg)
                per_turn(server, db, "direct", turns=10, max_tokens=16, repeats=args.repeats)
                per_turn(server, db, "cot", turns=6, max_tokens=192, repeats=args.repeats)
                throughput(server, db, samples=1, turns=20, repeats=args.repeats)
                throughput(server, db, samples=4, turns=8, repeats=args.repeats)
        print(f"load average after: {os.getloadavg()[0]:.2f} (other work on the machine slows every figure)")
    except LheError as exc:
        raise SystemExit(f"bench: {exc}") from None


if __name__ == "__main__":
    main()
