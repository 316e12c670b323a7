"""Overhead vs the ideal (issue 6): the engine against a model that always takes exactly L seconds.

A local OpenAI-compatible streaming server (FakeLLMServer, real SSE wire format) answers every request
after a fixed latency L (default 50 ms) with the fixed reply `<answer>0</answer>`. A run of T turns x S
samples goes headless through the real path, `lhe-tui run --headless`'s: `prepare_run` (store attached,
no token deltas, as that command), its progress bar (drawn as on a terminal, to /dev/null), the real OpenAI
provider (its direct HTTP/1.1 client over a socket), concurrency = samples. Each sample's turns are
sequential, so the ideal wall time is T x L whatever S is; the figure is

    overhead = wall time from RunStarted to RunFinished / (T x L)      (1.00 = the app costs nothing)

`--with-tui` attaches the TUI's live run view (LheApp driven by Textual's run_test, the run in its own
process whose events the screen's thread worker receives, as `lhe-tui run` does); without it the run is
headless.

Printed per size: median (and min..max) over the repetitions, plus the per-request latency the
provider measured (median and mean; from just before the SDK call to the end of the stream, so it
includes the SDK's client-side CPU and any wait for the event loop) and the gap per turn outside the
request (wall / T - mean latency; approximate, since samples do not all finish together).

The server runs in a child process by default (bench/_fake_server.py), so its CPU does not share the
client's GIL: on the 2-core bench machine that is one core each. `--server-in-process` runs it as a
thread of the benchmark process instead (what tests do; it inflates the figures).

    python bench/overhead.py                       # 200 turns x {1, 16, 64}, L = 50 ms, 3 repeats (5 min)
    python bench/overhead.py --turns 50 --samples 1 64 --repeats 5
    python bench/overhead.py --with-tui            # the TUI's live run view attached, driven headless (11 min)
    python bench/overhead.py --samples 64 --latency 0.5 --turns 20   # nearer real model latencies
    python bench/overhead.py --turns 30 --samples 64 --repeats 1 --profile /tmp/prof   # then pstats
    python bench/overhead.py --turns 100 --samples 1 64 --repeats 5 --control   # and this machine's floor

`--control` runs, right after each run, the same size by a client that does nothing but the requests: it
sends a fixed 8 KB request and reads the reply to its last chunk (asyncio streams; nothing parsed, scored
or stored). Its overhead is what this machine, its loopback and the fake server cost at that size, the
floor under any client; the engine's own cost is what it takes over that.

Also printed: the client process's CPU per request (all its threads: with --with-tui that includes
the UI) and the server process's, and each as a share of the wall time (1.0 = one core busy); and the
CPU per turn over the run alone (RunStarted to RunFinished: no imports, no store opening), the part of it
spent in the kernel, and how often a turn the process was preempted (on a shared machine the wall
time moves with the other load; the CPU time much less).

Sessions go to a throw-away database per run (a temporary folder, deleted at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _fake_server import DEFAULT_REPLY, FakeServerProcess, start_server  # noqa: E402

from lhe_tui.core.config import RunConfig  # noqa: E402
from lhe_tui.core.events import Event, RunFinished, RunStarted  # noqa: E402
from lhe_tui.runs.session import prepare_run  # noqa: E402
from lhe_tui.store.database import open_database  # noqa: E402


class TuiUnavailable(Exception):
    pass


def check_tui() -> None:
    """Import the TUI lazily (the headless variant must not import Textual); TuiUnavailable if missing."""
    try:
        import lhe_tui.ui.app  # noqa: F401
    except ImportError as exc:
        raise TuiUnavailable(f"not available yet (cannot import lhe_tui.ui.app: {exc})") from None


class RunClock:
    """Bus subscriber: wall time from RunStarted to RunFinished (after the store's RunFinished handler), and
    this process's CPU time over the same span (headless: the engine's, every thread of it, without the
    imports and the store's opening before the run; with the TUI: the UI process's while the run goes on)."""

    def __init__(self) -> None:
        self.started = self.finished = 0.0
        self.usage_started = self.usage_finished = resource.getrusage(resource.RUSAGE_SELF)

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.started = time.perf_counter()
            self.usage_started = resource.getrusage(resource.RUSAGE_SELF)
        elif isinstance(event, RunFinished):
            self.finished = time.perf_counter()
            self.usage_finished = resource.getrusage(resource.RUSAGE_SELF)

    def _spent(self, field: str) -> float:
        return getattr(self.usage_finished, field) - getattr(self.usage_started, field)

    @property
    def wall(self) -> float:
        return self.finished - self.started

    @property
    def cpu(self) -> float:
        return self._spent("ru_utime") + self._spent("ru_stime")

    @property
    def system_cpu(self) -> float:
        return self._spent("ru_stime")

    @property
    def preempted(self) -> float:
        """Involuntary context switches: the process was runnable but another took its core."""
        return self._spent("ru_nivcsw")


def bypass_sdk_transform() -> None:
    """Diagnostic only: skip the openai SDK's per-request TypedDict transform of the params.

    `chat.completions.create()` walks every message of the request through
    `openai._utils._transform.async_maybe_transform` (runtime typing introspection, about 0.2 ms per
    message here, so O(history) CPU per request on the event loop). For our plain-string messages the
    transform changes nothing but dropping omitted parameters, so replacing it by just that shows what
    the engine costs without it.
    """
    import openai.resources.chat.completions.completions as completions
    from openai._utils import is_given

    async def identity(data, expected_type):  # top level only: drop the omitted parameters, as the SDK does
        return {key: value for key, value in data.items() if is_given(value)}

    completions.async_maybe_transform = identity


CONTROL_BODY_BYTES = 8192   # about the engine's mean request body over 100 turns of the default task


def control_request(host: str, path: str) -> bytes:
    """The control's one request, sent as is every turn: a streamed chat completion whose only message is
    padding up to CONTROL_BODY_BYTES (the fake server does not read the body, only its length)."""
    body = b'{"model":"fake-model","stream":true,"messages":[{"role":"user","content":"%s"}]}'
    body = body % (b"x" * (CONTROL_BODY_BYTES - len(body) + 2))
    return (b"POST %s/chat/completions HTTP/1.1\r\nhost: %s\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%s" % (path.encode(), host.encode(), len(body), body))


async def _control_sample(host: str, port: int, request: bytes, turns: int) -> None:
    """One sample of the control: a connection, then `turns` times: send the request, read the reply's head
    and its chunked body to the last chunk. Nothing parsed, scored or stored."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for _ in range(turns):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200") or b"transfer-encoding: chunked" not in head.lower():
                raise SystemExit(f"control: unexpected reply head {head[:80]!r}")
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                await reader.readexactly(size + 2)
            await reader.readuntil(b"\r\n")    # the empty trailer
    finally:
        writer.close()


def run_control(base_url: str, samples: int, turns: int) -> float:
    """`--control`: the machine's floor at this size, the wall time of a client that does nothing but the
    requests (asyncio streams, the sample's turns one after another, samples concurrent)."""
    from urllib.parse import urlsplit

    url = urlsplit(base_url)
    request = control_request(url.netloc, url.path)

    async def go() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(_control_sample(url.hostname or "127.0.0.1", url.port or 80, request, turns)
                               for _ in range(samples)))
        return time.perf_counter() - started

    return asyncio.run(go())


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_once(base_url: str, db_path: Path, samples: int, turns: int, seed: int, with_tui: bool,
             server: FakeServerProcess | None = None, profile: Path | None = None) -> dict:
    config = RunConfig(provider="openai", model="fake-model", base_url=base_url, turns=turns, samples=samples,
                       concurrency=samples, seed=seed, max_retries=0).validate()
    clock = RunClock()
    server_cpu0, requests0, late0 = server.cpu() if server else (0.0, 0, 0.0)
    cpu0 = cpu_seconds()
    profiler = None
    if profile is not None:
        import cProfile
        profiler = cProfile.Profile(time.process_time)  # CPU time: waits for the loaded machine don't count
        profiler.enable()
    session_id, status, run_process_cpu = (run_with_tui if with_tui else run_headless)(config, db_path, base_url,
                                                                                     clock)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    client_cpu = cpu_seconds() - cpu0 + run_process_cpu
    server_cpu, requests, late = server.cpu() if server else (float("nan"), 1, float("nan"))
    server_cpu -= server_cpu0
    server_late = (late - late0) / max(1, requests - requests0)  # a reply's mean lateness past L
    db = open_database(db_path)
    latencies = [r[0] for r in db.execute("SELECT latency_s FROM turns WHERE session_id = ?",
                                          [session_id]).fetchall()]
    db.conn.close()
    n = len(latencies)
    if status != "finished" or n != samples * turns:
        raise SystemExit(f"run of {samples} samples ended {status!r} with {n}/{samples * turns} turns stored")
    return {"wall": clock.wall, "latency_median": statistics.median(latencies),
            "latency_mean": statistics.fmean(latencies), "client_cpu": client_cpu, "server_cpu": server_cpu,
            "server_late": server_late,
            "run_process_cpu": run_process_cpu, "run_cpu": clock.cpu,
            "run_system_cpu": clock.system_cpu, "preempted": clock.preempted}


def run_headless(config: RunConfig, db_path: Path, base_url: str, clock: RunClock) -> tuple[str, str, float]:
    """The `lhe-tui run --headless` path (lhe_tui.cli.run_cmd): prepare_run without token deltas, then
    the run driven under its progress bar, drawn as on a terminal (to /dev/null: the bench's own stderr
    is usually a pipe, where rich would not draw it at all)."""
    from rich.console import Console

    from lhe_tui.cli import headless

    db = open_database(db_path)
    prepared = prepare_run(config, db, base_url=base_url, stream_deltas=False)
    prepared.bus.subscribe(clock)
    try:
        with open(os.devnull, "w") as sink:
            terminal = Console(file=sink, force_terminal=True, width=120)
            return prepared.session_id, headless.drive_with_progress(
                prepared, config.samples * config.turns, prepared.provider.label, console=terminal), 0.0
    finally:
        db.conn.close()


def run_with_tui(config: RunConfig, db_path: Path, base_url: str, clock: RunClock) -> tuple[str, str, float]:
    """The TUI's live run view attached, driven headless (`App.run_test`, 160x48), as `lhe-tui run` does:
    the runner runs in its own process (lhe_tui.runs.run_process), whose events the run screen's thread
    worker hands to the UI; the UI loop drains the feed at its flush rate. The clock subscribes in this
    process: RunStarted and RunFinished are sent at once, so each reaches it after one pipe transfer. Returns the run process's CPU too (the client CPU is both processes')."""
    from lhe_tui.ui.app import LheApp, start_live_run

    live = start_live_run(config, db_path, base_url=base_url, stream_deltas=True)
    live.subscribe(clock)
    app = LheApp(db_path, live=live)

    async def go() -> None:
        async with app.run_test(size=(160, 48)) as pilot:
            while not live.finished:
                await asyncio.sleep(0.05)
            await pilot.pause()

    asyncio.run(go())
    return live.session_id, live.status or "unknown", live.process_cpu_s or 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=200, help="turns per sample (issue 6 asks for 200)")
    parser.add_argument("--samples", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per reply (L)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--server-in-process", action="store_true",
                        help="run the fake server as a thread of this process (shares the GIL)")
    parser.add_argument("--with-tui", action="store_true", help="attach the TUI (headless-driven)")
    parser.add_argument("--bypass-sdk-transform", action="store_true",
                        help="diagnostic: replace the openai SDK's per-request params transform by the identity "
                             "(the provider no longer calls it since it posts through client.post; kept to "
                             "compare with the old figures)")
    parser.add_argument("--control", action="store_true",
                        help="after each run, the same size by a client that only sends a fixed request and "
                             "reads the reply (nothing parsed or stored): the floor this machine and server allow")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="diagnostic: cProfile each run (this thread only: the headless runner, or the TUI's "
                             "loop with --with-tui) into DIR/r<repeat>-s<samples>.prof (slows the run down)")
    args = parser.parse_args(argv)
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench-dummy")  # never sent anywhere but 127.0.0.1

    if args.with_tui:
        try:
            check_tui()
        except TuiUnavailable as exc:
            print(f"TUI-attached variant: {exc}", file=sys.stderr)
            return 2

    if args.bypass_sdk_transform:
        bypass_sdk_transform()
    ideal = args.turns * args.latency
    print(f"overhead vs ideal: {args.turns} turns, L = {args.latency * 1000:.0f} ms, ideal {ideal:.1f} s, "
          f"reply {DEFAULT_REPLY!r}, {args.repeats} repeats, server "
          f"{'in-process thread' if args.server_in_process else 'child process'}, "
          f"{'TUI attached' if args.with_tui else 'headless'}, store attached, cores: {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.2f}"
          + (", openai SDK params transform BYPASSED (diagnostic)" if args.bypass_sdk_transform else ""))
    results: dict[int, list[dict]] = {s: [] for s in args.samples}
    controls: dict[int, list[float]] = {s: [] for s in args.samples}
    with tempfile.TemporaryDirectory(prefix="lhe-bench-") as tmp:
        server_cm: contextlib.AbstractContextManager = (
            contextlib.closing(_Stopper(start_server(args.latency))) if args.server_in_process
            else FakeServerProcess(args.latency))
        with server_cm as srv:
            base_url = srv.base_url
            for rep in range(args.repeats):  # sizes interleaved, so machine noise spreads over all of them
                for samples in args.samples:
                    profile = None
                    if args.profile:
                        args.profile.mkdir(parents=True, exist_ok=True)
                        profile = args.profile / f"r{rep}-s{samples}.prof"
                    r = run_once(base_url, Path(tmp) / f"r{rep}-s{samples}.db", samples, args.turns, rep,
                                 args.with_tui, None if args.server_in_process else srv, profile)
                    results[samples].append(r)
                    control = ""
                    if args.control:   # right after the run: the two see the machine in the same state
                        controls[samples].append(run_control(base_url, samples, args.turns))
                        control = f"  control {controls[samples][-1] / ideal:.3f}"
                    print(f"  repeat {rep + 1}: {samples:>3} samples  wall {r['wall']:.2f} s  "
                          f"overhead {r['wall'] / ideal:.3f}{control}  load {os.getloadavg()[0]:.2f}",
                          file=sys.stderr, flush=True)
        if not args.server_in_process and getattr(server_cm, "stats", ""):
            print(f"server: {server_cm.stats}", file=sys.stderr)

    print(f"{'samples':>7}  {'wall median':>11}  {'overhead median':>15}  {'(min..max)':>13}  "
          f"{'latency median':>14}  {'mean':>9}  {'gap/turn':>8}  {'client CPU/request':>18}  "
          f"{'server CPU/request':>18}  {'client, server CPU / wall':>25}")
    for samples, runs in results.items():
        walls = [r["wall"] for r in runs]
        wall = statistics.median(walls)
        lat = statistics.median(r["latency_median"] for r in runs)
        mean = statistics.median(r["latency_mean"] for r in runs)
        gap = wall / args.turns - mean
        n = samples * args.turns
        client = statistics.median(r["client_cpu"] for r in runs)
        server = statistics.median(r["server_cpu"] for r in runs)
        print(f"{samples:>7}  {wall:>9.2f} s  {wall / ideal:>15.3f}  "
              f"({min(walls) / ideal:.3f}..{max(walls) / ideal:.3f})  {lat * 1000:>11.1f} ms  "
              f"{mean * 1000:>6.1f} ms  {gap * 1000:>5.1f} ms  {client / n * 1000:>15.2f} ms  "
              f"{server / n * 1000:>15.2f} ms  {client / wall:>14.2f}, {server / wall:.2f}")
    print("the server's timer: its replies go out later than L by (mean a request, median over the repeats); "
          "overhead over what the server took, wall / (T x (L + that)):")
    for samples, runs in results.items():
        late = statistics.median(r["server_late"] for r in runs)
        walls = sorted(r["wall"] / (args.turns * (args.latency + r["server_late"])) for r in runs)
        print(f"  {samples:>3} samples: {late * 1000:.2f} ms late; overhead over the server's time "
              f"{statistics.median(walls):.3f} ({', '.join(f'{w:.3f}' for w in walls)})")
    print("CPU per turn, median over the repeats (" + ("the UI process from RunStarted to RunFinished; the run "
          "process from its start to its end, its imports and store opening included" if args.with_tui else
          "the engine's process from RunStarted to RunFinished, every thread") + "):")
    for samples, runs in results.items():
        n = samples * args.turns
        per_turn = sorted(r["run_cpu"] / n * 1000 for r in runs)
        system = statistics.median(r["run_system_cpu"] / n * 1000 for r in runs)
        preempted = statistics.median(r["preempted"] / n for r in runs)
        line = f"  {samples:>3} samples: {'UI' if args.with_tui else 'engine'} {statistics.median(per_turn):.3f} ms " \
               f"({', '.join(f'{x:.3f}' for x in per_turn)}; in the kernel {system:.3f} ms (median); " \
               f"{preempted:.2f} involuntary context switches a turn)"
        if args.with_tui:
            run_process = sorted(r["run_process_cpu"] / n * 1000 for r in runs)
            line += f"; run process {statistics.median(run_process):.3f} ms ({', '.join(f'{x:.3f}' for x in run_process)})"
        print(line)
    if args.with_tui:
        print("with the TUI, the client is two processes: the UI's and the run's. Their CPU / wall: "
              + ", ".join(f"{samples} samples {statistics.median((r['client_cpu'] - r['run_process_cpu']) / r['wall'] for r in runs):.2f}"
                          f" and {statistics.median(r['run_process_cpu'] / r['wall'] for r in runs):.2f}"
                          for samples, runs in results.items()))
    if args.control:
        print(f"the control (the same sizes by a client that only sends a fixed {CONTROL_BODY_BYTES // 1024} KB "
              "request and reads the reply: asyncio streams, nothing parsed, scored or stored), alternated with "
              "the runs; the engine over it, per turn of a sample:")
        for samples, runs in results.items():
            floor = statistics.median(controls[samples])
            wall = statistics.median(r["wall"] for r in runs)
            print(f"  {samples:>3} samples: control {floor / ideal:.3f} "
                  f"({', '.join(f'{c / ideal:.3f}' for c in sorted(controls[samples]))}); the engine "
                  f"{wall / ideal:.3f}, {(wall - floor) / args.turns * 1000:+.2f} ms a turn over the control")
    print("targets: overhead <= 1.10 at 64 samples (issue 6); <= 1.03 headless, <= 1.05 with the TUI, at 64 "
          "samples x 50 ms x 100 turns (issue 26)")
    return 0


class _Stopper:
    def __init__(self, server) -> None:
        self.server = server
        self.base_url = server.openai_base_url

    def close(self) -> None:
        self.server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
