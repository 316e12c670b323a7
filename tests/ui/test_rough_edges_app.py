"""Issue 14, items 14 and 15 in the app: the quit message names the run a quit stopped with its stored status;
a bare `lhe-tui` opens on the sessions (the demo run only for an empty store); the sessions screen names
the store."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from textual.widgets import Static

from lhe_tui.cli.args import build_parser
from lhe_tui.core.config import RunConfig
from lhe_tui.store.database import open_database
from lhe_tui.ui import launch
from lhe_tui.ui.app import LheApp, start_live_run
from lhe_tui.ui.launch import quit_message, store_has_sessions
from lhe_tui.ui.screens.run import RunScreen
from lhe_tui.ui.screens.sessions import SessionsScreen

from .conftest import ERRING, run_headless

SIZE = (120, 40)


async def wait_until(pilot, predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.05)


async def test_quit_message_names_the_run_a_quit_stopped_with_its_stored_status(db_path):
    first = start_live_run(RunConfig(samples=1, turns=5, seed=1, **ERRING), db_path)
    app = LheApp(db_path, live=first, new_run_defaults=RunConfig(samples=2, turns=5000, sim_delay=0.01))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: first.finished)
        app.start_run(RunConfig(samples=2, turns=5000, sim_delay=0.01))
        await pilot.pause()
        second = app.screen.live
        assert isinstance(app.screen, RunScreen) and second is not first
        await wait_until(pilot, lambda: app.screen.model.turns_done > 0)
        await pilot.press("q")
    message = quit_message(app.runs, db_path)
    assert message is not None
    assert second.session_id in message and first.session_id not in message
    assert " interrupted;" in message and f"lhe-tui replay {second.session_id}" in message
    db = open_database(db_path)
    assert db.execute("SELECT status FROM sessions WHERE id = ?", [second.session_id]).fetchone()[0] == "interrupted"


def test_quit_message_reads_the_status_from_the_store(db_path):
    session_id = run_headless(db_path, RunConfig(samples=1, turns=3, sim_delay=0.0))

    class Done:     # a run the app showed that has ended; the store knows better than its last event
        finished, starting, kind, status = True, False, "run", "running"

        def __init__(self, sid):
            self.session_id = sid

    message = quit_message([Done(session_id)], db_path)
    assert f"session {session_id} finished;" in message
    assert quit_message([], db_path) is None            # opened on the sessions, ran nothing: says nothing


def test_bare_lhe_tui_opens_the_sessions_when_the_store_has_some(db_path, monkeypatch):
    started: list[RunConfig] = []
    apps: list[LheApp] = []

    def fake_start(config, path, **_kw):
        started.append(config)
        return None   # LheApp(live=None) then opens on the sessions; only the decision is tested here

    class FakeApp:
        runs: list = []
        return_code = 0

        def __init__(self, path, *, live=None, **kw):
            self.live = live
            apps.append(self)

        def run(self):
            pass

    monkeypatch.setattr("lhe_tui.ui.app.start_live_run", fake_start)
    monkeypatch.setattr("lhe_tui.ui.app.LheApp", FakeApp)
    args = argparse.Namespace(db=db_path, theme=None)
    assert not store_has_sessions(db_path)
    launch.launch_tui(args)                              # empty store: the demo run
    assert started == [launch.DEMO_CONFIG]
    assert not db_path.exists()                          # (the fake made no store)
    run_headless(db_path, RunConfig(samples=1, turns=2, sim_delay=0.0))
    assert store_has_sessions(db_path)
    launch.launch_tui(args)                              # sessions stored: no new run
    assert len(started) == 1
    launch.launch_tui(args, demo=True)                   # `lhe-tui demo`: the demo run anyway
    assert started[-1] == launch.DEMO_CONFIG and len(started) == 2


def test_demo_command_parses(tmp_path, monkeypatch):
    monkeypatch.setenv("LHE_TUI_DB", str(tmp_path / "env.db"))
    args = build_parser().parse_args(["demo"])
    assert args.command == "demo" and args.db == Path(tmp_path / "env.db")
    args = build_parser().parse_args(["demo", "--db", "x.db"])
    assert args.db == Path("x.db")


async def test_sessions_screen_names_the_store(db_path, stored_session):
    app = LheApp(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, SessionsScreen)
        title = str(app.screen.query_one("#sessions-title", Static).content)
        assert title.startswith("1 session stored in ")          # one session: not "1 sessions"
        assert str(db_path.resolve()) in title or str(db_path.resolve()).replace(str(Path.home()), "~") in title


# ---- 19: small terminals -----------------------------------------------------------------------------------
async def test_sessions_table_shows_the_important_columns_at_80x24(db_path, stored_session):
    from textual.widgets import DataTable

    app = LheApp(db_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        visible = table.size.width
        x = 0
        shown = []
        for column in table.ordered_columns:
            x += column.get_render_width(table)
            if x <= visible:
                shown.append(str(column.label))
        for name in ("id", "status", "task acc", "H_0.5"):
            assert name in shown, shown


async def test_new_run_form_scrolls_and_says_so_on_a_small_terminal(db_path):
    from textual.widgets import Button

    from lhe_tui.ui.screens.new_run import NewRunScreen

    app = LheApp(db_path, new_run_defaults=RunConfig(samples=2, turns=20, sim_delay=0.0))
    async with app.run_test(size=(60, 15)) as pilot:
        await pilot.press("n")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, NewRunScreen)
        notice = form.query_one("#too-small", Static)
        assert notice.display and notice.region.height > 0 and "scrolls" in str(notice.content)
        box = form.query_one("#form")
        assert box.max_scroll_y > 0
        start = form.query_one("#start", Button)
        start.focus()
        for _ in range(40):   # the scroll to the focused button is animated: under load it takes a while
            if box.region.contains_region(start.region):
                break
            await pilot.pause(0.05)
        assert box.region.contains_region(start.region)      # scrolled to, not cut off
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        assert not form.has_class("-small") and notice.region.height == 0
