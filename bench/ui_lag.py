"""UI lag (issue 6): the Textual event loop's lag while samples stream at full speed into the live view.

`LheApp` runs a live run the way `lhe-tui run` does (the run in its own process, whose events the run
screen's thread worker receives; token deltas streamed, the store attached), driven headless by
Textual's `run_test` at 160x48. A probe task on the app's own event loop sleeps `--probe-ms` (10 ms) over
and over and records how late each wake-up is: lag = actual sleep - requested sleep. Anything that holds
the UI loop (the 10 Hz flush that drains the feed into the model and the widgets, the 2 Hz metrics,
Textual's layout and rendering) or keeps the main thread from the GIL (the worker thread receiving the
events) shows up as lag. Printed per size: p50 / p99 / max of
the lag from the run screen's mount to the end of the run, the run's turns per second, and the time
spent in the run screen's flush and metrics callbacks (p50 / p99 / max per call, and their share of the
wall time).

Target (issue 6): p99 < 50 ms with 32 samples.

    python bench/ui_lag.py                              # sim, no delay, 1 / 8 / 32 samples x 200 turns
    python bench/ui_lag.py --samples 32 --turns 400 --repeats 3
    python bench/ui_lag.py --no-tui                     # baseline: the same run, a bare asyncio loop probed
    python bench/ui_lag.py --provider openai            # the OpenAI provider against bench/_fake_server.py
    python bench/ui_lag.py --samples 32 --profile       # cProfile of the main (UI) thread, top functions
    python bench/ui_lag.py --samples 32 --stalls 40     # what the UI thread was doing during lags over 40 ms
    python bench/ui_lag.py --samples 32 --size 100x40   # under 120 columns the charts are hidden
    python bench/ui_lag.py --samples 16 --turns 10000   # issue 26: a long run; memory and lag as it grows

Below each TUI row: the UI process's RSS and the lag p99 at 100, 200, 1,000, 2,000, 3,000, 6,000, 10,000 turns per sample
and at the end (does the view grow without bound, or slow down with rows?), with the most events waiting in
the feed since the row before (a UI behind the run holds them); then the UI process's gc collections.

With few probes (1 sample: the UI loop is busy most of the time) p99 is the worst probe.

`--no-tui` runs the same runner in a thread beside a bare asyncio loop with the same probe: the lag that
is left there is the cost of sharing the GIL with the runner, which no UI change can remove.

Sessions go to a throw-away database (a temporary folder, deleted at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import ctypes
import gc
import io
import os
import pstats
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lhe_tui.core.config import RunConfig  # noqa: E402

clock = time.perf_counter


@dataclass
class Result:
    samples: int
    lags_ms: list[float]
    turns: int
    wall_s: float
    flush_ms: list[float] = field(default_factory=list)
    metrics_ms: list[float] = field(default_factory=list)
    status: str = ""
    steady_lags_ms: list[float] = field(default_factory=list)   # after --settle-s
    growth: list[tuple[int, Memory, int, int]] = field(default_factory=list)   # (turns done, memory, probes so far, events waiting)
    gc_ms: dict[int, list[float]] = field(default_factory=dict)   # generation -> each collection's duration (ms)

    def gc_line(self) -> str:
        """The UI process's garbage collections (any thread) by generation: count, p50 / max duration."""
        return "    gc: " + "; ".join(f"gen{g} {len(v)} x, p50 {self.pct(v, 0.5):.1f} ms, max {max(v):.1f} ms"
                                      for g, v in sorted(self.gc_ms.items()) if v)

    def growth_table(self, per_sample_marks: tuple[int, ...] = (100, 200, 1000, 2000, 3000, 6000, 10000, 30000)) -> str:
        """The UI process's memory and the loop's lag as the run grows: at the first sample past each mark
        of turns per sample (and at the end), RSS, the lag p99 of the probes since the previous row and the most
        events waiting in the feed since then (a UI that falls behind holds them: RSS that is not the view's);
        then what the RSS is made of: the bytes malloc has handed out and not had back (C and Python's larger
        objects: arrays, long strings, the events waiting; SQLite's page caches, shown on their own too) and
        Python's small objects (blocks in use). RSS that
        grows while both stay flat is freed memory the allocators keep, not the view's."""
        rows, done_probes, marks, waiting = [], 0, [m * self.samples for m in per_sample_marks], 0
        for turns, mem, probes, backlog in self.growth:
            waiting = max(waiting, backlog)
            if (marks and turns >= marks[0]) or (turns, mem, probes, backlog) == self.growth[-1]:
                while marks and turns >= marks[0]:
                    marks.pop(0)
                window = self.lags_ms[done_probes:probes]
                rows.append(f"    at {turns // self.samples:>6} turns/sample ({turns:>7} turns): UI RSS {mem.rss_mb:6.0f} MB, "
                            f"lag p99 since the row before {self.pct(window, 0.99):6.1f} ms ({len(window)} probes), "
                            f"events waiting <= {waiting}; malloc in use {mem.malloc_mb:5.1f} MB, "
                            f"Python small objects {mem.py_blocks / 1e3:5.0f} k; SQLite {mem.sqlite_mb:4.1f} MB")
                done_probes, waiting = probes, 0
        return "\n".join(rows)

    @staticmethod
    def pct(values: list[float], q: float) -> float:
        if not values:
            return float("nan")
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Probe:
    """Sleep `interval` on the running loop again and again; record each wake-up's lateness (ms)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.lags_ms: list[float] = []
        self.times: list[float] = []     # when each probe started, seconds from the first
        self.windows: list[tuple[float, float]] = []   # (when it should have woken, when it did), clock()
        self.stop = False

    async def run(self) -> None:
        interval = self.interval
        first = clock()
        while not self.stop:
            t0 = clock()
            await asyncio.sleep(interval)
            woke = clock()
            self.lags_ms.append(max(0.0, woke - t0 - interval) * 1e3)
            self.times.append(t0 - first)
            self.windows.append((t0 + interval, woke))

    def after(self, seconds: float) -> list[float]:
        """The lags of the probes started `seconds` or more after the first (the view's start-up left out)."""
        return [lag for lag, t in zip(self.lags_ms, self.times) if t >= seconds]


class StallSampler:
    """Sample the UI thread's stack every `every` seconds from another thread (`--stalls`).

    After the run, the samples that fall inside a probe's late window (lag over the threshold) say what
    the loop was doing during the long stalls: inclusive counts per function, and per widget class for
    the frames of `render_lines`/`render_line`/`render` (which widget's repaint it was). A sample needs
    the GIL, so the UI thread's stack while it waits for it shows where it will resume.
    """

    RENDER_FUNCTIONS = {"render_lines", "render_line", "render", "_render_content", "sync", "flush"}

    def __init__(self, thread_id: int, every: float = 0.002) -> None:
        self.thread_id = thread_id
        self.every = every
        self.samples: list[tuple[float, tuple[str, ...], tuple[str, ...]]] = []
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True, name="stall-sampler")

    def _run(self) -> None:
        while not self.stop:
            frame = sys._current_frames().get(self.thread_id)
            functions: list[str] = []
            widgets: list[str] = []
            while frame is not None:
                code = frame.f_code
                functions.append(f"{Path(code.co_filename).name}:{code.co_name}")
                if code.co_name in self.RENDER_FUNCTIONS:
                    owner = frame.f_locals.get("self")
                    if owner is not None:
                        widgets.append(f"{type(owner).__name__}.{code.co_name}")
                frame = frame.f_back
            self.samples.append((clock(), tuple(functions), tuple(widgets)))
            time.sleep(self.every)

    def report(self, windows: list[tuple[float, float]], threshold_ms: float, top: int = 30) -> str:
        from collections import Counter

        stalls = [(start, end) for start, end in windows if (end - start) * 1e3 > threshold_ms]
        functions: Counter[str] = Counter()
        widgets: Counter[str] = Counter()
        leaves: Counter[str] = Counter()
        total = 0
        samples = self.samples
        times = [t for t, _, _ in samples]
        import bisect

        for start, end in stalls:
            for t, stack, owners in samples[bisect.bisect_left(times, start):bisect.bisect_right(times, end)]:
                total += 1
                functions.update(set(stack))
                widgets.update(set(owners))
                leaves[stack[0] if stack else "?"] += 1
        stalled_ms = sum(end - start for start, end in stalls) * 1e3
        first = windows[0][0] if windows else 0.0
        worst = sorted(stalls, key=lambda w: w[0] - w[1])[:5]
        lines = [f"stalls over {threshold_ms:g} ms: {len(stalls)} ({stalled_ms:.0f} ms in all), "
                 f"{total} stack samples in them (every {self.every * 1e3:g} ms)",
                 "  worst: " + ", ".join(f"{(end - start) * 1e3:.0f} ms at {start - first:.1f} s"
                                         for start, end in worst),
                 "  by widget method (inclusive share of the stall samples):"]
        lines += [f"    {n / max(total, 1):6.1%}  {name}" for name, n in widgets.most_common(top)]
        lines.append("  by function (inclusive):")
        lines += [f"    {n / max(total, 1):6.1%}  {name}" for name, n in functions.most_common(top)]
        lines.append("  innermost frame:")
        lines += [f"    {n / max(total, 1):6.1%}  {name}" for name, n in leaves.most_common(15)]
        return "\n".join(lines)


class Timings:
    """Wrap RunScreen.flush and refresh_metrics (class-level, this process only) to time every call."""

    def __init__(self) -> None:
        from lhe_tui.ui.screens.run import RunScreen

        self.flush_ms: list[float] = []
        self.metrics_ms: list[float] = []
        self._originals = {name: getattr(RunScreen, name) for name in ("flush", "refresh_metrics")}
        for name, store in (("flush", self.flush_ms), ("refresh_metrics", self.metrics_ms)):
            setattr(RunScreen, name, self._timed(self._originals[name], store))

    @staticmethod
    def _timed(fn, store: list[float]):
        def wrapper(self, *args, **kwargs):
            t0 = clock()
            try:
                return fn(self, *args, **kwargs)
            finally:
                store.append((clock() - t0) * 1e3)
        wrapper.__name__ = fn.__name__
        return wrapper

    def restore(self) -> None:
        from lhe_tui.ui.screens.run import RunScreen

        for name, fn in self._originals.items():
            setattr(RunScreen, name, fn)


def make_config(args: argparse.Namespace, samples: int, base_url: str | None) -> RunConfig:
    if args.provider == "sim":
        extra: dict = {"sim_delay": args.sim_delay, "mode": args.mode}
    else:  # the fake server answers `<answer>0</answer>` in 5 content chunks, whatever the mode
        extra = {"model": "fake-model", "base_url": base_url, "max_retries": 0}
    return RunConfig(provider=args.provider, samples=samples, turns=args.turns, seed=args.seed,
                     concurrency=samples, **extra).validate()


def run_tui(config: RunConfig, db_path: Path, interval: float, base_url: str | None,
            profiler: cProfile.Profile | None, size: tuple[int, int] = (160, 48), settle_s: float = 2.0,
            stalls_ms: float | None = None, sample_every: float = 0.5) -> Result:
    from lhe_tui.ui.app import LheApp, start_live_run
    from lhe_tui.ui.screens.run import RunScreen

    kwargs = {"base_url": base_url} if base_url else {}
    live = start_live_run(config, db_path, stream_deltas=True, **kwargs)
    app = LheApp(db_path, live=live)
    probe = Probe(interval)
    timings = Timings()
    sampler = StallSampler(threading.get_ident()) if stalls_ms else None
    growth: list[tuple[int, Memory, int, int]] = []   # (turns done, memory, probes, events waiting), every `sample_every` s
    gc_ms: dict[int, list[float]] = {0: [], 1: [], 2: []}
    gc_started: list[float] = [0.0]

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            gc_started[0] = clock()
        else:
            gc_ms[info["generation"]].append((clock() - gc_started[0]) * 1e3)

    async def go() -> float:
        async with app.run_test(size=size) as pilot:
            while not (isinstance(app.screen, RunScreen) and app.screen.is_mounted):
                await pilot.pause()
            timings.flush_ms.clear()
            timings.metrics_ms.clear()
            started = clock()
            task = asyncio.create_task(probe.run())
            if profiler:
                profiler.enable()
            if sampler:
                sampler.thread.start()
            next_sample = clock()
            try:
                while not live.finished:
                    await asyncio.sleep(0.02)
                    if clock() >= next_sample:   # the UI's memory and lag as the run grows (--samples-every)
                        next_sample += sample_every
                        growth.append((app.screen.model.turns_done, memory(), len(probe.lags_ms), len(app.screen.feed)))
            finally:
                if profiler:
                    profiler.disable()
                if sampler:
                    sampler.stop = True
                    sampler.thread.join()
                probe.stop = True
                await task
            wall = clock() - started
            growth.append((app.screen.model.turns_done, memory(), len(probe.lags_ms), len(app.screen.feed)))
            await pilot.pause()
            return wall

    gc.callbacks.append(on_gc)
    try:
        wall = asyncio.run(go())
    finally:
        gc.callbacks.remove(on_gc)
        timings.restore()
    if sampler and stalls_ms:
        print(sampler.report(probe.windows, stalls_ms))
    return Result(samples=config.samples, lags_ms=probe.lags_ms, turns=turns_done(db_path, live.session_id),
                  wall_s=wall, flush_ms=timings.flush_ms, metrics_ms=timings.metrics_ms, status=live.status or "",
                  steady_lags_ms=probe.after(settle_s), growth=growth, gc_ms=gc_ms)


def run_bare(config: RunConfig, db_path: Path, interval: float, base_url: str | None) -> Result:
    """The same run in a thread (its own loop, as in the TUI), a bare asyncio loop with the probe here."""
    from lhe_tui.runs.session import prepare_run
    from lhe_tui.store.database import open_database

    db = open_database(db_path)
    prepared = prepare_run(config, db, base_url=base_url, stream_deltas=True)
    seen = []
    prepared.bus.subscribe(seen.append)   # a subscriber that keeps every event, as the TUI's feed would
    status: list[str] = []

    def drive() -> None:
        status.append(asyncio.run(prepared.run()))

    probe = Probe(interval)

    async def go() -> float:
        task = asyncio.create_task(probe.run())
        thread = threading.Thread(target=drive, daemon=True)
        started = clock()
        thread.start()
        while thread.is_alive():
            await asyncio.sleep(0.02)
        wall = clock() - started
        probe.stop = True
        await task
        return wall

    wall = asyncio.run(go())
    db.conn.close()
    return Result(samples=config.samples, lags_ms=probe.lags_ms, turns=turns_done(db_path, prepared.session_id),
                  wall_s=wall, status=status[0] if status else "")


class Memory(NamedTuple):
    rss_mb: float
    malloc_mb: float     # glibc's mallinfo2: allocated and not freed (nan where there is none)
    py_blocks: int       # sys.getallocatedblocks(): Python's small objects in use
    sqlite_mb: float     # sqlite3_memory_used(): SQLite's own (page caches, statements), part of malloc's


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                      "fsmblks", "uordblks", "fordblks", "keepcost")]


def malloc_in_use_mb() -> float:
    """Bytes malloc has handed out and not had back (all arenas, mmapped chunks too); nan off glibc >= 2.33."""
    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return float("nan")
    mallinfo2.restype = _MallInfo2
    info = mallinfo2()
    return (info.uordblks + info.hblkhd) / 2**20


def sqlite_in_use_mb() -> float:
    """SQLite's own memory in this process (its page caches fill up to each connection's cache_size as the
    store grows); nan where the sqlite3 module's library cannot be loaded by name."""
    try:
        used = ctypes.CDLL("libsqlite3.so.0").sqlite3_memory_used
    except (OSError, AttributeError):
        return float("nan")
    used.restype = ctypes.c_int64
    return used() / 2**20


def memory() -> Memory:
    return Memory(rss_mb(), malloc_in_use_mb(), sys.getallocatedblocks(), sqlite_in_use_mb())


def rss_mb() -> float:
    """This process's resident memory (the UI's: the run is in a process of its own)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def turns_done(db_path: Path, session_id: str) -> int:
    from lhe_tui.store.database import open_database

    db = open_database(db_path, create=False)
    try:
        return db.execute("SELECT COUNT(*) FROM turns WHERE session_id = ?", [session_id]).fetchone()[0]
    finally:
        db.conn.close()


def fmt(values: list[float]) -> str:
    return (f"{Result.pct(values, 0.5):6.1f} {Result.pct(values, 0.99):7.1f} {max(values, default=float('nan')):7.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--provider", choices=("sim", "openai"), default="sim")
    parser.add_argument("--mode", default="thinking", help="sim: thinking streams reasoning and text deltas")
    parser.add_argument("--sim-delay", type=float, default=0.0, help="sim: seconds per token (0 = full speed)")
    parser.add_argument("--latency", type=float, default=0.0, help="openai: the fake server's latency (s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--probe-ms", type=float, default=10.0)
    parser.add_argument("--no-tui", action="store_true", help="baseline: no app, a bare asyncio loop probed")
    parser.add_argument("--profile", action="store_true", help="cProfile the UI thread during the run")
    parser.add_argument("--size", default="160x48", help="terminal size; under 120 columns the charts are hidden")
    parser.add_argument("--settle-s", type=float, default=2.0,
                        help="also report the lag from this many seconds after the view came up (start-up left out)")
    parser.add_argument("--stalls", type=float, metavar="MS",
                        help="sample the UI thread's stack; report what it did during lags over MS ms")
    parser.add_argument("--switch-interval", type=float, help="diagnostic: sys.setswitchinterval (s; default 0.005)")
    args = parser.parse_args(argv)
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    if args.profile and args.no_tui:
        parser.error("--profile profiles the TUI; drop --no-tui")

    print(f"python {sys.version.split()[0]}, cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}; "
          f"{'bare asyncio loop (no TUI)' if args.no_tui else f'LheApp live view, run_test {args.size}'}; "
          f"provider {args.provider}"
          + (f" (sim_delay {args.sim_delay})" if args.provider == "sim" else f" (fake server, L = {args.latency})")
          + f", mode {args.mode}, {args.turns} turns, probe {args.probe_ms:g} ms, "
          f"GIL switch interval {sys.getswitchinterval() * 1e3:g} ms")
    server = None
    base_url = None
    if args.provider == "openai":
        from _fake_server import FakeServerProcess

        server = FakeServerProcess(args.latency).__enter__()
        base_url = server.base_url
    profiler = cProfile.Profile() if args.profile else None
    header = (f"{'samples':>7} {'turns/s':>8} {'lag p50':>7} {'p99':>7} {'max':>7} {'probes':>6}"
              + ("" if args.no_tui else f"   {'flush p50':>9} {'p99':>7} {'max':>7} {'share':>5}"
                                        f"   {'metrics p50':>11} {'p99':>7} {'max':>7}"
                                        f"   {'steady p99':>10}"))
    print(header)
    try:
        with tempfile.TemporaryDirectory(prefix="lhe-bench-") as tmp:
            for samples in args.samples:
                p99s: list[float] = []
                steady: list[float] = []
                for repeat in range(args.repeats):
                    config = make_config(args, samples, base_url)
                    db_path = Path(tmp) / f"ui-lag-{samples}-{repeat}.db"
                    interval = args.probe_ms / 1e3
                    if args.no_tui:
                        result = run_bare(config, db_path, interval, base_url)
                    else:
                        width, height = (int(v) for v in args.size.lower().split("x"))
                        result = run_tui(config, db_path, interval, base_url, profiler, (width, height),
                                         args.settle_s, args.stalls)
                    p99s.append(Result.pct(result.lags_ms, 0.99))
                    line = (f"{samples:>7} {result.turns / result.wall_s:>8.0f} {fmt(result.lags_ms)} "
                            f"{len(result.lags_ms):>6}")
                    if not args.no_tui:
                        share = sum(result.flush_ms) / 1e3 / result.wall_s
                        line += f"   {fmt(result.flush_ms):>25} {share:>5.0%}   {fmt(result.metrics_ms):>27}"
                        line += f"   {Result.pct(result.steady_lags_ms, 0.99):>10.1f}"
                        steady.append(Result.pct(result.steady_lags_ms, 0.99))
                    if result.status != "finished":
                        line += f"   (run {result.status})"
                    print(line, flush=True)
                    if result.growth:
                        print(result.growth_table(), flush=True)
                    if result.gc_ms:
                        print(result.gc_line(), flush=True)
                if args.repeats > 1:
                    print(f"{samples:>7} median p99 over {args.repeats} repeats: {statistics.median(p99s):.1f} ms"
                          + (f"; after the first {args.settle_s:g} s: {statistics.median(steady):.1f} ms" if steady else ""))
    finally:
        if server is not None:
            server.__exit__(None, None, None)
    print("lag in ms (actual - requested sleep of the probe); flush/metrics in ms per call; share = flush time / "
          f"wall; steady p99 = probes from {args.settle_s:g} s after the view came up. "
          "target (issue 6): p99 < 50 ms at 32 samples")
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(40)
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
