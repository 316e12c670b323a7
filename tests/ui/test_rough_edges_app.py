"""Issue 14, items 14 and 15 in the app: the quit message names the run a quit stopped with its stored status;
a bare `lhe-tui` opens on the sessions (the demo run only for an empty store); the sessions screen names
the store."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from textual.widgets import Static

from lhe_tui.cli.args import build_parser
from lhe_tui.runner.config import RunConfig
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
        assert str(db_path.resolve()) in title or str(db_path.resolve()).replace(str(Path.home()), "~") in title
