"""The store's writer thread: batches off the event loop, yet a finished turn is committed before the
sample's next request and a run is all stored when run() returns."""

import asyncio
import sqlite3

import pytest

from lhe_tui.errors import StoreError
from lhe_tui.providers.base import Reply
from lhe_tui.runner.config import RunConfig
from lhe_tui.runner.events import RunStarted
from lhe_tui.session import prepare_run
from lhe_tui.store.background import BackgroundWriter
from lhe_tui.store.database import open_database

from tests.helpers import EchoHistoryProvider


class CheckingProvider(EchoHistoryProvider):
    """Before answering turn t of a sample, looks (through its own connection) for turn t-1 in the store."""

    def __init__(self, path):
        super().__init__()
        self.path = path
        self.missing: list[tuple[int, int]] = []
        self.checked = 0

    async def complete(self, messages, meta, on_delta=None) -> Reply:
        if meta.turn > 1:
            conn = sqlite3.connect(self.path)
            found = conn.execute("SELECT 1 FROM turns WHERE sample = ? AND turn = ?",
                                 (meta.sample_index, meta.turn - 1)).fetchone()
            conn.close()
            self.checked += 1
            if not found:
                self.missing.append((meta.sample_index, meta.turn - 1))
        await asyncio.sleep(0)  # let other samples' turns finish meanwhile, so commits come in batches
        return await super().complete(messages, meta, on_delta)


def test_each_turn_is_committed_before_the_samples_next_request_and_commits_are_batched(tmp_path):
    path = tmp_path / "s.db"
    db = open_database(path)
    provider = CheckingProvider(path)
    prepared = prepare_run(RunConfig(samples=8, turns=15, seed=3), db, provider=provider)
    writer = next(barrier.__self__ for barrier in prepared.bus.barriers)
    assert isinstance(writer, BackgroundWriter)
    assert asyncio.run(prepared.runner.run()) == "finished"
    assert provider.checked == 8 * 14 and provider.missing == []
    # everything is stored when run() returns: the session's end and summary included
    assert db.execute("SELECT COUNT(*) FROM turns").fetchone()[0] == 8 * 15
    assert db.execute("SELECT status FROM sessions").fetchone()[0] == "finished"
    assert writer.batches < 8 * 15  # several samples' turns shared a commit


async def test_settled_is_free_when_nothing_is_pending_and_waits_otherwise(tmp_path):
    writer = BackgroundWriter(tmp_path / "s.db", "s")
    assert writer.settled() is None
    writer(RunStarted(session_id="s", config={"provider": "sim"}, dictionary={"a": 1}, sample_keys=(("a",),),
                      provider_label="sim", simulated=True))
    pending = writer.settled()
    if pending is not None:  # the thread may already have committed it
        await pending
    assert writer.settled() is None
    assert open_database(tmp_path / "s.db").execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 1
    writer.close()


async def test_a_store_that_cannot_be_written_fails_the_wait_with_a_clear_error(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the store's folder should be")
    writer = BackgroundWriter(blocker / "s.db", "s")
    writer(RunStarted(session_id="s", config={}, dictionary={}, sample_keys=(), provider_label="sim",
                      simulated=True))
    with pytest.raises(StoreError, match="could not be written"):
        pending = writer.settled()
        while pending is None:  # the failure may land before or after we look
            await asyncio.sleep(0.01)
            pending = writer.settled()
        await pending
    with pytest.raises(StoreError):
        writer.flush()


def test_events_after_a_runs_end_start_the_thread_again(tmp_path):
    """An injection after RunFinished (the thread stops there) is still stored."""
    path = tmp_path / "s.db"
    db = open_database(path)
    prepared = prepare_run(RunConfig(samples=2, turns=3, seed=1), db, provider=EchoHistoryProvider())
    asyncio.run(prepared.runner.run())
    writer = next(barrier.__self__ for barrier in prepared.bus.barriers)
    prepared.runner.inject(0, offset=4)
    writer.flush()
    assert db.execute("SELECT injected FROM turns WHERE sample = 0 AND turn = 3").fetchone()[0] == 1
    writer.close()
