"""A live run driven on its own asyncio loop (in a Textual thread worker), with thread-safe controls.

The runner, the provider's network I/O and the store's commits all happen on that loop, so the UI's
loop never waits on any of them. Controls from the UI are handed over with `call_soon_threadsafe`.
No Textual in this module: the run screen owns the worker.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from sqlite_utils import Database

from lhe_tui.runner.events import Subscriber
from lhe_tui.session import PreparedRun


class LiveRun:
    def __init__(self, prepared: PreparedRun, *, db: Database | None = None) -> None:
        """`db` is the writer's own connection, closed when the run ends."""
        self.prepared = prepared
        self.runner = prepared.runner
        self.session_id = prepared.session_id
        self.db = db
        self.status: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
        self._lock = threading.Lock()
        self._done = threading.Event()

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
        task = loop.create_task(self.runner.run())
        with self._lock:
            self._loop = loop
            pending, self._pending = self._pending, []
        for fn, args in pending:     # controls pressed before the loop existed (e.g. stop at once)
            loop.call_soon(fn, *args)
        try:
            self.status = await task
            return self.status
        finally:
            with self._lock:
                self._loop = None
            try:
                await self.prepared.provider.aclose()
            finally:
                if self.db is not None:
                    self.db.conn.close()
                self._done.set()

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
        """Drop the turns in flight; the session ends `interrupted` and stays replayable."""
        self._call(self.runner.stop)

    def inject(self, sample: int, offset: int | None = None, value: int | None = None) -> None:
        self._call(lambda: self.runner.inject(sample, offset=offset, value=value))

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)
