"""Issue 23 §1 in the TUI: the reply pane follows the table's cursor, `f` returns it to the newest turn, `e`
seeks the replay back to the first error, and `r` shows what the model was sent at the cursor's turn."""

from __future__ import annotations

import pytest
from textual.widgets import Static

from lhe_tui.core.config import Injection, RunConfig

from lhe_tui.store.database import open_database
from lhe_tui.store.queries import load_turns
from lhe_tui.store.replay import SessionReplay
from lhe_tui.ui.app import LheApp
from lhe_tui.ui.screens.request import RequestScreen

from .conftest import run_headless
from .test_run_view import SIZE, wait_until


async def played_to_the_end(app, pilot, replay):
    """The replay's run screen once space has played it to its end at full speed."""
    screen = app.screen
    screen.player.speed = float("inf")
    await pilot.press("space")
    await wait_until(pilot, lambda: replay.at_end)
    screen.flush()
    await pilot.pause()
    return screen


def pane(screen) -> str:
    return screen.reply.render_stream(screen._reply_stream(screen.model.sample(screen.model.watched))).plain


async def test_the_reply_pane_shows_the_turn_under_the_cursor(db_path, stored_session):
    records = {r.turn: r for r in load_turns(open_database(db_path), stored_session, 0)}
    replay = SessionReplay(open_database(db_path), stored_session)
    app = LheApp(db_path, replay=replay, replay_autoplay=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await played_to_the_end(app, pilot, replay)
        assert "s0 · turn 60" in pane(screen)
        await pilot.press("e")             # the replay is past the first error: back to it
        await pilot.pause()
        first = screen.model.samples[0].first_error
        assert first == 11 and screen.model.samples[0].last_turn == 11
        assert "REPLAY paused ‖" in str(screen.status_bar.content)     # not "running ‖"
        await pilot.press("up", "up")      # the cursor on turn 9: its reply, not the newest turn's
        await pilot.pause(0.3)
        assert screen.table.cursor_turn() == 9 and not screen.table.following
        text = str(screen.reply.content) if hasattr(screen.reply, "content") else ""
        shown = pane(screen)
        assert "s0 · turn 9 ·" in shown and records[9].raw_reply.strip() in shown
        assert "s0 · turn 9 ·" in text         # what the pane itself renders
        await pilot.press("f")
        await pilot.pause(0.3)
        assert "s0 · turn 11 ·" in pane(screen)


@pytest.fixture
def injected_session(db_path) -> str:
    return run_headless(db_path, RunConfig(samples=1, turns=12, seed=2, sim_delay=0.0,
                                           inject_at=(Injection(turn=4, offset=9),)))


async def test_r_shows_the_request_with_the_injected_value(db_path, injected_session):
    sid = injected_session
    turn4 = next(r for r in load_turns(open_database(db_path), sid, 0) if r.turn == 4)
    replay = SessionReplay(open_database(db_path), sid)
    app = LheApp(db_path, replay=replay, replay_autoplay=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await played_to_the_end(app, pilot, replay)
        screen.table.go_to_turn(8)
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, RequestScreen))
        body = app.screen.query_one("#request-body", Static)
        await wait_until(pilot, lambda: "rebuilding" not in str(body.content))
        text = str(body.content)
        assert "turn 8" in text and f"<answer>{turn4.history_answer}</answer>" in text
        assert f"[injected: model said {turn4.model_answer}]" in text
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, RequestScreen)
