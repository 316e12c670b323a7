"""Scale of one process (issue 24 §5): a sweep of R runs x S samples against the fixed-latency fake server.

Every run is the real path (SweepEngine: one event loop, the real OpenAI provider over a socket, a store
writer per run, per-account limits off) against bench/_fake_server.py in its own process, which answers every
request after exactly L seconds. Each sample's turns are sequential, so the ideal wall time is T x L whatever
R and S are; printed:

    overhead = wall time of the whole sweep / (T x L)        (the issue's bar: <= 1.05 headless)

and the event loop's lag (a 20 ms ticker in the loop that runs the sweep: how late it wakes, p50/p99/max).
With `--board`, the board (LheApp with the SweepBoard, driven by Textual's run_test) is attached: the sweep
runs in the board's engine thread, and the lag printed is the *UI* loop's (the issue's bar: p99 < 50 ms),
measured by the same ticker in the app's loop, plus the board's own 4 Hz refresh lateness.

    python bench/sweep_scale.py                          # 16 runs x 64 samples x 50 turns, L = 0.5 s, both modes
    python bench/sweep_scale.py --runs 4 --samples 16 --turns 20     # a quick look
    python bench/sweep_scale.py --only headless

Prints figures; asserts nothing. Sessions go to a throw-away store (a temporary folder).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _fake_server import FakeServerProcess  # noqa: E402

from lhe_tui.store.database import open_database  # noqa: E402
from lhe_tui.sweep.plan import plan_sweep, store_plan  # noqa: E402
from lhe_tui.sweep.spec import parse_spec  # noqa: E402


def make_sweep(db_path: Path, base_url: str, runs: int, samples: int, turns: int) -> str:
    spec = parse_spec({
        "name": "scale",
        "base": {"provider": "openai", "base_url": base_url, "samples": samples, "turns": turns,
                 "concurrency": samples, "retries": 0, "timeout": 60},
        "axes": {"model": [{"label": f"m{i:02d}", "model": f"fake-{i:02d}"} for i in range(runs)]},
    })
    plan = plan_sweep(spec, parallel=runs)
    db = open_database(db_path)
    store_plan(db, plan)
    db.conn.close()
    return plan.sweep_id


class Ticker:
    """How late a `period` sleep wakes in the loop it runs in."""

    def __init__(self, period: float = 0.02) -> None:
        self.period = period
        self.lags: list[float] = []
        self.task: asyncio.Task | None = None

    async def _run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(self.period)
            self.lags.append(max(0.0, time.perf_counter() - start - self.period))

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()


def percentiles(values: list[float]) -> str:
    if not values:
        return "no samples"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return (f"p50 {statistics.median(ordered) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
            f"max {ordered[-1] * 1000:.1f} ms (n={len(ordered)})")


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def headless(db_path: Path, sweep_id: str) -> tuple[float, list[float], dict[str, str]]:
    from lhe_tui.sweep.engine import SweepEngine
    from lhe_tui.sweep.plan import load_plan

    db = open_database(db_path)
    engine = SweepEngine(load_plan(db, sweep_id), db, stream_deltas=False)
    ticker = Ticker()

    async def main() -> dict[str, str]:
        ticker.start()
        try:
            return await engine.run()
        finally:
            ticker.stop()

    start = time.perf_counter()
    statuses = asyncio.run(main())
    return time.perf_counter() - start, ticker.lags, statuses


def with_board(db_path: Path, sweep_id: str) -> tuple[float, list[float], list[float], dict[str, str]]:
    from lhe_tui.sweep.live import SweepDriver
    from lhe_tui.ui.app import LheApp
    from lhe_tui.ui.screens.sweep import SweepBoard

    driver = SweepDriver(db_path, sweep_id)
    app = LheApp(db_path, sweep=(driver.engine, driver))
    ticker = Ticker()
    out: dict = {}

    async def main() -> None:
        async with app.run_test(size=(160, 45)) as pilot:
            start = time.perf_counter()
            ticker.start()
            while not driver.finished:
                await pilot.pause(0.1)
            out["wall"] = time.perf_counter() - start
            ticker.stop()
            board = next(s for s in app.screen_stack if isinstance(s, SweepBoard))
            out["refresh"] = list(board.lag_samples)

    asyncio.run(main())
    return out["wall"], ticker.lags, out["refresh"], driver.statuses


def report(mode: str, wall: float, ideal: float, lags: list[float], statuses: dict[str, str], cpu: float,
           requests: int) -> None:
    done = sum(1 for s in statuses.values() if s == "finished")
    print(f"{mode}: wall {wall:.1f} s, ideal {ideal:.1f} s, overhead {wall / ideal:.3f}; "
          f"{done}/{len(statuses)} runs finished")
    print(f"  loop lag (20 ms ticker): {percentiles(lags)}")
    print(f"  client CPU {cpu:.1f} s = {cpu * 1000 / max(1, requests):.2f} ms a request, "
          f"{cpu / wall:.2f} of a core")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=16)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--turns", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--only", choices=("headless", "board"), default=None)
    args = parser.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench-not-real")
    ideal = args.turns * args.latency
    requests = args.runs * args.samples * args.turns
    print(f"sweep scale: {args.runs} runs x {args.samples} samples = {args.runs * args.samples} conversations, "
          f"{args.turns} turns, L = {args.latency * 1000:.0f} ms ({requests:,} requests); {os.cpu_count()} cores")
    with FakeServerProcess(args.latency) as server, tempfile.TemporaryDirectory() as folder:
        for mode in ("headless", "board"):
            if args.only not in (None, mode):
                continue
            db_path = Path(folder) / f"{mode}.db"
            sweep_id = make_sweep(db_path, server.base_url, args.runs, args.samples, args.turns)
            before, server_before = cpu_s(), server.cpu()[0]
            if mode == "headless":
                wall, lags, statuses = headless(db_path, sweep_id)
                report("headless", wall, ideal, lags, statuses, cpu_s() - before, requests)
            else:
                wall, lags, refresh, statuses = with_board(db_path, sweep_id)
                report("board attached (UI loop)", wall, ideal, lags, statuses, cpu_s() - before, requests)
                print(f"  board refresh (4 Hz) lateness: {percentiles(refresh)}")
            print(f"  fake server CPU {server.cpu()[0] - server_before:.1f} s")


if __name__ == "__main__":
    main()
