"""Pilot tests of the sessions screen, the new-run form, help, themes and the launch entry point."""

from __future__ import annotations

import argparse

import pytest
from textual.widgets import DataTable, Input, Static

from lhe_tui.cli.main import main as cli_main
from lhe_tui.reports.session_list import SESSION_COLUMNS, session_cells
from lhe_tui.common.errors import LheError
from lhe_tui.core.config import RunConfig
from lhe_tui.store.database import open_database
from lhe_tui.store.queries import list_sessions
from lhe_tui.ui.app import LheApp
from lhe_tui.ui.launch import launch_tui
from lhe_tui.ui.screens.help import HelpScreen
from lhe_tui.ui.screens.new_run import NewRunScreen
from lhe_tui.ui.screens.run import RunScreen
from lhe_tui.ui.screens.sessions import SessionsScreen
from lhe_tui.ui.themes import DEFAULT_THEME

SIZE = (120, 40)


def plain(cell) -> str:
    return getattr(cell, "plain", str(cell))


async def test_sessions_screen_lists_the_cli_columns_and_enter_replays(db_path, stored_session):
    app = LheApp(db_path, replay_autoplay=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SessionsScreen)
        table = screen.query_one(DataTable)
        assert [str(c.label) for c in table.ordered_columns] == [*SESSION_COLUMNS, "cost"]   # the cost last
        row = list_sessions(open_database(db_path))[0]
        assert [plain(c) for c in table.get_row_at(0)] == [*session_cells(row), "-"]   # sim: no price
        assert stored_session in str(screen.query_one("#session-detail", Static).content)
        await pilot.press("enter")
        await app.workers.wait_for_complete()           # sessions load in a thread
        await pilot.pause()
        run = app.screen
        assert isinstance(run, RunScreen) and run.player is not None
        assert run.player.replay.session_id == stored_session and len(run.player.replay) == 180
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, SessionsScreen)


async def test_new_run_form_validates_then_starts_a_live_run(db_path):
    app = LheApp(db_path, new_run_defaults=RunConfig(samples=2, turns=20, sim_delay=0.0))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, NewRunScreen)
        assert form.query_one("#turns", Input).value == "20"
        form.query_one("#turns", Input).value = "0"
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is form
        assert "turns must be within 1.." in str(form.query_one("#error", Static).content)
        form.query_one("#turns", Input).value = "25"
        form.query_one("#induced_error_rate", Input).value = "0.5"
        form.query_one("#window", Input).value = "5"
        form.query_one("#inject_at", Input).value = "10:5, x"
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is form
        assert "inject at: expects TURN or TURN:OFFSET, got 'x'" in str(form.query_one("#error", Static).content)
        form.query_one("#inject_at", Input).value = "10:5, 20"
        await pilot.press("enter")
        await app.workers.wait_for_complete()           # sessions load in a thread
        await pilot.pause()
        run = app.screen
        assert isinstance(run, RunScreen) and run.live is not None
        config = run.live.config
        assert (config.turns, config.samples, config.induced_error_rate, config.window) == (25, 2, 0.5, 5)
        assert [(i.turn, i.offset) for i in config.inject_at] == [(10, 5), (20, None)]
        await app.workers.wait_for_complete()
        await pilot.pause(0.25)
        assert run.table.row_count == 25
        await pilot.press("n")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is run


async def test_a_second_run_is_refused_while_one_is_going(db_path):
    app = LheApp(db_path, new_run_defaults=RunConfig(samples=1, turns=400, sim_delay=0.005))
    async with app.run_test(size=SIZE) as pilot:
        app.start_run(RunConfig(samples=1, turns=400, sim_delay=0.005))
        await pilot.pause()
        first = app.screen
        app.start_run(RunConfig(samples=1, turns=10, sim_delay=0.0))
        await pilot.pause()
        assert app.screen is first and len(app.live_runs()) == 1
        assert any("already going" in n.message for n in app._notifications)
        first.action_stop()
        await app.workers.wait_for_complete()


async def test_help_opens_and_closes(db_path, stored_session):
    app = LheApp(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, SessionsScreen)


async def test_themes_from_files_load_and_switch_through_the_palette(db_path):
    app = LheApp(db_path, theme="lhe-light")
    async with app.run_test(size=SIZE) as pilot:
        assert app.theme == "lhe-light"
        assert {"lhe-dark", "lhe-light", "lhe-high-contrast"} <= set(app.available_themes)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"theme")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.3)
        await pilot.press(*"lhe-high")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert app.theme == "lhe-high-contrast"


async def test_unknown_theme_falls_back_with_a_notice(db_path):
    app = LheApp(db_path, theme="no-such-theme")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.theme == DEFAULT_THEME
        assert any("no-such-theme" in n.message for n in app._notifications)


def test_launch_rejects_a_bad_session_before_the_app_starts(db_path, stored_session, monkeypatch):
    args = argparse.Namespace(db=db_path, theme=None)
    with pytest.raises(LheError, match="no session"):
        launch_tui(args, replay_id="nope")
    monkeypatch.setattr(LheApp, "run", lambda *a, **kw: pytest.fail("the app started"))
    assert cli_main(["replay", "nope", "--db", str(db_path)]) == 2


def test_launch_rejects_a_bad_run_config_before_the_app_starts(db_path):
    args = argparse.Namespace(db=db_path, theme=None)
    with pytest.raises(LheError, match="--model is required"):
        launch_tui(args, config=RunConfig(provider="anthropic"))
