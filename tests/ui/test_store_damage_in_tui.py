"""Issue 14, store item 1 in the TUI: a damaged store is said in place; the app goes on."""

from __future__ import annotations

import pytest
from textual.widgets import Static

from lhe_tui.ui.app import LheApp
from lhe_tui.ui.screens.run import RunScreen
from lhe_tui.ui.screens.sessions import SessionsScreen

from tests.store_faults import corrupt_middle_page, stored_run

SIZE = (120, 40)


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "lhe.db"
    return path, stored_run(path, samples=4, turns=300)


async def test_sessions_screen_says_the_store_is_damaged(store):
    path, _ = store
    corrupt_middle_page(path)
    app = LheApp(path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, SessionsScreen)
        text = str(app.screen.query_one("#sessions-empty", Static).render())
        assert "is damaged" in text and "lhe-tui doctor" in text
        await pilot.press("r", "enter", "R")      # refresh, open, resume: said again, nothing crashes
        await pilot.pause()
        assert app.is_running


async def test_a_replay_whose_pages_go_bad_stops_and_says_so(store):
    path, sid = store
    app = LheApp(path, replay_autoplay=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.open_replay(sid)
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RunScreen)
        corrupt_middle_page(path)       # under the open replay: its later pages cannot be read
        # This small store is all in the connection's page cache (the metrics read every turn at opening);
        # a store larger than the cache reads its pages as it plays: drop the cached ones as such a store has.
        screen.player.replay.db.conn.execute("PRAGMA shrink_memory")
        screen.player.set_speed(1e6)      # play it through: the reads reach the bad page
        await pilot.press("space")
        for _ in range(100):
            await pilot.pause(0.05)
            if "replay stopped" in (screen.sub_title or ""):
                break
        assert "is damaged" in screen.sub_title and "lhe-tui doctor" in screen.sub_title
        assert app.is_running
