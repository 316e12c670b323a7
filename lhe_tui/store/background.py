"""The store's writer on its own thread: events are committed in batches, off the runner's event loop.

`SessionWriter` inserts and commits on the loop that runs the samples. At 64 samples x 50 ms that is
1,280 commits a second, each a write to the WAL (and now and then a checkpoint's fsync, up to ~40 ms),
and everything else on the loop waits meanwhile. Here the loop only puts the event on a queue; a
thread with its own connection writes each batch that has gathered in one transaction (sqlite3 lets
the GIL go while SQLite works). The promise stays: the runner awaits `settled()` (an EventBus barrier)
before a sample's next request, so a finished turn is on disk before the next one is asked for, and
before a run returns.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from lhe_tui.errors import StoreError
from lhe_tui.runner.events import Event, RunFinished, TokenDelta, TurnStarted
from lhe_tui.store.writer import SessionWriter

if TYPE_CHECKING:
    from sqlite_utils import Database

_NOT_STORED = (TokenDelta, TurnStarted)  # SessionWriter has no handler for these
_STOP = object()


def database_path(db: Database) -> Path | None:
    """The file behind a store's connection (None for an in-memory one)."""
    row = db.conn.execute("PRAGMA database_list").fetchone()
    return Path(row[2]) if row and row[2] else None


class BackgroundWriter:
    """Subscribe it to the bus and add `settled` as a barrier (see `attach`)."""

    def __init__(self, path: Path, session_id: str, **writer_options: object) -> None:
        self.path = path
        self.session_id = session_id
        self.writer_options = writer_options
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._progress = threading.Condition(self._lock)  # notified at each commit and on failure
        self._enqueued = 0       # events put on the queue (the loop's thread)
        self._committed = 0      # events committed (the writer's thread)
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._running = False    # a thread is taking events (changed under the lock only)
        self.batches = 0         # transactions committed (tests, benchmarks)

    def attach(self, bus) -> None:  # noqa: ANN001 - EventBus
        bus.subscribe(self)
        bus.add_barrier(self.settled)

    def __call__(self, event: Event) -> None:
        if isinstance(event, _NOT_STORED) or self._error is not None:
            return
        with self._lock:
            self._enqueued += 1
            self._queue.put(event)
            if not self._running:  # the first event, or one after a run's end: (re)start the thread
                self._running = True
                self._thread = threading.Thread(target=self._run, name=f"store-writer-{self.session_id}",
                                                daemon=True)
                self._thread.start()

    def settled(self) -> asyncio.Future[None] | None:
        """None when every event so far is committed; else a future that is done when they are."""
        if self._error is not None:
            raise self._failure()
        target = self._enqueued
        if self._committed >= target:
            return None
        future = asyncio.get_running_loop().create_future()
        with self._lock:
            if self._committed >= target:
                return None
            self._waiters.append((target, future))
        return future

    def flush(self, timeout: float = 30.0) -> None:
        """Block until every event so far is committed (for callers that cannot await `settled`)."""
        target = self._enqueued
        with self._progress:
            if not self._progress.wait_for(lambda: self._committed >= target or self._error is not None, timeout):
                raise StoreError(f"the session store did not commit within {timeout:.0f} s")
        if self._error is not None:
            raise self._failure()

    def close(self, timeout: float | None = None) -> None:
        """Stop the thread once what is queued is written (it also stops after a run's RunFinished)."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)

    def _failure(self) -> StoreError:
        return StoreError(f"the session store could not be written ({self._error})")

    def _run(self) -> None:
        from lhe_tui.store.database import open_database

        db = None
        try:
            db = open_database(self.path)
            writer = SessionWriter(db, self.session_id, **self.writer_options)  # type: ignore[arg-type]
            writer.batched = True
            while True:
                batch = [self._queue.get()]
                while True:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                stop = any(event is _STOP for event in batch)
                events = [event for event in batch if event is not _STOP]
                if events:
                    with db.conn:
                        for event in events:
                            writer(event)
                    self.batches += 1
                    self._committed_up_to(self._committed + len(events))
                if stop or any(isinstance(event, RunFinished) for event in events):
                    with self._lock:  # a run's end: stop unless more came meanwhile (they restart it)
                        if stop or self._queue.empty():
                            self._running = False
                            return
        except BaseException as exc:  # noqa: BLE001 - handed to the runner through settled()
            self._error = exc
            self._running = False
            self._wake_all_with_error()
        finally:
            if db is not None:
                db.conn.close()

    def _committed_up_to(self, count: int) -> None:
        with self._lock:
            self._committed = count
            ready = [future for target, future in self._waiters if target <= count]
            self._waiters = [(target, future) for target, future in self._waiters if target > count]
            self._progress.notify_all()
        for future in ready:
            _resolve(future, None)

    def _wake_all_with_error(self) -> None:
        with self._lock:
            waiters, self._waiters = self._waiters, []
            self._progress.notify_all()
        for _, future in waiters:
            _resolve(future, self._failure())


def _resolve(future: asyncio.Future[None], error: BaseException | None) -> None:
    def settle() -> None:
        if not future.done():
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

    try:
        future.get_loop().call_soon_threadsafe(settle)
    except RuntimeError:  # that loop is closed: nobody waits any more
        pass


def attach_writer(bus, db: Database, session_id: str, **writer_options: object) -> None:  # noqa: ANN001
    """The store's subscriber for a run: a BackgroundWriter for a store on disk, else a SessionWriter."""
    path = database_path(db)
    if path is None:
        bus.subscribe(SessionWriter(db, session_id, **writer_options))  # type: ignore[arg-type]
    else:
        BackgroundWriter(path, session_id, **writer_options).attach(bus)
