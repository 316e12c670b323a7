"""A run in a process of its own: the runner, its provider and the store's writer, apart from the UI.

The TUI's live runs happen here (issue 6): in a thread of the UI's process they shared its GIL, so the
screen's drawing slowed the run down (overhead 1.98 at 64 samples, against 1.15 headless). The parent
(`lhe_tui.ui.live.LiveRun`) starts `run_in_process` with a `RunJob` and two one-way pipes:

- events: the child sends pickled messages, `("events", [Event, ...])` batches at most `FLUSH_S` apart,
  then exactly one of `("done", status, cpu_seconds)` or `("failed", exception)`, after its store is
  closed (cpu_seconds: this process's CPU time, for benchmarks);
- commands: the parent sends `("pause",)`, `("resume",)`, `("stop",)`, `("fail", message)` (our local
  model server died: the run ends failed), `("inject", sample, offset,
  value)`, `("inject_all", offset, value)` and `("select", sample)` (whose token deltas to send).

The store subscribes first, in this process, so every finished turn is committed before the sample's
next request, exactly as headless. If the parent goes away (its end of a pipe closes), the run is
stopped and ends `interrupted`, with everything committed kept. No Textual here.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from lhe_tui.core.config import RunConfig
from lhe_tui.core.events import Event, RunFinished, RunPaused, RunResumed, RunStarted, TokenDelta

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from lhe_tui.core.lineage import Lineage
    from lhe_tui.runs.probe import ProbePlan
    from lhe_tui.providers.base import Provider
    from lhe_tui.runs.session import PreparedRun
    from lhe_tui.runs.resume_state import ResumeState
    from lhe_tui.task.model import Task

FLUSH_S = 0.02
"""Events are sent in batches at most this far apart (the screen draws at 10 Hz): one pickle and one
write per batch, not per event."""

_AT_ONCE = (RunStarted, RunPaused, RunResumed, RunFinished)
"""Sent without waiting for the batch: the screen shows them at once (and a clock in the parent sees the
run start and end when they happen)."""


@dataclass(frozen=True)
class RunJob:
    """What the run process runs; picklable. `kind`: run | resume | probe."""

    kind: str
    db_path: str
    config: RunConfig
    session_id: str
    base_url: str | None = None           # overrides the config's (as `prepare_run(base_url=...)`)
    local_url: str | None = None          # our own local model server, started by the parent
    local_server: Any = None              # ... and a ServerRef to it (its death is told apart from a fault)
    task: Task | None = None              # run: the task the parent built (and so checked)
    resume_state: ResumeState | None = None
    probe: ProbePlan | None = None        # probe: the plan the parent made (and so checked)
    stream_deltas: bool = True
    environment: dict[str, str] | None = None   # the parent's os.environ when the run starts (see below)
    lineage: Lineage | None = None        # run: an arm's group (issue 15), told to the store and the views

    def with_local_server(self, url: str, server: Any = None) -> RunJob:
        return replace(self, local_url=url, local_server=server)

    def with_environment(self, environment: dict[str, str]) -> RunJob:
        """A forkserver's children inherit the environment the forkserver started with, which may be
        older than the parent's: API keys, base URLs, proxies and client choices are read from the
        environment the run starts with. (It crosses a pipe, never a disk. The working folder needs no
        such care: multiprocessing moves the child into the parent's.)"""
        return replace(self, environment=dict(environment))

    def provider(self) -> Provider | None:
        """The provider for our own local server; None: the usual one is made from the config."""
        if self.local_url is None:
            return None
        from lhe_tui.providers.local_provider import make_local_provider

        return make_local_provider(self.config, self.local_url, self.local_server)

    def prepare(self, db: Any) -> PreparedRun:
        provider = self.provider()
        if self.kind == "resume":
            from lhe_tui.runs.session import prepare_resume

            return prepare_resume(db, self.session_id, provider=provider, base_url=self.base_url,
                                  stream_deltas=self.stream_deltas, state=self.resume_state)
        if self.kind == "probe":
            from lhe_tui.runs.probe import prepare_planned_probe

            assert self.probe is not None
            return prepare_planned_probe(self.probe, db, provider=provider, base_url=self.base_url,
                                         stream_deltas=self.stream_deltas, session_id=self.session_id)
        from lhe_tui.runs.session import prepare_run

        return prepare_run(self.config, db, provider=provider, base_url=self.base_url, session_id=self.session_id,
                           stream_deltas=self.stream_deltas, task=self.task, lineage=self.lineage)


class EventForwarder:
    """Bus subscriber: batches events and sends them to the parent. Token deltas go only for the sample
    the parent watches. A parent that has gone away stops the run (`on_parent_gone`)."""

    def __init__(self, conn: Connection, loop: asyncio.AbstractEventLoop, on_parent_gone: Any) -> None:
        self.conn = conn
        self.loop = loop
        self.on_parent_gone = on_parent_gone
        self.selected = 0
        self.gone = False
        self._batch: list[Event] = []
        self._timer: asyncio.TimerHandle | None = None

    def __call__(self, event: Event) -> None:
        if type(event) is TokenDelta and event.sample != self.selected:
            return
        self._batch.append(event)
        if type(event) in _AT_ONCE:
            self.flush()
        elif self._timer is None:
            self._timer = self.loop.call_later(FLUSH_S, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._batch = self._batch, []
        if batch:
            self.send(("events", batch))

    def send(self, message: tuple[Any, ...]) -> None:
        if self.gone:
            return
        try:
            self.conn.send_bytes(pickle.dumps(message, pickle.HIGHEST_PROTOCOL))
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.gone = True
            self.on_parent_gone()


def portable_error(exc: BaseException) -> BaseException:
    """`exc` if it survives pickling (the parent shows its type and text), else a RuntimeError saying so."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def run_in_process(job: RunJob, events: Connection, commands: Connection) -> None:
    """The child's entry point (a multiprocessing target)."""
    # The UI owns the terminal: nothing may be written to it from here, and a Ctrl+C or hang-up meant
    # for the parent (a signal to the process group) must not kill the run: the parent says stop, or its
    # end of the pipe closes as it dies, and the session then ends `interrupted`.
    for name in ("SIGINT", "SIGHUP"):           # (no SIGHUP on Windows)
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    # LHE_TUI_DEBUG_RUN_PROCESS=1 keeps its stderr (for a traceback the pipe could not carry).
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1) if os.environ.get("LHE_TUI_DEBUG_RUN_PROCESS") else (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    if job.environment is not None:
        os.environ.clear()
        os.environ.update(job.environment)
    asyncio.run(_run(job, events, commands))


async def _run(job: RunJob, events: Connection, commands: Connection) -> None:
    from lhe_tui.store.database import open_database

    loop = asyncio.get_running_loop()
    prepared = None
    forwarder = EventForwarder(events, loop, lambda: prepared is not None and prepared.runner.stop())
    db = None
    outcome: tuple[Any, ...]
    try:
        db = open_database(job.db_path, check=False)   # (the parent checked it as the run was set up)
        prepared = job.prepare(db)
        prepared.bus.subscribe(forwarder)
        task = loop.create_task(prepared.runner.run())
        loop.add_reader(commands.fileno(), _obey, commands, prepared, forwarder, loop)
        outcome = ("done", await task, _cpu_seconds())
    except BaseException as exc:   # noqa: BLE001 - everything goes to the parent, which shows it
        outcome = ("failed", portable_error(exc))
    finally:
        try:
            loop.remove_reader(commands.fileno())
        except (ValueError, OSError):
            pass
        forwarder.flush()
        try:
            if prepared is not None:
                await prepared.provider.aclose()
        finally:
            if db is not None:
                db.conn.close()
    forwarder.send(outcome)


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _obey(commands: Connection, prepared: PreparedRun, forwarder: EventForwarder,
          loop: asyncio.AbstractEventLoop) -> None:
    runner = prepared.runner
    while True:
        try:
            if not commands.poll():
                return
            command = commands.recv()
        except (EOFError, OSError):      # the parent has gone: stop, keeping what is committed
            loop.remove_reader(commands.fileno())
            runner.stop()
            return
        try:
            _apply(command[0], command[1:], runner, forwarder)
        except Exception:   # noqa: BLE001 - a control that cannot apply (as in-process: ignored)
            pass


def _apply(name: str, args: tuple[Any, ...], runner: Any, forwarder: EventForwarder) -> None:
    if name == "pause":
        runner.pause()
    elif name == "resume":
        runner.resume()
    elif name == "stop":
        runner.stop()
    elif name == "fail":
        runner.fail(args[0])
    elif name == "inject":
        sample, offset, value = args
        runner.inject(sample, offset=offset, value=value)
    elif name == "inject_all":
        offset, value = args
        runner.inject_all(offset=offset, value=value)
    elif name == "select":
        forwarder.selected = args[0]
