"""A sweep run live for the board (issue 24 §2): the SweepEngine in a thread of its own (its own event loop and
store connection), and per run a handle with the LiveRun interface the run screen drives (subscribe, drive,
pause, stop, inject, ...), so `enter` on a board row opens the same live view `lhe-tui run` shows. No Textual.

Controls are handed to the engine's loop thread-safely; events reach a handle's subscribers from the engine's
thread (the run screen's EventFeed is a thread-safe buffer). A handle is always `resumed`: the view first shows
the run's stored turns, then what arrives (a turn seen twice is shown once).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lhe_tui.core.events import Event, RunFinished, RunStarted, Subscriber

if TYPE_CHECKING:
    from lhe_tui.core.config import RunConfig
    from lhe_tui.runs.session import PreparedRun
    from lhe_tui.sweep.engine import SweepEngine
    from lhe_tui.sweep.plan import PlannedRun


class SweepRunHandle:
    """One run of a live sweep, as the run screen sees a LiveRun."""

    server = None
    resumed = True

    def __init__(self, driver: SweepDriver, run: PlannedRun) -> None:
        self.driver = driver
        self.name = run.name
        self._config = run.config
        self.kind = "probe" if driver.plan_probe else "run"
        self.session_id = run.session_id
        self.status: str | None = None
        self.starting = False
        self._lock = threading.Lock()
        self._subscribers: list[Subscriber] = []
        self._started: RunStarted | None = None
        self._prepared: PreparedRun | None = None
        self._done = threading.Event()
        self._paused = False

    # ---- engine side (its thread) -----------------------------------------------------------------
    def attach(self, prepared: PreparedRun) -> None:
        self._prepared = prepared
        self.session_id = prepared.session_id
        self._config = prepared.runner.config
        prepared.bus.subscribe(self._forward)

    def _forward(self, event: Event) -> None:
        with self._lock:
            if isinstance(event, RunStarted):
                self._started = event
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            subscriber(event)
        if isinstance(event, RunFinished):
            self.status = event.status
            self._done.set()

    def ended(self, status: str) -> None:
        """The engine is done with this run (finished, stopped, never started)."""
        self.status = self.status or status
        self._done.set()

    # ---- the run screen's side --------------------------------------------------------------------
    def subscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.append(subscriber)
            started = self._started
        if started is not None:      # opened mid-run: the view needs the run's start (config, samples)
            subscriber(started)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

    @property
    def config(self) -> RunConfig:
        return self._config

    @property
    def finished(self) -> bool:
        return self._done.is_set()

    async def drive(self) -> str:
        """Wait for the run's end (the engine runs it; the screen's worker only waits)."""
        while not self._done.is_set():
            await asyncio.sleep(0.1)
        return self.status or "interrupted"

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def _call(self, fn: Callable[[Any], Any]) -> None:
        prepared = self._prepared
        if prepared is not None:
            self.driver.call(lambda: fn(prepared.runner))

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        self._paused = True
        self._call(lambda runner: runner.pause())

    def resume(self) -> None:
        self._paused = False
        self._call(lambda runner: runner.resume())

    def stop(self) -> None:
        self._call(lambda runner: runner.stop())

    def select(self, sample: int) -> None:
        """Token deltas of every sample reach the feed, which keeps the selected one's."""

    def inject(self, sample: int, offset: int | None = None, value: int | None = None) -> None:
        self._call(lambda runner: runner.inject(sample, offset=offset, value=value))

    def inject_all(self, offset: int | None = None, value: int | None = None) -> None:
        self._call(lambda runner: runner.inject_all(offset=offset, value=value))


class SweepDriver:
    """The sweep's engine in a thread: `start()`, `stop()` (every run stops, keeping its turns), `wait()`."""

    def __init__(self, db_path: Path, sweep_id: str, *, max_cost: float | None = None,
                 parallel: int | None = None, stream_deltas: bool = True) -> None:
        from lhe_tui.store.database import open_database
        from lhe_tui.sweep.engine import SweepEngine
        from lhe_tui.sweep.plan import load_plan

        self.db_path = Path(db_path)
        self.sweep_id = sweep_id
        # Made here (the caller's thread) so bad input fails before the app starts; used from the engine's
        # thread only after start() (open_database's connection allows the hand-over).
        self.db = open_database(self.db_path)
        plan = load_plan(self.db, sweep_id)
        self.plan_probe = plan.probe is not None
        self.engine: SweepEngine = SweepEngine(plan, self.db, max_cost=max_cost, parallel=parallel,
                                               stream_deltas=stream_deltas)
        self.handles = {run.name: SweepRunHandle(self, run) for run in plan.runs}
        self.engine.on_prepared.append(lambda name, prepared: self.handles[name].attach(prepared))
        self.statuses: dict[str, str] = {}
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._main, name=f"lhe-tui sweep {sweep_id}", daemon=True)
        self._done = threading.Event()

    @property
    def finished(self) -> bool:
        return self._done.is_set()

    def start(self) -> None:
        self._thread.start()

    def _main(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            self.statuses = loop.run_until_complete(self.engine.run())
        except BaseException as exc:  # noqa: BLE001 - said by the board, not lost in a thread
            self.error = exc
        finally:
            for name, handle in self.handles.items():
                handle.ended(self.statuses.get(name) or self.engine.progress[name].status)
            loop.close()
            self._loop = None
            self._done.set()

    def call(self, fn: Callable[[], Any]) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(fn)
            except RuntimeError:   # closed in between: the run is over anyway
                pass

    def stop(self) -> None:
        self.call(self.engine.stop)

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

