"""Snapshots (pytest-textual-snapshot) of the main screens, from a seeded, finished sim session whose
times and dates are fixed in the store, so nothing on screen depends on the clock.

Update after a deliberate change with `pytest tests/ui/test_snapshots.py --snapshot-update` and look
at the SVGs in tests/ui/__snapshots__/.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from textual.widgets import Input

from lhe_tui.core.config import RunConfig
from lhe_tui.store.database import open_database
from lhe_tui.store.replay import SessionReplay
from lhe_tui.ui.app import LheApp

from .conftest import ERRING, freeze_session, run_headless

pytestmark = pytest.mark.usefixtures("plots_in_render")

SNAPSHOT_ID = "20260101-120000-snap"
SIZE = (100, 30)


@pytest.fixture
def frozen(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)        # the sessions screen shows the store's path as given: "ui.db"
    path = Path("ui.db")
    run_headless(path, RunConfig(samples=3, turns=40, seed=4, mode="thinking", **ERRING), session_id=SNAPSHOT_ID)
    freeze_session(path, SNAPSHOT_ID)
    return path


def replay_app(path: Path, **kwargs) -> LheApp:
    return LheApp(path, replay=SessionReplay(open_database(path), SNAPSHOT_ID), **kwargs)


async def settle(pilot) -> None:
    await pilot.pause(0.7)            # one metrics tick (2 Hz) after the last event
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def press_then_settle(pilot, *keys: str) -> None:
    """Keys, then the flush that shows their effect: snap_compare's own `press` snapshots right after the
    keys, before the next 10 Hz flush has drawn them (the chart then read "no turns yet" under load)."""
    await settle(pilot)
    await pilot.press(*keys)
    await pilot.pause(0.3)            # three flushes
    await settle(pilot)


def test_run_view_after_an_instant_replay(frozen, snap_compare):
    app = replay_app(frozen, replay_speed=math.inf)
    assert snap_compare(app, terminal_size=SIZE, run_before=settle)


def test_run_view_charts_on_a_narrow_terminal(frozen, snap_compare):
    app = replay_app(frozen, replay_speed=math.inf)
    assert snap_compare(app, terminal_size=SIZE, run_before=lambda pilot: press_then_settle(pilot, "g"))


def test_run_view_wide_at_the_first_error(frozen, snap_compare):
    app = replay_app(frozen, replay_autoplay=False)
    assert snap_compare(app, terminal_size=(140, 40), run_before=lambda pilot: press_then_settle(pilot, "e"))


def test_sessions_screen(frozen, snap_compare):
    assert snap_compare(LheApp(frozen), terminal_size=SIZE, run_before=settle)


def test_sessions_screen_light_theme(frozen, snap_compare):
    assert snap_compare(LheApp(frozen, theme="lhe-light"), terminal_size=SIZE, run_before=settle)


def test_new_run_form(frozen, snap_compare):
    async def open_form(pilot) -> None:
        from lhe_tui.ui.screens.new_run import ESTIMATE_DELAY

        await pilot.press("n")
        await pilot.pause(ESTIMATE_DELAY + 0.1)      # the live forecast, computed a moment after the form opens
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False

    assert snap_compare(LheApp(frozen), terminal_size=SIZE, run_before=open_form)


def test_help_screen(frozen, snap_compare):
    assert snap_compare(LheApp(frozen), terminal_size=SIZE, press=["question_mark"])
