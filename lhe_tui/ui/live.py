"""A live run driven on its own asyncio loop (in a Textual thread worker), with thread-safe controls.

The runner, the provider's network I/O and the store's commits all happen on that loop, so the UI's
loop never waits on any of them. Controls from the UI are handed over with `call_soon_threadsafe`.
No Textual in this module: the run screen owns the worker.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lhe_tui.runner.events import Subscriber

if TYPE_CHECKING:
    from sqlite_utils import Database

    from lhe_tui.providers.local_server import LocalModelServer
    from lhe_tui.session import PreparedRun

NOT_STARTED = "not started"
"""The status of a run stopped (or failed) before its first event: nothing was stored."""


class LiveRun:
    def __init__(self, prepared: PreparedRun, *, db: Database | None = None,
                 server: LocalModelServer | None = None) -> None:
        """`db` is the writer's own connection, closed when the run ends. `server` (a resolved, not yet
        started local model server) is started on the run's loop before the first turn and stopped when
        the run ends, however it ends."""
        self.prepared = prepared
        self.server = server
        self.starting = False
        self.runner = prepared.runner
        self.session_id = prepared.session_id
        self.db = db
        self.status: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._task: asyncio.Task[str] | None = None

    # ---- wiring ---------------------------------------------------------------------------------------
    def subscribe(self, subscriber: Subscriber) -> None:
        self.prepared.bus.subscribe(subscriber)

    @property
    def config(self):
        return self.runner.config

    @property
    def resumed(self) -> bool:
        return bool(getattr(self.runner, "resumed", False))

    @property
    def finished(self) -> bool:
        return self._done.is_set()

    async def drive(self) -> str:
        """Run to the end on the current (worker thread's) loop; returns the run status."""
        loop = asyncio.get_running_loop()
        self.starting = self.server is not None
        task = self._task = loop.create_task(self._serve_and_run())
        with self._lock:
            self._loop = loop
            pending, self._pending = self._pending, []
        for fn, args in pending:     # controls pressed before the loop existed (e.g. stop at once)
            loop.call_soon(fn, *args)
        try:
            self.status = await task
            return self.status
        except asyncio.CancelledError:   # stopped while the local server was starting
            self.status = NOT_STARTED
            return self.status
        except BaseException:
            self.status = NOT_STARTED if self.starting else "failed"
            raise
        finally:
            with self._lock:
                self._loop = None
            try:
                await self.prepared.provider.aclose()
            finally:
                if self.server is not None:
                    self.server.stop(keep_log=self.starting)   # a failed start names its log
                if self.db is not None:
                    self.db.conn.close()
                self._done.set()

    async def _serve_and_run(self) -> str:
        if self.server is not None:
            await self.server.astart()
            self.starting = False
        return await self.runner.run()

    def _call(self, fn: Callable[..., Any], *args: Any) -> None:
        with self._lock:
            loop = self._loop
            if loop is None:
                if not self._done.is_set():
                    self._pending.append((fn, args))
                return
            try:
                loop.call_soon_threadsafe(fn, *args)
            except RuntimeError:  # the loop is closing: the run is over anyway
                pass

    # ---- controls (any thread) ----------------------------------------------------------------------
    @property
    def paused(self) -> bool:
        return self.runner.paused

    def pause(self) -> None:
        self._call(self.runner.pause)

    def resume(self) -> None:
        self._call(self.runner.resume)

    def stop(self) -> None:
        """Drop the turns in flight; the session ends `interrupted` and stays replayable. While the local
        server is still starting, the start is abandoned (nothing is stored)."""
        self._call(self._stop)

    def _stop(self) -> None:
        if self.starting and self._task is not None:
            self._task.cancel()
        else:
            self.runner.stop()

    def inject(self, sample: int, offset: int | None = None, value: int | None = None) -> None:
        self._call(lambda: self.runner.inject(sample, offset=offset, value=value))

    def inject_all(self, offset: int | None = None, value: int | None = None) -> None:
        """Every sample with a finished turn; each draws its own random offset when none is given."""
        self._call(lambda: self.runner.inject_all(offset=offset, value=value))

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)
