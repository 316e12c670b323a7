"""Issue 14, items 17 and 18 in the run view: the clock stops while paused, `done` counts finished samples
only, the watched sample's line keeps up with the status line, one toast for many injections, a turn
injected again shows its new value, "model said" is the model's answer, a ⚡ that brings a scrollbar keeps
the newest row in view, compare names a hand-injected session, replay's home / i / I / x, and a resumed
run's tokens and clock go on from the stored totals."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

from textual.app import App, ComposeResult

from lhe_tui.analysis.compare import session_curves
from lhe_tui.core.config import Injection, RunConfig
from lhe_tui.core.events import Injected, RunPaused, RunResumed, RunStarted, SampleFinished
from lhe_tui.store.database import open_database
from lhe_tui.store.replay import SessionReplay
from lhe_tui.ui import feed as feed_module
from lhe_tui.ui.app import LheApp, resume_live_run, start_live_run
from lhe_tui.ui.feed import RunModel, SampleState
from lhe_tui.ui.widgets.sample_list import SampleList
from lhe_tui.ui.widgets.turn_table import TurnTable

from .conftest import ENDLESS, freeze_session
from .test_inject import CLEAN, paused_run
from .test_run_view import SIZE, plain, wait_until
from .test_turn_table import record, state_with


def started(model: RunModel, samples: int = 4) -> None:
    model.apply(RunStarted(session_id="s", config={"turns": 10}, dictionary={}, provider_label="sim", simulated=True,
                           sample_keys=[("a",)] * samples))


def test_the_clock_stops_while_paused(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(feed_module.time, "monotonic", lambda: now[0])
    model = RunModel(live=True)
    started(model)
    now[0] = 110.0
    model.apply(RunPaused())
    now[0] = 170.0                      # a minute paused
    assert model.elapsed() == 10.0
    model.apply(RunResumed())
    now[0] = 175.0
    assert model.elapsed() == 15.0


def test_done_counts_finished_samples_only():
    model = RunModel(live=True)
    started(model)
    model.apply(SampleFinished(sample=0, status="finished", message=""))
    for sample in (1, 2, 3):
        model.apply(SampleFinished(sample=sample, status="stopped", message=""))
    assert model.samples_done == 1 and model.samples_ended("stopped") == 3


class ListApp(App):
    def compose(self) -> ComposeResult:
        yield SampleList()


async def test_the_watched_samples_turn_follows_in_the_same_flush():
    app = ListApp()
    async with app.run_test(size=(30, 10)) as pilot:
        widget = app.query_one(SampleList)
        states = [SampleState(i, status="running", current_turn=1) for i in range(3)]
        widget.sync(states, 1)
        await pilot.pause()
        states[1].current_turn = 2                      # within TURNS_EVERY_S of the last sync
        widget.sync(states, 1)
        await pilot.pause()
        assert "t2" in widget.render_line(1).text


class TableApp(App):
    def compose(self) -> ComposeResult:
        yield TurnTable(id="turns")


async def test_a_turn_injected_again_shows_its_new_value():
    app = TableApp()
    async with app.run_test(size=(100, 12)) as pilot:
        table = app.query_one(TurnTable)
        state = state_with([record(t) for t in range(1, 6)])
        table.sync(state)
        for value in (7, 99):
            event = Injected(sample=0, turn=5, original=50, injected=value)
            state.injections[5] = event
            state.records[4] = replace(state.records[4], injected=True, history_answer=value)
            table.sync(state)
            await pilot.pause()
            assert plain(table.get_row_at(4)[2]).endswith(f"⚡{value}")


async def test_a_scrollbar_brought_by_an_injection_keeps_the_newest_row_in_view():
    app = TableApp()
    async with app.run_test(size=(64, 10)) as pilot:
        table = app.query_one(TurnTable)
        state = state_with([record(t) for t in range(1, 40)])
        table.sync(state)
        await pilot.pause()
        assert not table.show_horizontal_scrollbar and table.following
        state.injections[39] = Injected(sample=0, turn=39, original=390, injected=-123456789)
        state.records[38] = replace(state.records[38], injected=True, history_answer=-123456789)
        table.sync(state)
        await pilot.pause()
        await pilot.pause()
        assert table.show_horizontal_scrollbar
        lines = table.render_lines(table.size.region)
        assert lines[table.scrollable_content_region.height - 1].text.split()[0] == "39"


async def test_many_injections_make_one_toast_that_names_the_models_own_answer(db_path):
    config = RunConfig(samples=6, turns=ENDLESS, seed=2, inject_at=(Injection(turn=3, offset=5),), **CLEAN)
    live = start_live_run(config, db_path)
    app = LheApp(db_path, live=live)
    async with app.run_test(size=SIZE) as pilot:
        screen = await paused_run(app, pilot, min_turns=5)
        toasts = lambda: [n for n in app._notifications if n.title in ("injected", "injecting")]  # noqa: E731
        assert len(toasts()) == 1 and "--inject-at" in toasts()[0].message     # not one a sample
        live.inject_all(offset=3)
        await wait_until(pilot, lambda: len(toasts()) == 2)
        await pilot.pause(0.3)
        assert len(toasts()) == 2 and "6 samples" in toasts()[1].message
        # inject the same turn twice: "the model said" is the model's answer, not what the history showed
        last = screen.model.samples[0].records[-1]
        live.inject(0, offset=10)
        await wait_until(pilot, lambda: len(toasts()) == 3)
        message = toasts()[2].message
        assert f"the model said {last.model_answer})" in message
        assert str(screen.model.samples[0].records[-1].history_answer) in message
        await pilot.press("x")
        await wait_until(pilot, lambda: live.finished)
        screen.flush()
        await pilot.pause()
        status = str(screen.status_bar.content)
        assert "done 0/6 (6 stopped)" in status
    db = open_database(db_path)
    label = session_curves(db, live.session_id).label
    assert "manual inject@" in label and "inject@3" in label


async def test_replay_home_starts_over_and_live_keys_say_why_they_do_nothing(db_path, stored_session):
    freeze_session(db_path, stored_session)        # turns 0.1 s apart: the replay takes 18 s at 1x
    replay = SessionReplay(open_database(db_path), stored_session)
    app = LheApp(db_path, replay=replay, replay_autoplay=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.press("e")
        await pilot.pause()
        at_error = screen.player.position                                     # the first error's
        assert at_error > 0 and screen.table.has_focus
        await pilot.press("home")
        await pilot.pause()
        # started over, playing: before the first error again (at 1x it plays on while the test waits: on a
        # loaded machine some turns in; a `home` that did nothing would be at or past the error)
        assert screen.player.position < at_error and screen.player.playing
        for key in ("i", "I", "x"):
            before = len(app._notifications)
            await pilot.press(key)
            await pilot.pause()
            assert len(app._notifications) == before + 1
            assert "replay" in list(app._notifications)[-1].message


async def test_a_resumed_run_goes_on_from_the_stored_tokens_and_time(db_path):
    live = start_live_run(RunConfig(samples=2, turns=ENDLESS, seed=0, sim_delay=0.005), db_path)
    app = LheApp(db_path, live=live)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.screen.model.turns_done > 10)
        await pilot.press("x")
        await wait_until(pilot, lambda: live.finished)
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE sessions SET wall_time_s = 3600 WHERE id = ?", [live.session_id])
        tokens_in, tokens_out = conn.execute("SELECT SUM(tokens_in), SUM(tokens_out) FROM turns").fetchone()
    resumed = resume_live_run(db_path, live.session_id)
    app = LheApp(db_path, live=resumed)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert screen.model.tokens_in >= tokens_in and screen.model.tokens_out >= tokens_out
        await wait_until(pilot, lambda: screen.model.started_at is not None)
        assert screen.model.elapsed() >= 3600
        await pilot.press("x")
        await wait_until(pilot, lambda: resumed.finished)
        screen.flush()
        await pilot.pause()
        assert "1:00:" in str(screen.status_bar.content)
