"""Issue 22, section 2 in the TUI: one session whose stored config is not valid JSON (NaN, as an older lhe-tui
wrote it, or cut short) is listed as unreadable, the rest as usual; opening it says so and the app goes on."""

from __future__ import annotations

import sqlite3

import pytest

from textual.widgets import DataTable

from lhe_tui.ui.app import LheApp
from lhe_tui.ui.screens.sessions import STATUS_COLUMN, SessionsScreen

from tests.store_faults import stored_run


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "lhe.db"
    ids = [stored_run(path, samples=2, turns=5, seed=seed) for seed in range(3)]
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE sessions SET config_json = substr(config_json, 1, 30) WHERE id = ?", [ids[1]])
        conn.execute("UPDATE sessions SET config_json = '{\"temperature\": NaN}' WHERE id = ?", [ids[2]])
    return path, ids


async def test_the_sessions_list_shows_an_unreadable_session_and_lists_the_rest(store):
    path, (good, cut, nan) = store
    app = LheApp(path)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SessionsScreen)
        table = screen.query_one(DataTable)
        assert table.row_count == 3
        status = {sid: str(table.get_row(sid)[STATUS_COLUMN]) for sid in (good, cut, nan)}
        assert status == {good: "finished", cut: "unreadable", nan: "unreadable"}
        table.move_cursor(row=table.get_row_index(cut))
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.is_running
        assert isinstance(app.screen, SessionsScreen)
