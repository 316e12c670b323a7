"""Issue 22 §6-7 in the TUI: a read-only store (a real read-only mount) is read as the CLI reads it, and a
rate limit that holds the run (--tpm 1, a real run process) is said in the status bar."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable

from lhe_tui.core.config import RunConfig
from lhe_tui.ui.app import LheApp, start_live_run
from lhe_tui.ui.launch import store_has_sessions
from lhe_tui.ui.screens.run import RunScreen
from lhe_tui.ui.screens.sessions import SessionsScreen

from tests.store_faults import read_only_view, stored_run

from .test_run_view import wait_until

SIZE = (120, 40)


@pytest.fixture
def stored(tmp_path):
    return stored_run(tmp_path / "src" / "lhe.db", samples=2, turns=30)


async def test_a_read_only_store_lists_and_replays_in_the_tui(tmp_path, stored):
    src, sid = tmp_path / "src", stored
    with read_only_view(src, tmp_path / "ro") as ro:
        db = ro / "lhe.db"
        assert store_has_sessions(db)            # `lhe-tui --db RO.db` opens on its sessions, not a refusal
        app = LheApp(db, replay_autoplay=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: isinstance(app.screen, SessionsScreen) and
                             app.screen.query_one(DataTable).row_count == 1)
            assert app.store_problem is None
            app.open_replay(sid)                 # `lhe-tui replay ID --db RO.db` loads it the same way
            await app.workers.wait_for_complete()
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, RunScreen) and len(screen.player.replay) == 60
            if screen.player.playing:            # a replay opened from the list plays: hold it still first
                await pilot.press("space")
                await wait_until(pilot, lambda: not screen.player.playing)
            screen.flush()
            watched = screen.model.sample(screen.model.watched)
            before = watched.last_turn if watched is not None else 0
            await pilot.press("full_stop", "full_stop")
            await pilot.pause()
            # read from a read-only store, two turns of the watched sample further
            assert screen.model.sample(screen.model.watched).last_turn == before + 2


async def test_a_rate_limit_holding_the_run_is_said_in_the_status_bar(db_path):
    live = start_live_run(RunConfig(samples=1, turns=2, tpm=1, sim_delay=0.0), db_path)
    app = LheApp(db_path, live=live)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await wait_until(pilot, lambda: "held by the rate limiter (--tpm)" in str(screen.status_bar.content),
                         timeout=40)
        assert screen.model.turns_done == 1
