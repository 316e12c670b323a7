"""Flat per-turn cost (issue 6): the app's own time per turn at turn 10, 100, 1000 and 5000 of one sample.

Part A, the engine loop. One sample runs through the real path (`prepare_run`: Runner, EventBus,
SessionWriter on a throw-away SQLite store, token deltas emitted) against an in-process provider that
answers correctly at once (it looks the gold sum up; O(1), no parsing of the history). The bus gets
one more subscriber, last, that stamps each TurnStarted and TurnFinished (so a TurnFinished stamp
comes after the store has committed the turn); the provider stamps its own entry and exit and the
time spent inside the token-delta callback. Per turn t:

    history  = TurnStarted(t) - TurnFinished(t-1)       the message list (the runner's MessageLog appends the
                                                        last turn's pair, then copies the list: O(t) pointers)
    score    = [provider entry - TurnStarted(t)] + [TurnFinished(t) emitted - provider exit]
               (semaphore, parse, score, record, history append, leaving the turn's coroutine)
    store    = TurnFinished(t) through every subscriber (store insert + commit) + the token-delta callback
    app      = history + score + store                  everything except the model

(the bus gets a stamping subscriber before the store and one after it). Freeing a turn's message list
(2t dicts, O(t)) belongs with building it: the provider holds the list until the next TurnStarted, so
the free falls in the next turn's `history` span instead of in `score` (where the runner's frame
teardown would put it). Printed: medians over the
turns in a window around each checkpoint (default +-10 turns), median over the repetitions, and the
ratio to turn 10. `score` and `store` must be flat; `history` grows slowly with t (a copy of the list of
2t message references per request; the messages themselves are rendered once).

Spans are measured in this thread's CPU time by default (`--clock wall` for wall time): the bench
machine is shared, and a 50-microsecond span in wall time mostly measures who else was running.

Part B, the real OpenAI provider's own CPU per request at the same turns (client-side work that is not
waiting for the model either): the SDK's params transform (`openai._utils._transform`, which
`chat.completions.create()` runs and the provider no longer calls, for reference), plain `json.dumps`
of the same body (what encoding the whole history each time would cost), both in thread CPU time, and
the client process CPU of one whole streamed request through the provider (its default, direct client,
which reuses each message's JSON from the previous request of the sample) to a local zero-latency
fixed-reply server in a child process. Skip with --no-openai.

    python bench/per_turn_cost.py                          # checkpoints 10 100 1000 5000, 3 repeats
    python bench/per_turn_cost.py --checkpoints 10 100 1000 --repeats 5 --window 20
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lhe_tui.providers.base import GenerationSettings, Message, OnDelta, Provider, Reply, RequestMeta  # noqa: E402
from lhe_tui.core.config import RunConfig  # noqa: E402
from lhe_tui.core.events import Event, TurnFinished, TurnStarted  # noqa: E402
from lhe_tui.runner.history import HistoryEntry, HistoryPolicy  # noqa: E402
from lhe_tui.session import build_task, prepare_run  # noqa: E402
from lhe_tui.store.database import open_database  # noqa: E402
from lhe_tui.task.prompts import system_prompt  # noqa: E402

clock = time.thread_time  # see --clock


class InstantProvider(Provider):
    """Answers the gold running sum at once; stamps its entry/exit and the time inside on_delta."""

    name = "instant"

    def __init__(self, gold: dict[int, list[int]]) -> None:
        super().__init__("instant-1", GenerationSettings())
        self.gold = gold
        self.stamps: dict[int, tuple[float, float, float]] = {}  # turn -> (enter, exit, in on_delta)
        self.held: list[Message] | None = None

    def release(self, event: Event) -> None:
        """Subscribed first: drop the previous turn's message list when the next turn starts."""
        if isinstance(event, TurnStarted):
            self.held = None

    async def complete(self, messages: list[Message], meta: RequestMeta, on_delta: OnDelta | None = None) -> Reply:
        enter = clock()
        self.held = messages  # freed by release(), inside the `history` span of the next turn
        text = f"<answer>{self.gold[meta.sample_index][meta.turn - 1]}</answer>"
        in_delta = 0.0
        if on_delta:
            d0 = clock()
            on_delta("text", text)
            in_delta = clock() - d0
        reply = Reply(text=text, tokens_in=len(messages), tokens_out=1, latency_s=0.0, finish_reason="stop")
        self.stamps[meta.turn] = (enter, clock(), in_delta)
        return reply


class Stamper:
    """Stamps TurnStarted and TurnFinished. Subscribed first and last, it brackets the other subscribers."""

    def __init__(self) -> None:
        self.started: dict[int, float] = {}
        self.finished: dict[int, float] = {}

    def __call__(self, event: Event) -> None:
        now = clock()
        if isinstance(event, TurnStarted):
            self.started[event.turn] = now
        elif isinstance(event, TurnFinished):
            self.finished[event.record.turn] = now


def windows(checkpoints: list[int], half: int) -> dict[int, range]:
    return {c: range(max(2, c - half), c + half + 1) for c in checkpoints}


def engine_run(turns: int, db_path: Path, seed: int, window: int | None = None) -> dict[int, tuple[float, ...]]:
    """One sample of `turns` turns; per turn (history, score, store, app) seconds, turns 2..turns."""
    db = open_database(db_path)
    config = RunConfig(provider="sim", turns=turns, samples=1, concurrency=1, seed=seed, window=window).validate()
    task = build_task(config)
    provider = InstantProvider({s.index: s.gold_sums() for s in task.samples})
    prepared = prepare_run(config, db, provider=provider, stream_deltas=True)
    before, after = Stamper(), Stamper()
    prepared.bus.subscribers.insert(0, before)  # before the store
    prepared.bus.subscribers.insert(1, provider.release)
    prepared.bus.subscribe(after)               # after the store
    status = asyncio.run(prepared.runner.run())
    stored = db.execute("SELECT COUNT(*), SUM(correct) FROM turns WHERE session_id = ?",
                        [prepared.session_id]).fetchone()
    db.conn.close()
    if status != "finished" or stored != (turns, turns):
        raise SystemExit(f"engine run ended {status!r} with {stored} (turns, correct) stored, wanted {turns}")
    out = {}
    for t in range(2, turns + 1):
        enter, exit_, in_delta = provider.stamps[t]
        history = after.started[t] - after.finished[t - 1]
        score = (enter - after.started[t]) + (before.finished[t] - exit_)
        store = (after.finished[t] - before.finished[t]) + in_delta
        out[t] = (history, score, store, history + score + store)
    return out


def part_a(checkpoints: list[int], half: int, repeats: int, window: int | None = None) -> None:
    turns = max(checkpoints) + half
    wins = windows(checkpoints, half)
    per_rep: dict[int, list[tuple[float, ...]]] = {c: [] for c in checkpoints}
    with tempfile.TemporaryDirectory(prefix="lhe-bench-") as tmp:
        for rep in range(repeats):
            started = time.perf_counter()
            data = engine_run(turns, Path(tmp) / f"turns-{rep}.db", seed=rep, window=window)
            print(f"  repeat {rep + 1}: {turns} turns in {time.perf_counter() - started:.1f} s wall", file=sys.stderr,
                  flush=True)
            for c, win in wins.items():
                per_rep[c].append(tuple(statistics.median(data[t][i] for t in win) for i in range(4)))
    print(f"Part A: engine loop, 1 sample, instant in-process provider, store attached, deltas emitted, "
          f"{'full history' if window is None else f'history window {window} (diagnostic)'}; "
          f"median over turns c-{half}..c+{half}, then median of {repeats} repeats (microseconds)")
    print(f"{'turn':>6}  {'history':>9}  {'score':>7}  {'store+events':>12}  {'app total':>9}  "
          f"{'score+store / first':>19}  {'app / first':>11}")
    rows = {c: tuple(statistics.median(r[i] for r in per_rep[c]) for i in range(4)) for c in checkpoints}
    first = rows[checkpoints[0]]
    flat0 = first[1] + first[2]
    for c, (history, score, store, app) in rows.items():
        print(f"{c:>6}  {history * 1e6:>9.1f}  {score * 1e6:>7.1f}  {store * 1e6:>12.1f}  {app * 1e6:>9.1f}  "
              f"{(score + store) / flat0:>19.2f}  {app / first[3]:>11.2f}")
    last = rows[checkpoints[-1]]
    print(f"ratio turn {checkpoints[-1]} / turn {checkpoints[0]}: history {last[0] / first[0]:.1f}, "
          f"score {last[1] / first[1]:.2f}, store+events {last[2] / first[2]:.2f}, "
          f"score+store {(last[1] + last[2]) / flat0:.2f}, app total {last[3] / first[3]:.2f}")


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def history_messages(turn: int) -> list[Message]:
    """The message list the runner sends at `turn` (its own answers in the history, all correct)."""
    config = RunConfig(provider="sim", turns=turn, samples=1, seed=0)
    task = build_task(config)
    sample = task.samples[0]
    gold = sample.gold_sums()
    entries = [HistoryEntry(turn=t, keys=sample.turn_keys(t), reply_visible=f"<answer>{gold[t - 1]}</answer>",
                            model_answer=gold[t - 1], history_answer=gold[t - 1], gold_sum=gold[t - 1])
               for t in range(1, turn)]
    return HistoryPolicy().messages(system_prompt(task.dictionary, task.k, "direct"), entries,
                                    sample.turn_keys(turn))


def part_b(checkpoints: list[int], repeats: int) -> None:
    from _fake_server import FakeServerProcess
    from openai._utils._transform import async_maybe_transform
    from openai.types.chat import completion_create_params

    from lhe_tui.providers.openai_chat import OpenAIChatProvider

    async def measure(url: str) -> list[tuple[int, int, float, float, float]]:
        provider = OpenAIChatProvider("fake-model", GenerationSettings(), api_key="sk-bench-dummy", base_url=url)
        rows = []
        try:
            await provider.complete(history_messages(2), RequestMeta(0, 2))  # connect, warm up
            for c in checkpoints:
                messages = history_messages(c)
                params = provider.request_params(messages)
                transform, encode, request = [], [], []
                for _ in range(repeats):
                    t0 = time.thread_time()
                    await async_maybe_transform(params, completion_create_params.CompletionCreateParamsStreaming)
                    transform.append(time.thread_time() - t0)
                    t0 = time.thread_time()
                    json.dumps(params)
                    encode.append(time.thread_time() - t0)
                    c0 = cpu_seconds()
                    await provider.complete(messages, RequestMeta(0, c), lambda kind, text: None)
                    request.append(cpu_seconds() - c0)
                rows.append((c, len(messages), statistics.median(transform), statistics.median(encode),
                             statistics.median(request)))
        finally:
            await provider.aclose()
        return rows

    with FakeServerProcess(0.0) as srv:
        rows = asyncio.run(measure(srv.base_url))
    print(f"\nPart B: real OpenAI provider (direct client) at the same turns, median of {repeats} (milliseconds)")
    print(f"{'turn':>6}  {'messages':>8}  {'create() transform':>18}  {'json.dumps':>10}  {'request client CPU':>18}")
    for c, n, transform, encode, request in rows:
        print(f"{c:>6}  {n:>8}  {transform * 1e3:>18.2f}  {encode * 1e3:>10.3f}  {request * 1e3:>18.1f}")
    (c0, _, t0, e0, r0), (c1, _, t1, e1, r1) = rows[0], rows[-1]
    print(f"ratio turn {c1} / turn {c0}: create() transform {t1 / t0:.0f}x, json.dumps {e1 / e0:.0f}x, "
          f"request CPU {r1 / r0:.1f}x; request CPU / json.dumps at turn {c1}: {r1 / e1:.1f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", type=int, nargs="+", default=[10, 100, 1000, 5000])
    parser.add_argument("--window", type=int, default=10, help="turns either side of each checkpoint")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-openai", action="store_true", help="skip part B (the real OpenAI provider)")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="part A spans in this thread's CPU time (default: immune to being descheduled on a "
                             "busy machine) or in wall time (perf_counter)")
    parser.add_argument("--history-window", type=int, metavar="W",
                        help="diagnostic: run part A with a sliding history window of W turns, so the message list "
                             "stays O(1); whatever still grows then is not caused by the history")
    parser.add_argument("--gc-off", action="store_true",
                        help="diagnostic: run part A with the garbage collector disabled (shows how much of the "
                             "growth is collections scanning the per-turn message list)")
    args = parser.parse_args(argv)
    checkpoints = sorted(set(args.checkpoints))
    if checkpoints[0] - args.window < 2:
        print(f"note: the window of turn {checkpoints[0]} starts at turn 2", file=sys.stderr)
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench-dummy")
    print(f"python {sys.version.split()[0]}, cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}, "
          f"part A clock: {'thread CPU time' if args.clock == 'cpu' else 'wall'}, "
          f"garbage collector: {'OFF (diagnostic)' if args.gc_off else 'on'}")
    global clock
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    if args.gc_off:
        gc.disable()
    part_a(checkpoints, args.window, args.repeats, args.history_window)
    gc.enable()
    if not args.no_openai:
        part_b(checkpoints, args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
