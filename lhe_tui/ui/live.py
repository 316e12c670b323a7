"""A live run for the TUI: the run itself goes on in a process of its own, with thread-safe controls.

The runner, the provider's network I/O and the store's commits happen in the run process
(`lhe_tui.runs.run_process`), so neither the UI's loop nor its GIL ever holds them up, and they
never hold up the UI. `drive()` (run by the run screen in a thread worker) starts our own local model
server first if the run needs one, then the process, and hands its events to the subscribers (the
screen's EventFeed) as they arrive. Controls go to the process down a pipe. No Textual in this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from lhe_tui.common.errors import LheError
from lhe_tui.core.events import Event, RunPaused, RunResumed, Subscriber

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext
    from multiprocessing.process import BaseProcess

    from lhe_tui.providers.local_server import LocalModelServer
    from lhe_tui.core.config import RunConfig
    from lhe_tui.runs.run_process import RunJob

NOT_STARTED = "not started"
"""The status of a run stopped (or failed) before its first event: nothing was stored."""

EXIT_WAIT_S = 5.0
"""How long the run process may take to exit after its last message before it is killed."""


class RunProcessDied(LheError):
    """The run process ended without saying how the run ended (killed, or it crashed)."""


def _context() -> BaseContext:
    """forkserver where there is one (each run process forks from a small clean server that has already
    imported the run's modules: about 20 ms to start, against 250 for a fresh interpreter, and no
    fork of the UI's threads), else spawn. Imported here: a replay never needs multiprocessing."""
    import multiprocessing

    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["lhe_tui.runs.run_process", "lhe_tui.runs.session", "sqlite_utils"])
        return context
    return multiprocessing.get_context("spawn")


_STDERR_LOCK = threading.Lock()


@contextlib.contextmanager
def _stderr_with_a_file() -> Iterator[None]:
    """multiprocessing hands `sys.stderr.fileno()` to the helper processes it starts (its resource tracker);
    the app's capture of stderr answers -1, which they refuse. The real stderr stands in meanwhile."""
    with _STDERR_LOCK:
        captured = sys.stderr
        try:
            usable = captured is not None and captured.fileno() >= 0
        except (OSError, ValueError, AttributeError):
            usable = False
        if not usable and sys.__stderr__ is not None:
            sys.stderr = sys.__stderr__
        try:
            yield
        finally:
            sys.stderr = captured


class LiveRun:
    def __init__(self, job: RunJob, *, server: LocalModelServer | None = None, resumed: bool = False) -> None:
        """`job`: what the run process runs. `server` (a resolved, not yet started local model server) is
        started before the run process and stopped when the run ends, however it ends."""
        self.job = job
        self.server = server
        self.resumed = resumed
        self.session_id = job.session_id
        self.kind = job.kind
        self.starting = False
        self.status: str | None = None
        self.process: BaseProcess | None = None
        self.process_cpu_s: float | None = None    # the run process's CPU time, once it has finished
        self._subscribers: list[Subscriber] = []
        self._paused = False
        self._done = threading.Event()
        self._context = _context()
        self._events_in, self._events_out = self._context.Pipe(duplex=False)
        self._commands_in, self._commands_out = self._context.Pipe(duplex=False)
        self._send_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._start_task: asyncio.Task[None] | None = None
        self._abandon = False
        self._failure: Exception | None = None   # a subscriber's error: it ends the run

    # ---- wiring ---------------------------------------------------------------------------------------
    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    @property
    def config(self) -> RunConfig:
        return self.job.config

    @property
    def finished(self) -> bool:
        return self._done.is_set()

    async def drive(self) -> str:
        """Run to the end (from the run screen's thread worker); returns the run status."""
        loop = self._loop = asyncio.get_running_loop()
        try:
            if self.server is not None:
                self.starting = True
                self._start_task = loop.create_task(self.server.astart())
                if self._abandon:
                    self._start_task.cancel()
                try:
                    await self._start_task
                except asyncio.CancelledError:    # stopped while the local server was starting
                    self.status = NOT_STARTED
                    return self.status
                self.starting = False
                self.job = self.job.with_local_server(self.server.base_url, self.server.ref())
                # Its death ends the run at once, failed, with its cause (no retries against a dead server).
                self.server.watch(lambda message: self._send("fail", message))
            self.status = await self._run_process(loop)
            return self.status
        except BaseException:
            self.status = NOT_STARTED if self.starting else "failed"
            raise
        finally:
            self._loop = None
            try:
                self._end_process()
            finally:
                if self.server is not None:
                    self.server.stop(keep_log=self.starting)   # a failed start names its log
                for conn in (self._events_in, self._commands_out):
                    conn.close()
                self._done.set()

    async def _run_process(self, loop: asyncio.AbstractEventLoop) -> str:
        from lhe_tui.runs.run_process import run_in_process

        job = self.job.with_environment(dict(os.environ))
        process = self.process = self._context.Process(
            target=run_in_process, args=(job, self._events_out, self._commands_in),
            name=f"lhe-tui run {self.session_id}", daemon=True)
        with _stderr_with_a_file():
            process.start()
        self._events_out.close()        # the child's ends: a child that dies is seen as end of file
        self._commands_in.close()
        outcome: asyncio.Future[str] = loop.create_future()
        reader = self._events_in
        loop.add_reader(reader.fileno(), self._receive, outcome)
        try:
            status = await outcome
        finally:
            loop.remove_reader(reader.fileno())
        if self._failure is not None:
            raise self._failure
        return status

    def _receive(self, outcome: asyncio.Future[str]) -> None:
        reader = self._events_in
        while not outcome.done():
            try:
                if not reader.poll():
                    return
                message = pickle.loads(reader.recv_bytes())
            except (EOFError, OSError):
                process = self.process
                if process is not None:
                    process.join(EXIT_WAIT_S)
                code = process.exitcode if process is not None else None
                outcome.set_exception(RunProcessDied(
                    f"the run's process ended without finishing the run (exit code {code}); the turns "
                    f"committed so far are kept: `lhe-tui resume {self.session_id}` continues it"))
                return
            kind = message[0]
            if kind == "events" and self._failure is None:
                try:
                    self._deliver(message[1])
                except Exception as exc:   # noqa: BLE001 - a subscriber failed: the run stops with its error
                    self._failure = exc
                    self._send("stop")     # and the process's last messages are still read to the end
            elif kind == "done":
                self.process_cpu_s = message[2]
                outcome.set_result(message[1])
            elif kind == "failed":
                outcome.set_exception(message[1])

    def _deliver(self, events: list[Event]) -> None:
        subscribers = self._subscribers
        for event in events:
            if type(event) is RunPaused:
                self._paused = True
            elif type(event) is RunResumed:
                self._paused = False
            for subscriber in subscribers:
                subscriber(event)

    def _end_process(self) -> None:
        process = self.process
        if process is None or process.pid is None:    # never started
            return
        process.join(EXIT_WAIT_S)
        if process.is_alive():
            process.kill()
            process.join()

    # ---- controls (any thread) ----------------------------------------------------------------------
    def _send(self, *command: Any) -> None:
        with self._send_lock:
            try:
                self._commands_out.send(command)
            except (OSError, ValueError):   # the run is over (pipe closed): nothing to control
                pass

    def _call(self, fn: Callable[[], Any]) -> None:
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(fn)
            except RuntimeError:  # the loop is closing: the run is over anyway
                pass

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        self._paused = True
        self._send("pause")

    def resume(self) -> None:
        self._paused = False
        self._send("resume")

    def stop(self) -> None:
        """Drop the turns in flight; the session ends `interrupted` and stays replayable. While the local
        server is still starting, the start is abandoned (nothing is stored)."""
        if self.starting or (self.server is not None and self.process is None):
            self._abandon = True
            self._call(self._cancel_start)
        self._send("stop")

    def _cancel_start(self) -> None:
        if self._start_task is not None and self.starting:
            self._start_task.cancel()

    def select(self, sample: int) -> None:
        """The sample whose token deltas the run process sends (the one the screen streams)."""
        self._send("select", sample)

    def inject(self, sample: int, offset: int | None = None, value: int | None = None) -> None:
        self._send("inject", sample, offset, value)

    def inject_all(self, offset: int | None = None, value: int | None = None) -> None:
        """Every sample with a finished turn; each draws its own random offset when none is given."""
        self._send("inject_all", offset, value)

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)
