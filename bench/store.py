"""Store speed (issue 6): insert rate of finished turns, and loading a 100,000-turn session for replay.

Part 1, insert rate. A `SessionWriter` on a fresh store (open_database: WAL, synchronous=NORMAL) gets
RunStarted, then one TurnFinished per turn, exactly as the runner emits them: one insert and one commit
per turn (plus the first-error update when a sample first goes wrong). Turns come sample-interleaved
(turn 1 of every sample, then turn 2, ...), as a concurrent run delivers them; about 2% of answers are
wrong. Printed: turns/s over the whole session and over its first and last tenth (does the rate fall
as the table grows?), and the RunFinished handler (which computes the session summary).

Part 2, replay load. From a fresh connection each time (median of repeats): open_database,
`SessionReplay` (session, samples, injections, the turn count and the first page of the light turn
index: no turn record read, the rest of the index read as playback needs it), the whole index query
alone (what opening read before it was paged), the first 5 frames (one page of turn records), a seek to the end (every
record, the slow path an instant-speed replay takes), load_turns (every TurnRecord), and, for the
reports, flags_by_sample, the accuracy curves, bootstrap_ci (answer and task, 1000 resamples) and
summarize. Then, in a fresh child process, the memory of opening the replay: RSS before and after
`SessionReplay` and after 5 steps.

Part 3 (`--with-tui`): the replay's first frame in the TUI, as the user waits for it. `lhe-tui replay ID`
is spawned in a pseudo-terminal (160x48) and timed from the spawn to its first complete frame on the
terminal (the header, the sample list and the footer written): interpreter start-up, imports, loading
the session and Textual's start-up all count. Then Enter on the session in the sessions screen of an
app already running (headless, run_test), to the run screen's first composed frame. Then an in-process
breakdown: SessionReplay, and the app from its start to the run screen's first frame.

    python bench/store.py                              # 10 samples x 10,000 turns = 100,000 turns
    python bench/store.py --samples 100 --turns 1000   # same size, the paper's 100-sample shape
    python bench/store.py --samples 4 --turns 2500 --repeats 3
    python bench/store.py --with-tui --db /tmp/store.db    # keep the store, then only Part 3 on it:
    python bench/store.py --tui-only --db /tmp/store.db

Part 4 (`--big-store GB`, issue 22): a store of about GB gigabytes shaped as the probe's (752 sessions, 1.2 M
turns in 1.1 GB): one session of 10 samples x 160 turns written through the SessionWriter with ~850-byte
replies, then copied under new ids until the file is that large. Then `lhe-tui sessions` in a fresh process
with the page cache dropped (`sync; echo 3 > /proc/sys/vm/drop_caches`: root only; otherwise the figures say
"warm"): the first time (the store changed: its integrity check runs, and is remembered), again cold (the
check remembered), and warm; then `lhe-tui doctor` (the full check, always) cold.

    python bench/store.py --big-store 1 --db /tmp/big.db      # builds it once; later runs reuse it
    python bench/store.py --samples 100 --turns 10000 --build-only --db /tmp/1m.db   # issue 26: 1,000,000 turns
    python bench/store.py --samples 100 --turns 10000 --tui-only --db /tmp/1m.db --repeats 3
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lhe_tui.metrics import answer_accuracy, bootstrap_ci, summarize, task_accuracy, turn_accuracy
from lhe_tui.core.config import RunConfig
from lhe_tui.core.events import RunFinished, RunStarted, SampleFinished, TurnFinished, TurnRecord
from lhe_tui.runs.session import build_task
from lhe_tui.store.database import open_database
from lhe_tui.store.queries import flags_by_sample, load_turn_index, load_turns
from lhe_tui.store.replay import SessionReplay
from lhe_tui.store.writer import SessionWriter

clock = time.perf_counter
SESSION = "bench-store"
TUI_IMPORT_S = 0.0


def records(config: RunConfig, error_rate: float = 0.02):
    """TurnRecords as the runner builds them, sample-interleaved; the model slips now and then."""
    task = build_task(config)
    rng = random.Random(1)
    seen = {s.index: 0 for s in task.samples}
    golds = {s.index: s.gold_sums() for s in task.samples}
    now = time.time()
    for turn in range(1, config.turns + 1):
        for sample in task.samples:
            gold = golds[sample.index][turn - 1]
            turn_sum = sample.turn_sum(turn)
            answer = gold if rng.random() > error_rate else gold + rng.choice((-1, 1)) * rng.randint(1, 10)
            previous = seen[sample.index]
            seen[sample.index] = answer
            now += 0.001
            yield TurnRecord(
                sample=sample.index, turn=turn, keys=sample.turn_keys(turn), key_values=sample.turn_values(turn),
                turn_sum=turn_sum, gold_sum=gold, seen_previous=previous, expected_step=previous + turn_sum,
                raw_reply=f"<answer>{answer}</answer>", reasoning="", answer_status="ok", model_answer=answer,
                correct=answer == gold, step_correct=answer == previous + turn_sum, history_answer=answer,
                tokens_in=40 + 12 * turn, tokens_out=6, latency_s=0.05, retries=0, started_at=now - 0.05,
                finished_at=now)


def part1(db_path: Path, config: RunConfig) -> None:
    db = open_database(db_path)
    task = build_task(config)
    writer = SessionWriter(db, SESSION)
    writer(RunStarted(session_id=SESSION, config=config.to_dict(), dictionary=task.dictionary,
                      sample_keys=tuple(s.keys for s in task.samples), provider_label="bench:synthetic",
                      simulated=True))
    total = config.samples * config.turns
    events = [TurnFinished(r) for r in records(config)]  # built beforehand: only the store is timed
    stamps = [0.0] * (total + 1)
    started = clock()
    for i, event in enumerate(events):
        writer(event)
        stamps[i + 1] = clock() - started
    elapsed = stamps[-1]
    tenth = max(1, total // 10)
    first = tenth / stamps[tenth]
    last = tenth / (stamps[total] - stamps[total - tenth])
    t0 = clock()
    for sample in task.samples:
        writer(SampleFinished(sample=sample.index, status="finished"))
    writer(RunFinished(status="finished", wall_time_s=elapsed))
    finish = clock() - t0
    stored = db.execute("SELECT COUNT(*) FROM turns WHERE session_id = ?", [SESSION]).fetchone()[0]
    db.conn.close()
    if stored != total:
        raise SystemExit(f"stored {stored} turns, wanted {total}")
    size = sum(p.stat().st_size for p in db_path.parent.glob(db_path.name + "*"))
    print(f"Part 1: insert rate through SessionWriter, one commit per turn, {config.samples} samples x "
          f"{config.turns} turns = {total:,} turns")
    print(f"  whole session: {total / elapsed:,.0f} turns/s ({elapsed / total * 1e6:.0f} us per turn, {elapsed:.1f} s)")
    print(f"  first {tenth:,} turns: {first:,.0f} turns/s; last {tenth:,} turns: {last:,.0f} turns/s "
          f"(last / first {last / first:.2f})")
    print(f"  SampleFinished x {config.samples} + RunFinished (session summary): {finish * 1e3:.0f} ms; "
          f"store size {size / 1e6:.1f} MB")


def timed(fn, repeats: int):
    times, result = [], None
    for _ in range(repeats):
        t0 = clock()
        result = fn()
        times.append(clock() - t0)
    return statistics.median(times), result


def part2(db_path: Path, repeats: int) -> None:
    rows: list[tuple[str, float]] = []

    def fresh():
        return open_database(db_path, create=False)

    t, db = timed(fresh, repeats)
    rows.append(("open_database (existing store)", t))
    t, replay = timed(lambda: SessionReplay(db, SESSION), repeats)
    rows.append((f"SessionReplay(): session, samples, turn index, events; {len(replay):,} frames", t))
    t, _ = timed(lambda: load_turn_index(db, SESSION), repeats)
    rows.append(("  of which load_turn_index alone (light columns, covering index)", t))
    t, _ = timed(lambda: SessionReplay(db, SESSION).step(5), repeats)
    rows.append(("  SessionReplay() + the first 5 frames (one page of turn records)", t))
    t, _ = timed(lambda: SessionReplay(db, SESSION).seek(len(replay)), repeats)
    rows.append(("  SessionReplay() + seek to the end (every record; instant speed)", t))
    t, turns = timed(lambda: load_turns(db, SESSION), repeats)
    rows.append((f"  load_turns ({len(turns):,} TurnRecords)", t))
    del turns
    t, (correct, step) = timed(lambda: flags_by_sample(db, SESSION), repeats)
    rows.append(("flags_by_sample", t))
    t, _ = timed(lambda: (answer_accuracy(correct), turn_accuracy(step), task_accuracy(correct)), repeats)
    rows.append(("answer, turn and task accuracy curves", t))
    t, _ = timed(lambda: (bootstrap_ci(correct, "answer"), bootstrap_ci(correct, "task")), repeats)
    rows.append(("bootstrap_ci turn + task (1000 resamples)", t))
    t, _ = timed(lambda: summarize(correct, step), repeats)
    rows.append(("summarize (first errors, both fits of p, horizon)", t))
    db.conn.close()

    print(f"\nPart 2: loading the session for replay, fresh connection, median of {repeats} (seconds)")
    for name, t in rows:
        print(f"  {name:<72} {t:>7.3f}")
    print(f"  {'open_database + SessionReplay() (what the first frame waits for)':<72} {rows[0][1] + rows[1][1]:>7.3f}")
    print("  target (issue 6): replay first frame < 1 s (the TUI's part: --with-tui)")
    print(f"  memory, fresh process: {replay_rss(db_path)}")


RSS_SCRIPT = """
import resource, sys
from lhe_tui.store.database import open_database
from lhe_tui.store.replay import SessionReplay
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 1e6
db = open_database(sys.argv[1], create=False)
before = rss()
replay = SessionReplay(db, sys.argv[2])
opened = rss()
replay.step(5)
print(f"RSS {before:.0f} MB before SessionReplay(), {opened:.0f} MB after (+{opened - before:.0f} MB), "
      f"{rss():.0f} MB after 5 frames")
"""


def replay_rss(db_path: Path) -> str:
    import subprocess

    done = subprocess.run([sys.executable, "-c", RSS_SCRIPT, str(db_path), SESSION], capture_output=True, text=True)
    return done.stdout.strip() or f"(failed: {done.stderr.strip()[-200:]})"


TERMINAL_SIZE = (160, 48)


def child_env(bytecode_cache: Path | None) -> dict[str, str]:
    """The environment `lhe-tui replay` is spawned in. `bytecode_cache`: compiled modules are written to and
    read from there (PYTHONPYCACHEPREFIX), as an installed lhe-tui has them; None: as this environment runs
    (PYTHONDONTWRITEBYTECODE=1 here: every lhe_tui module is compiled again at each start, ~0.1 s of CPU)."""
    cols, lines = TERMINAL_SIZE
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(cols), "LINES": str(lines)}
    if bytecode_cache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(bytecode_cache)
    return env


def terminal_first_frame(db_path: Path, markers: tuple[bytes, ...], env: dict[str, str],
                         timeout: float = 60.0) -> tuple[float, float, float, float]:
    """`lhe-tui replay ID` in a pseudo-terminal, as a user starts it from a shell: seconds from the spawn to
    the first byte the app writes and to its first complete frame (every marker written: the header, the
    sample list and the footer, which Textual writes top to bottom). Interpreter start-up and imports count.
    Also the child's CPU time (user + system, every thread) until it was killed there: less sensitive to
    a busy machine than the wall time; and its peak resident memory (MB) by then."""
    import fcntl
    import pty
    import select
    import signal
    import struct
    import termios

    cols, lines = TERMINAL_SIZE
    argv = [sys.executable, "-m", "lhe_tui", "replay", SESSION, "--db", str(db_path)]
    t0 = clock()
    pid, fd = pty.fork()
    if pid == 0:   # the child: size its terminal before the app can ask, then become `lhe-tui replay`
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", lines, cols, 0, 0))
        os.execve(sys.executable, argv, env)
    output, first_byte, complete = b"", None, None
    try:
        while clock() - t0 < timeout and complete is None:
            if not select.select([fd], [], [], 0.05)[0]:
                continue
            try:
                data = os.read(fd, 1 << 20)
            except OSError:
                break
            if not data:
                break
            first_byte = first_byte if first_byte is not None else clock() - t0
            output += data
            if all(marker in output for marker in markers):
                complete = clock() - t0
    finally:
        os.kill(pid, signal.SIGKILL)
        usage = os.wait4(pid, 0)[2]
        os.close(fd)
    if complete is None:
        raise RuntimeError(f"no complete first frame within {timeout:.0f} s; the app wrote "
                           f"{len(output)} bytes ending {output[-300:]!r}")
    return first_byte or complete, complete, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def _frame_clock(app, screen_type) -> list[float]:
    """Times at which `app` composes a frame of a `screen_type` screen (headless: rendered, not written)."""
    frames: list[float] = []
    display = app._display

    def timed_display(screen, renderable):
        display(screen, renderable)
        if renderable is not None and isinstance(screen, screen_type):
            frames.append(clock())

    app._display = timed_display
    return frames


def part3(db_path: Path, repeats: int, samples: int, bytecode: bool = True) -> None:
    """The replay's first frame, as the user waits for it: `lhe-tui replay ID` in a terminal (everything
    from the spawn), and Enter in the sessions screen of a running app (the TUI already imported)."""
    import asyncio

    from lhe_tui.ui.app import LheApp
    from lhe_tui.ui.screens.run import RunScreen

    # the header, a sample row low in the list (the list shows ~20 rows at 48 lines) and the footer
    markers = (b"bench:synthetic", f"s{min(samples, 20) - 1} ".encode(), b"Help")
    with tempfile.TemporaryDirectory(prefix="lhe-bench-pyc-") as cache:
        env = child_env(Path(cache) if bytecode else None)
        terminal_first_frame(db_path, markers, env)     # not timed: compiles the modules (if cached), warms the store
        spawned = [terminal_first_frame(db_path, markers, env) for _ in range(repeats)]

    async def from_sessions_screen(app) -> tuple[float, float]:
        frames = _frame_clock(app, RunScreen)
        async with app.run_test(size=TERMINAL_SIZE) as pilot:
            while not app.screen.query("DataTable") or not app.screen.query_one("DataTable").row_count:
                await pilot.pause()
            t0 = clock()
            await pilot.press("enter")
            while not frames:
                await asyncio.sleep(0.002)
            return t0, frames[0]

    async def opened_directly(app) -> float:
        frames = _frame_clock(app, RunScreen)
        async with app.run_test(size=TERMINAL_SIZE):
            while not frames:
                await asyncio.sleep(0.002)
            return frames[0]

    enters, loads, apps = [], [], []
    for _ in range(repeats):
        app = LheApp(db_path)
        t0, t1 = asyncio.run(from_sessions_screen(app))
        enters.append(t1 - t0)
        t0 = clock()
        db = open_database(db_path, create=False)
        replay = SessionReplay(db, SESSION)
        t1 = clock()
        t2 = asyncio.run(opened_directly(LheApp(db_path, replay=replay)))
        db.conn.close()
        loads.append(t1 - t0)
        apps.append(t2 - t1)
    med = statistics.median
    print(f"\nPart 3: the replay's first frame in the TUI ({TERMINAL_SIZE[0]}x{TERMINAL_SIZE[1]}), median of {repeats}"
          f" (seconds); load average {os.getloadavg()[0]:.2f}")
    print("  bytecode: " + ("compiled once, then read from a cache, as an installed lhe-tui (one spawn not timed)"
                            if bytecode else "every lhe_tui module compiled at each start (--no-bytecode-cache)"))
    print(f"  {'`lhe-tui replay ID` in a terminal: spawn to the first complete frame':<72} "
          f"{med(c for _, c, _, _ in spawned):>7.3f}   target < 1 s")
    print(f"  {'  (runs: ' + ', '.join(f'{c:.2f}' for _, c, _, _ in spawned) + ')':<72}")
    print(f"  {'  its CPU time (user + system, all threads; less sensitive to load)':<72} "
          f"{med(u for _, _, u, _ in spawned):>7.3f}")
    print(f"  {'  its peak resident memory by then (MB)':<72} "
          f"{med(m for _, _, _, m in spawned):>7.0f}   target < 150 MB")
    print(f"  {'  spawn to the first byte the app writes (interpreter, imports, load, app)':<72} "
          f"{med(f for f, _, _, _ in spawned):>7.3f}")
    print(f"  {'Enter in the sessions screen to the run screen first frame':<72} {med(enters):>7.3f}")
    print("  in-process breakdown (imports not counted, frame composed headless, not written):")
    print(f"  {'  open_database + SessionReplay()':<72} {med(loads):>7.3f}")
    print(f"  {'  LheApp(replay=...) started to the run screen first frame':<72} {med(apps):>7.3f}")
    print(f"  {'  importing the TUI (lhe_tui.ui.app), once per process':<72} {TUI_IMPORT_S:>7.3f}")


BIG_SAMPLES, BIG_TURNS = 10, 160


def build_big_store(db_path: Path, gigabytes: float) -> None:
    """The template session through the writer, then copies of it in SQL until the file is big enough."""
    import sqlite3

    from lhe_tui.store.writer import now_iso

    config = RunConfig(provider="sim", turns=BIG_TURNS, samples=BIG_SAMPLES, concurrency=BIG_SAMPLES).validate()
    db = open_database(db_path)
    task = build_task(config)
    writer = SessionWriter(db, "big-0000")
    writer(RunStarted(session_id="big-0000", config=config.to_dict(), dictionary=task.dictionary,
                      sample_keys=tuple(s.keys for s in task.samples), provider_label="sim:bench (simulated)",
                      simulated=True))
    padding = "Adding the values of the keys one by one, carrying the running total forward. " * 8
    for record in records(config):
        writer(TurnFinished(dataclasses.replace(record, reasoning=padding)))
    for sample in task.samples:
        writer(SampleFinished(sample=sample.index, status="finished"))
    writer(RunFinished(status="finished", wall_time_s=1.0))
    db.conn.close()
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    session_cols = [r[1] for r in conn.execute("PRAGMA table_info(sessions)")]
    sample_cols = [r[1] for r in conn.execute("PRAGMA table_info(samples)")]
    turn_cols = [r[1] for r in conn.execute("PRAGMA table_info(turns)")]

    def copy_sql(table: str, columns: list[str], key: str) -> str:
        names = ", ".join(f"[{c}]" for c in columns)
        picks = ", ".join("?" if c == key else "?" if c == "created_at" else f"[{c}]" for c in columns)
        where = "id" if table == "sessions" else "session_id"
        return f"INSERT INTO {table} ({names}) SELECT {picks} FROM {table} WHERE {where} = 'big-0000'"

    def params(columns: list[str], key: str, new_id: str, created: str) -> list[str]:
        return [new_id if c == key else created for c in columns if c in (key, "created_at")]

    target = gigabytes * 1e9
    n = 1
    started = clock()
    while db_path.stat().st_size + Path(str(db_path) + "-wal").stat().st_size < target:
        with conn:
            for _ in range(25):
                new_id = f"big-{n:04d}"
                created = now_iso()
                conn.execute(copy_sql("sessions", session_cols, "id"), params(session_cols, "id", new_id, created))
                conn.execute(copy_sql("samples", sample_cols, "session_id"),
                             params(sample_cols, "session_id", new_id, created))
                conn.execute(copy_sql("turns", turn_cols, "session_id"),
                             params(turn_cols, "session_id", new_id, created))
                n += 1
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    print(f"  built: {n} sessions, {n * BIG_SAMPLES * BIG_TURNS:,} turns, "
          f"{db_path.stat().st_size / 1e9:.2f} GB in {clock() - started:.0f} s")


def drop_caches() -> bool:
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def timed_command(*args: str) -> str:
    """`lhe-tui ARGS` in a fresh process: its wall time and CPU time (user + system; on a shared machine the
    wall time also holds the waits for a core: the load average is printed with the figures)."""
    import resource
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = clock()
    done = subprocess.run([sys.executable, "-m", "lhe_tui", *args], capture_output=True, text=True, env=env)
    wall = clock() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return f"{wall:.2f} s wall, {cpu:.2f} s CPU (exit {done.returncode}, load {os.getloadavg()[0]:.1f})"


def store_part(db_path: Path) -> str:
    """In this process, warm: what `sessions` asks of the store (open, list, costs) apart from printing."""
    from lhe_tui.analysis.compare import session_costs
    from lhe_tui.store.queries import list_sessions

    t0, c0 = clock(), time.process_time()
    db = open_database(db_path, create=False, write=False)
    rows = list_sessions(db)
    session_costs(db, rows)
    db.conn.close()
    return f"{clock() - t0:.3f} s wall, {time.process_time() - c0:.3f} s CPU for {len(rows)} sessions"


def part4(db_path: Path, gigabytes: float) -> None:
    print(f"Part 4: `lhe-tui sessions` on a {gigabytes:g} GB store")
    if not db_path.exists():
        build_big_store(db_path, gigabytes)
    from lhe_tui.store import checked

    checked.forget(db_path)       # as a store just changed: its first command checks it
    cold = "cold" if drop_caches() else "warm (cannot drop the page cache: not root)"
    print(f"  sessions, {cold}, the store changed since its last check (quick_check runs): "
          + timed_command("sessions", "--db", str(db_path)))
    for _ in range(3):
        cold = "cold" if drop_caches() else "warm"
        print(f"  sessions, {cold}, the check remembered: " + timed_command("sessions", "--db", str(db_path)))
    print("  sessions, warm, the check remembered: " + timed_command("sessions", "--db", str(db_path)))
    print("  of which the store's part (open, list, costs), warm, in-process: " + store_part(db_path))
    cold = "cold" if drop_caches() else "warm"
    print(f"  doctor (the full check, always), {cold}: " + timed_command("doctor", "--db", str(db_path)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--turns", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--db", type=Path, help="keep the store here (default: a temporary folder)")
    parser.add_argument("--with-tui", action="store_true", help="also time the replay's first frame in the TUI")
    parser.add_argument("--build-only", action="store_true",
                        help="only Part 1: build the store at --db (e.g. 100 x 10,000 turns for --tui-only)")
    parser.add_argument("--tui-only", action="store_true",
                        help="only Part 3, on the store --db kept by an earlier run (with the same --samples)")
    parser.add_argument("--no-bytecode-cache", action="store_true",
                        help="Part 3: spawn the replay as this environment does (PYTHONDONTWRITEBYTECODE kept)")
    parser.add_argument("--big-store", type=float, metavar="GB",
                        help="only Part 4: `lhe-tui sessions` on a store this big (built at --db if not there)")
    args = parser.parse_args(argv)
    if args.big_store is not None:
        if args.db is None:
            raise SystemExit("--big-store needs --db (the store is kept: building it takes minutes)")
        part4(args.db, args.big_store)
        return 0
    if args.build_only and args.db is None:
        raise SystemExit("--build-only needs --db: where to keep the store")
    if args.tui_only and (args.db is None or not args.db.exists()):
        raise SystemExit("--tui-only needs --db: a store kept by an earlier run of this benchmark")
    if args.with_tui or args.tui_only:
        try:
            t0 = clock()
            import lhe_tui.ui.app  # noqa: F401  (lazily: the rest of this benchmark must not need Textual)
            global TUI_IMPORT_S
            TUI_IMPORT_S = clock() - t0
        except ImportError as exc:
            print(f"replay first frame with the TUI: not available yet ({exc})", file=sys.stderr)
            return 2
    config = RunConfig(provider="sim", turns=args.turns, samples=args.samples, concurrency=args.samples).validate()
    print(f"python {sys.version.split()[0]}, cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="lhe-bench-") as tmp:
        db_path = args.db or Path(tmp) / "store.db"
        if args.tui_only:
            part3(db_path, args.repeats, args.samples, not args.no_bytecode_cache)
            return 0
        if db_path.exists():
            raise SystemExit(f"{db_path} exists; give a new path")
        part1(db_path, config)
        if args.build_only:
            return 0
        part2(db_path, args.repeats)
        if args.with_tui:
            part3(db_path, args.repeats, args.samples, not args.no_bytecode_cache)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
