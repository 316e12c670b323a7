"""Issue 15 in the TUI: `F` on a turn forks the session there (a dialog), the fork runs live in place of the
view; a fork's inherited turns are dimmed, both charts mark its fork point, the status bar says its lineage,
and the sessions screen lists it under its parent."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

from textual.widgets import DataTable, Input, Static

from lhe_tui.cli.main import main
from lhe_tui.core.config import RunConfig
from lhe_tui.core.lineage import ForkEdit, Lineage, short_id
from lhe_tui.store.database import open_database
from lhe_tui.store.queries import load_session, load_turns
from lhe_tui.store.replay import SessionReplay
from lhe_tui.ui.app import LheApp, start_live_run
from lhe_tui.ui.screens.fork import ForkScreen
from lhe_tui.ui.screens.run import RunScreen
from lhe_tui.ui.screens.sessions import SessionsScreen

from .conftest import ENDLESS, ERRING, run_headless
from .test_footer import footer_keys
from .test_run_view import SIZE, plain, wait_until


def session_ids(db_path: Path) -> list[str]:
    db = open_database(db_path, create=False)
    try:
        return [row[0] for row in db.execute("SELECT id FROM sessions ORDER BY rowid").fetchall()]
    finally:
        db.conn.close()


def notes(app) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def replay_to_the_end(db_path: Path, session_id: str, pilot) -> RunScreen:
    app = pilot.app
    await wait_until(pilot, lambda: isinstance(app.screen, RunScreen))
    screen = app.screen
    await wait_until(pilot, lambda: screen.player.replay.at_end and screen.model.status == "finished")
    screen.flush()
    await pilot.pause()
    return screen


def replay_app(db_path: Path, session_id: str) -> LheApp:
    return LheApp(db_path, replay=SessionReplay(open_database(db_path, create=False), session_id),
                  replay_speed=math.inf)


async def open_fork_dialog(pilot, screen: RunScreen, turn: int) -> ForkScreen:
    assert screen.table.go_to_turn(turn)
    await pilot.pause()
    await pilot.press("F")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, ForkScreen))
    return pilot.app.screen


def field(dialog: ForkScreen, selector: str) -> str:
    return dialog.query_one(selector, Input).value


def error_line(dialog: ForkScreen) -> str:
    return str(dialog.query_one("#fork-error", Static).content)


async def test_F_on_a_replayed_turn_forks_it_healed_and_the_fork_runs_live_in_place(db_path, stored_session):
    app = replay_app(db_path, stored_session)
    async with app.run_test(size=SIZE) as pilot:
        replay = await replay_to_the_end(db_path, stored_session, pilot)
        first_error = replay.model.samples[0].first_error
        assert first_error is not None
        await pilot.press("e")                                     # the cursor on s0's first error
        await pilot.pause()
        assert replay.table.cursor_turn() == first_error
        await pilot.press("F")
        await wait_until(pilot, lambda: isinstance(app.screen, ForkScreen))
        dialog = app.screen
        # prefilled: the cursor's turn, the watched sample, the parent's model
        assert field(dialog, "#fork-turn") == str(first_error)
        assert (field(dialog, "#fork-provider"), field(dialog, "#fork-model")) == ("sim", "sim-1")
        assert dialog.query_one("#samples-watched").value and "s0" in str(dialog.query_one("#samples-watched").label)
        assert dialog.edit == "none" and not dialog.query_one("#fork-model-note").display
        await pilot.press("a")                     # the one-key choices, as a user types them
        assert dialog.query_one("#samples-all").value
        await pilot.press("w")
        assert dialog.query_one("#samples-watched").value
        await pilot.press("h")
        await pilot.pause()
        assert dialog.edit == "heal"
        await pilot.press("enter")                 # heal leaves the focus on "Fork and run"
        await wait_until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.live is not None)
        live_screen = app.screen
        await wait_until(pilot, lambda: live_screen.live.finished, timeout=30)
        await pilot.pause(0.3)
        live_screen.flush()
        await pilot.pause()
        fork_id = live_screen.live.session_id
        # the fork's live view took the replay's place
        assert not [s for s in app.screen_stack if isinstance(s, RunScreen) and s.player is not None]
        assert live_screen.model.status == "finished"
        assert len(live_screen.model.samples) == 1 and len(live_screen.model.samples[0].records) == 60
        status = str(live_screen.status_bar.content)
        assert f"fork of {short_id(stored_session)} @{first_error}" in status and "LIVE" in status
        assert any(m.label == f"fork @{first_error}" for m in live_screen.sum_chart.figure.marks)
    db = open_database(db_path, create=False)
    session = load_session(db, fork_id)
    lineage = Lineage.from_row(session)
    assert (lineage.parent_id, lineage.fork_turn, lineage.parent_samples) == (stored_session, first_error, (0,))
    assert lineage.edit == ForkEdit("heal") and session["status"] == "finished"
    turns = load_turns(db, fork_id)
    assert len(turns) == 60 and sum(t.inherited for t in turns) == first_error
    at_fork = next(t for t in turns if t.turn == first_error)
    assert at_fork.history_answer == at_fork.gold_sum != at_fork.model_answer    # healed in the history
    assert session_ids(db_path) == [stored_session, fork_id]


async def test_a_bad_fork_is_one_line_in_the_dialog_and_stores_nothing(db_path, stored_session):
    db = open_database(db_path)
    with db.conn:   # s0 turn 5: a format miss (no answer in the history there)
        db.execute("UPDATE turns SET model_answer = NULL, history_answer = NULL, answer_status = 'format', "
                   "correct = 0 WHERE session_id = ? AND sample = 0 AND turn = 5", [stored_session])
    db.conn.close()
    app = replay_app(db_path, stored_session)
    async with app.run_test(size=SIZE) as pilot:
        replay = await replay_to_the_end(db_path, stored_session, pilot)
        dialog = await open_fork_dialog(pilot, replay, 5)
        assert field(dialog, "#fork-turn") == "5"
        dialog.set_edit("offset")
        await pilot.pause()
        assert not dialog.query_one("#fork-amount", Input).disabled
        dialog.query_one("#fork-amount", Input).value = "5"
        await pilot.click("#fork-go")
        await wait_until(pilot, lambda: error_line(dialog) != "")
        text = error_line(dialog)
        assert "turn 5 has no valid answer in its history" in text and "\n" not in text
        assert "Traceback" not in text and app.screen is dialog
        # not a number, a zero offset, a turn beyond the stored ones: one line each, still the dialog
        for turn, amount, reason in (("5", "x", "not a whole number"), ("5", "0", "offset of 0"),
                                     ("999", "3", "fork it at a turn within 1..60")):
            dialog.query_one("#fork-turn", Input).value = turn
            dialog.query_one("#fork-amount", Input).value = amount
            await pilot.pause(0.3)      # a Button ignores clicks during its press effect (0.2 s) after the last
            await pilot.click("#fork-go")
            await wait_until(pilot, lambda: reason in error_line(dialog), timeout=3)
            assert "\n" not in error_line(dialog) and app.screen is dialog
        dialog.query_one("#fork-turn", Input).value = "5"
        dialog.query_one("#fork-provider", Input).value = "nosuch"
        await pilot.pause()
        assert dialog.query_one("#fork-model-note").display        # another model: said so
        await pilot.pause(0.3)
        await pilot.click("#fork-go")
        await wait_until(pilot, lambda: "unknown provider 'nosuch'" in error_line(dialog))
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is replay
    assert session_ids(db_path) == [stored_session]


async def test_a_running_run_cannot_be_forked_and_an_ended_one_can(db_path):
    live = start_live_run(RunConfig(samples=1, turns=ENDLESS, seed=2, sim_delay=0.002), db_path)
    app = LheApp(db_path, live=live)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, RunScreen))
        screen = app.screen
        await wait_until(pilot, lambda: bool(screen.model.samples) and screen.model.samples[0].last_turn >= 3)
        assert "F" not in footer_keys(screen)                      # not offered while the run goes on
        await pilot.press("F")
        await pilot.pause()
        assert not isinstance(app.screen, ForkScreen)
        assert any("cannot be forked" in note and "x stops it" in note for note in notes(app))
        await pilot.press("x")
        await wait_until(pilot, lambda: live.finished and not screen.model.running)
        screen.flush()
        await pilot.pause()
        await wait_until(pilot, lambda: "F" in footer_keys(screen))  # offered once it has ended
        turn = screen.table.cursor_turn()
        await pilot.press("F")
        await wait_until(pilot, lambda: isinstance(app.screen, ForkScreen))
        dialog = app.screen
        assert field(dialog, "#fork-turn") == str(turn)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen and session_ids(db_path) == [live.session_id]
        await pilot.press("F")                                     # again, and fork it this time
        await wait_until(pilot, lambda: isinstance(app.screen, ForkScreen))
        await pilot.click("#fork-go")
        await wait_until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen is not screen)
        fork_screen = app.screen
        assert fork_screen.live is not None and screen not in app.screen_stack    # in place of the ended run
        await wait_until(pilot, lambda: bool(fork_screen.model.samples) and fork_screen.model.status == "running")
        await pilot.press("x")
        await wait_until(pilot, lambda: fork_screen.live.finished)
    ids = session_ids(db_path)
    assert ids[0] == live.session_id and len(ids) == 2
    lineage = Lineage.from_row(load_session(open_database(db_path, create=False), ids[1]))
    assert (lineage.parent_id, lineage.fork_turn, lineage.edit) == (live.session_id, turn, None)


async def fork_headless(db_path: Path, parent: str, *args: str) -> str:
    """`lhe-tui fork … --headless` (its own event loop: in a thread, the test's loop is running)."""
    code = await asyncio.to_thread(main, ["fork", parent, *args, "--headless", "--db", str(db_path)])
    assert code == 0
    return session_ids(db_path)[-1]


async def test_a_replayed_fork_dims_its_inherited_rows_and_marks_the_fork_point(db_path, stored_session):
    fork_id = await fork_headless(db_path, stored_session, "--turn", "30", "--sample", "1", "--offset", "4")
    app = replay_app(db_path, fork_id)
    async with app.run_test(size=SIZE) as pilot:
        screen = await replay_to_the_end(db_path, fork_id, pilot)
        assert screen.model.fork_turn == 30
        table = screen.table
        assert table.row_count == 60
        for row in range(table.row_count):
            styles = [cell.style for cell in table.get_row_at(row)]
            dimmed = all(style is not None and style.dim for style in styles)
            assert dimmed == (row < 30), f"turn {row + 1}"
        assert plain(table.get_row_at(29)[2]).endswith("⚡" + str(screen.model.samples[0].records[29].history_answer))
        # the fork point marked in both charts, once each
        assert [m.x for m in screen.sum_chart.figure.marks if m.label.startswith("fork")] == [30]
        await wait_until(pilot, lambda: screen.decay is not None and screen.decay_plot.figure.has_data)
        decay_marks = screen.decay_plot.figure.marks
        assert [(m.x, m.label) for m in decay_marks if m.label.startswith("fork")] == [(30, "fork @30")]
        assert not [m for m in decay_marks if m.label == "injected"]     # the fork's edit is the fork mark
        status = str(screen.status_bar.content)
        assert f"fork of {short_id(stored_session)} @30 (answer +4)" in status and "REPLAY" in status


async def test_the_replayed_parent_shows_no_fork_marks(db_path, stored_session):
    app = replay_app(db_path, stored_session)
    async with app.run_test(size=SIZE) as pilot:
        screen = await replay_to_the_end(db_path, stored_session, pilot)
        assert screen.model.fork_turn is None and "fork of" not in str(screen.status_bar.content)
        assert not any(cell.style is not None and cell.style.dim for cell in screen.table.get_row_at(0))
        assert not [m for m in screen.sum_chart.figure.marks if m.label.startswith("fork")]


async def test_the_sessions_screen_lists_a_fork_under_its_parent_at_80x24(db_path, stored_session):
    fork_id = await fork_headless(db_path, stored_session, "--turn", "20", "--heal")
    other = await asyncio.to_thread(run_headless, db_path, RunConfig(samples=1, turns=10, seed=9, **ERRING))
    app = LheApp(db_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, SessionsScreen))
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        ids = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        assert ids == [other, stored_session, f"└ {fork_id} @20"]     # newest first, the fork under its parent
        visible, x, shown = table.size.width, 0, []
        for column in table.ordered_columns:
            x += column.get_render_width(table)
            if x <= visible:
                shown.append(str(column.label))
        for name in ("id", "status", "task acc", "H_0.5"):
            assert name in shown, shown
        table.move_cursor(row=2)
        await pilot.pause()
        assert app.screen.selected_id() == fork_id


async def test_F_while_another_run_goes_on_is_refused_before_anything_is_stored(db_path, stored_session):
    live = start_live_run(RunConfig(samples=1, turns=ENDLESS, seed=2, sim_delay=0.002), db_path)
    app = LheApp(db_path, live=live)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, RunScreen))
        app.open_replay(stored_session)                            # a replay over the running run
        await wait_until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.player is not None)
        replay = app.screen
        await wait_until(pilot, lambda: getattr(replay, "table", None) is not None and replay.table.row_count > 0)
        await pilot.press("F")
        await pilot.pause()
        assert app.screen is replay and any("already going" in note for note in notes(app))
        live.stop()
        await wait_until(pilot, lambda: live.finished)
    assert session_ids(db_path) == [stored_session, live.session_id]


async def test_a_fork_at_the_last_turn_takes_its_length_from_the_dialog(db_path, stored_session):
    app = replay_app(db_path, stored_session)
    async with app.run_test(size=SIZE) as pilot:
        replay = await replay_to_the_end(db_path, stored_session, pilot)
        dialog = await open_fork_dialog(pilot, replay, 60)
        assert field(dialog, "#fork-turn") == "60" and field(dialog, "#fork-turns") == "60"
        await pilot.click("#fork-go")
        await wait_until(pilot, lambda: error_line(dialog) != "")
        assert "fork dialog's turns field" in error_line(dialog) and "\n" not in error_line(dialog)
        assert session_ids(db_path) == [stored_session]                  # nothing stored
        dialog.query_one("#fork-turns", Input).value = "64"
        await pilot.pause(0.3)
        await pilot.click("#fork-go")
        await wait_until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.live is not None)
        live_screen = app.screen
        await wait_until(pilot, lambda: live_screen.live.finished, timeout=30)
        fork_id = live_screen.live.session_id
    turns = load_turns(open_database(db_path, create=False), fork_id)
    assert [t.turn for t in turns][-5:] == [60, 61, 62, 63, 64] and sum(t.inherited for t in turns) == 60
