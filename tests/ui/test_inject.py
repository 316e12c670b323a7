"""Injection from the run view: the dialog (`I`) with a typed offset or value, for one sample or all, and
the injected turns marked in the turn table, the running-sum chart and the decay plot, live and replayed."""

from __future__ import annotations

import pytest

from lhe_tui.core.config import Injection, RunConfig
from lhe_tui.store.database import open_database
from lhe_tui.store.queries import load_events, load_turns
from lhe_tui.store.replay import SessionReplay
from lhe_tui.ui.app import LheApp, start_live_run
from lhe_tui.ui.screens.inject import InjectRequest, InjectScreen, parse_injection
from lhe_tui.ui.screens.run import RunScreen

from .conftest import ENDLESS, run_headless
from .test_run_view import SIZE, plain, wait_until

# A sim that never slips: any wrong answer after an injection comes from the injected history.
CLEAN = dict(sim_delay=0.005, sim_base_error=0.0, sim_growth=0.0, sim_conditioning=0.0, sim_format_miss=0.0)


@pytest.mark.parametrize(("text", "to_value", "expected"), [
    ("", False, InjectRequest()),
    ("  +7 ", False, InjectRequest(offset=7)),
    ("-3", False, InjectRequest(offset=-3)),
    ("\u22124", False, InjectRequest(offset=-4)),     # a typographic minus
    ("42", True, InjectRequest(value=42)),
    ("-120", True, InjectRequest(value=-120)),
])
def test_parse_injection(text, to_value, expected):
    assert parse_injection(text, to_value=to_value) == expected


@pytest.mark.parametrize(("text", "to_value", "reason"), [
    ("0", False, "offset of 0 changes nothing"),
    ("abc", False, "not a whole number: 'abc'"),
    ("1.5", True, "not a whole number"),
    ("", True, "type the value"),
])
def test_parse_injection_refuses(text, to_value, reason):
    with pytest.raises(ValueError, match=reason):
        parse_injection(text, to_value=to_value)


async def paused_run(app, pilot, min_turns: int = 3) -> RunScreen:
    screen = app.screen
    await wait_until(pilot, lambda: min(s.last_turn for s in screen.model.samples or [None]) >= min_turns
                     if screen.model.samples else False)
    await pilot.press("space")
    await wait_until(pilot, lambda: screen.model.status == "paused")
    await pilot.pause(0.2)
    return screen


async def test_dialog_injects_a_typed_offset_into_the_watched_sample(db_path):
    live = start_live_run(RunConfig(samples=2, turns=ENDLESS, seed=2, **CLEAN), db_path)
    app = LheApp(db_path, live=live)
    async with app.run_test(size=SIZE) as pilot:
        screen = await paused_run(app, pilot)
        last = screen.model.samples[0].records[-1]
        await pilot.press("I")
        await wait_until(pilot, lambda: isinstance(app.screen, InjectScreen))
        assert f"turn is {last.turn}" in str(app.screen.query_one("#inject-about").content)
        await pilot.press("plus", "7", "enter")
        await wait_until(pilot, lambda: last.turn in screen.model.samples[0].injections)
        assert app.screen is screen
        assert screen.model.samples[1].injections == {}            # only the watched sample
        screen.flush()
        await pilot.pause()
        # marked in the table, the running-sum chart and the decay plot
        assert plain(screen.table.get_row_at(last.turn - 1)[2]).endswith(f"⚡{last.history_answer + 7}")
        assert any(m.x == last.turn and m.color == "accent" for m in screen.sum_chart.figure.marks)
        screen.refresh_metrics()
        await pilot.pause()
        decay_marks = [m for m in screen.decay_plot.figure.marks if m.color == "accent"]
        assert [m.x for m in decay_marks] == [last.turn] and decay_marks[0].label == "injected"
        await pilot.press("space")
        await wait_until(pilot, lambda: screen.model.samples[0].last_turn >= last.turn + 2)
        after = screen.model.samples[0].records[last.turn]         # the next turn, on the injected history
        assert after.correct is False and after.step_correct is True
        assert after.model_answer == after.gold_sum + 7            # carried the +7 forward
        await pilot.press("x")
        await app.workers.wait_for_complete()
    db = open_database(db_path)
    (event,) = load_events(db, live.session_id, ("injected",))
    assert event["sample"] == 0 and event["turn"] == last.turn
    assert event["payload"]["injected"] == event["payload"]["original"] + 7
    stored = {(r.sample, r.turn): r for r in load_turns(db, live.session_id)}
    assert stored[(0, last.turn)].model_answer == last.model_answer   # the model's real answer is kept


async def test_dialog_injects_a_value_into_every_sample(db_path):
    live = start_live_run(RunConfig(samples=3, turns=ENDLESS, seed=3, **CLEAN), db_path)
    app = LheApp(db_path, live=live)
    async with app.run_test(size=SIZE) as pilot:
        screen = await paused_run(app, pilot)
        latest = {s.index: s.last_turn for s in screen.model.samples}
        await pilot.press("I")
        await wait_until(pilot, lambda: isinstance(app.screen, InjectScreen))
        dialog = app.screen
        dialog.query_one("#to-value").value = True
        dialog.query_one("#inject-all").value = True
        await pilot.pause()
        assert "value" in dialog.query_one("#inject-amount").placeholder
        await pilot.press("1", "2", "3", "4", "5")
        await pilot.click("#inject-go")
        await wait_until(pilot, lambda: all(s.injections for s in screen.model.samples))
        for state in screen.model.samples:
            (event,) = state.injections.values()
            assert (event.turn, event.injected) == (latest[state.index], 12345)
        await pilot.press("x")
        await app.workers.wait_for_complete()
    assert len(load_events(open_database(db_path), live.session_id, ("injected",))) == 3


async def test_bad_input_stays_in_the_dialog_and_escape_injects_nothing(db_path):
    live = start_live_run(RunConfig(samples=1, turns=ENDLESS, seed=2, **CLEAN), db_path)
    app = LheApp(db_path, live=live)
    async with app.run_test(size=SIZE) as pilot:
        screen = await paused_run(app, pilot)
        await pilot.press("I")
        await wait_until(pilot, lambda: isinstance(app.screen, InjectScreen))
        await pilot.press("a", "b", "enter")
        await pilot.pause()
        assert isinstance(app.screen, InjectScreen)
        assert "not a whole number: 'ab'" in str(app.screen.query_one("#inject-error").content)
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen)
        await pilot.pause(0.2)
        assert screen.model.samples[0].injections == {}
        await pilot.press("x")
        await app.workers.wait_for_complete()
    assert load_events(open_database(db_path), live.session_id, ("injected",)) == []


@pytest.fixture
def scripted_session(db_path) -> str:
    config = RunConfig(samples=2, turns=30, seed=5, inject_at=(Injection(10, 5), Injection(20, -3)),
                       **{**CLEAN, "sim_delay": 0.0})
    return run_headless(db_path, config)


async def test_replay_marks_the_injections_of_a_scripted_run(db_path, scripted_session):
    session_id = scripted_session
    db = open_database(db_path)
    app = LheApp(db_path, replay=SessionReplay(db, session_id), replay_speed=float("inf"))
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.screen
        await wait_until(pilot, lambda: screen.model.turns_done == 60)
        screen.refresh_metrics()
        screen.flush()
        await pilot.pause()
        assert [m.x for m in screen.decay_plot.figure.marks if m.color == "accent"] == [10, 20]
        assert [m.x for m in screen.sum_chart.figure.marks if m.color == "accent"] == [10, 20]
        assert "⚡" in plain(screen.table.get_row_at(9)[2]) and "⚡" in plain(screen.table.get_row_at(19)[2])
