"""The run view's footer: its keys are in the screen's first frame, it shows the main keys only, and every
key it leaves out works and is listed in the help screen (`?`)."""

from __future__ import annotations

import re

from textual.widgets import Footer
from textual.widgets._footer import FooterKey

from lhe_tui.core.config import RunConfig
from lhe_tui.store.database import open_database
from lhe_tui.store.replay import SessionReplay
from lhe_tui.ui.app import LheApp
from lhe_tui.ui.screens.help import HELP
from lhe_tui.ui.screens.new_run import NewRunScreen
from lhe_tui.ui.screens.run import RunScreen
from lhe_tui.ui.screens.sessions import SessionsScreen

from .conftest import ERRING
from .test_run_view import wait_until


def help_keys() -> set[str]:
    """Every key the help screen's tables list (`a` `b` in the first column)."""
    keys: set[str] = set()
    for line in HELP.splitlines():
        if line.startswith("| `"):
            keys.update(re.findall(r"`([^`]+)`", line.split("|")[1]))
    return keys


def test_every_key_of_the_run_view_and_the_app_is_in_the_help():
    listed = help_keys()
    for binding in [*RunScreen.BINDINGS, *LheApp.BINDINGS]:
        shown = binding.key_display or binding.key.split(",")[0]
        assert shown in listed, f"{binding.action} ({shown}) is not in the help screen"


def footer_keys(screen) -> list[str]:
    return [key.key for key in screen.query_one(Footer).query(FooterKey)]


async def test_the_replay_footer_is_in_the_first_frame_with_the_main_keys_only(db_path, stored_session,
                                                                               monkeypatch):
    db = open_database(db_path, create=False)
    app = LheApp(db_path, replay=SessionReplay(db, stored_session), replay_autoplay=False)
    at_mount: list[list[str]] = []
    on_mount = RunScreen.on_mount

    def record(screen) -> None:   # the run screen's children are composed, nothing refreshed yet
        at_mount.append(footer_keys(screen))
        on_mount(screen)

    monkeypatch.setattr(RunScreen, "on_mount", record)
    async with app.run_test(size=(160, 48)) as pilot:
        while not isinstance(app.screen, RunScreen):
            await pilot.pause(0.01)
        screen = app.screen
        assert at_mount and "space" in at_mount[0], "the footer had no keys when the run screen mounted"
        await pilot.pause(0.2)
        keys = footer_keys(screen)
        for key in ("space", "e", "full_stop", "plus", "question_mark", "q"):
            assert key in keys, key
        for hidden in ("s", "n", "I", "v", "f", "home", "escape"):
            assert hidden not in keys, hidden
        # the hidden keys still work from the run view
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, NewRunScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, SessionsScreen)
    db.conn.close()


async def test_the_footer_follows_the_width_and_live_keys(db_path):
    from lhe_tui.ui.app import start_live_run

    # A run that cannot end while the footer is read (a 20-turn run at full speed could, under load),
    # stopped with `x` at the end.
    live = start_live_run(RunConfig(samples=1, turns=100_000, seed=1, **{**ERRING, "sim_delay": 0.001}), db_path)
    app = LheApp(db_path, live=live)
    async with app.run_test(size=(100, 30)) as pilot:
        while not isinstance(app.screen, RunScreen):
            await pilot.pause(0.01)
        screen = app.screen
        await wait_until(pilot, lambda: screen.model.turns_done > 0)
        keys = footer_keys(screen)
        assert "i" in keys and "x" in keys and "I" not in keys and "full_stop" not in keys
        footer = screen.query_one(Footer)
        assert footer.compact and not screen.query(".-command-palette")
        await pilot.resize_terminal(160, 40)
        await wait_until(pilot, lambda: not footer.compact)
        assert screen.query(".-command-palette")
        assert screen.model.status == "running"
        await pilot.press("x")
        await app.workers.wait_for_complete()
