"""Pilot tests of the run view, live and replayed, and of every binding on it."""

from __future__ import annotations

import asyncio
import time


from lhe_tui.core.config import RunConfig
from lhe_tui.core.events import TokenDelta
from lhe_tui.store.database import open_database
from lhe_tui.store.queries import load_session, load_turns
from lhe_tui.store.replay import SessionReplay
from lhe_tui.ui.app import LheApp, start_live_run
from lhe_tui.ui.screens.run import FLUSH_HZ, RunScreen

from .conftest import ENDLESS, ERRING

SIZE = (120, 40)


async def wait_until(pilot, predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.05)


async def finish(app, pilot) -> RunScreen:
    await app.workers.wait_for_complete()
    await pilot.pause(0.25)   # one more flush after the last event
    screen = app.screen
    assert isinstance(screen, RunScreen)
    screen.flush()
    await pilot.pause()
    return screen


def plain(cell) -> str:
    return getattr(cell, "plain", str(cell))


async def test_live_sim_run_shows_rows_status_and_stores_the_session(db_path):
    live = start_live_run(RunConfig(samples=2, turns=40, seed=4, **ERRING), db_path)
    app = LheApp(db_path, live=live)
    async with app.run_test(size=SIZE) as pilot:
        screen = await finish(app, pilot)
        assert screen.table.row_count == 40
        assert [plain(c) for c in screen.table.get_row_at(0)][0].strip() == "1"
        assert screen.model.status == "finished"
        status = str(screen.status_bar.content)
        assert "(simulated)" in status and "LIVE" in status and "K=1" in status and "done 2/2" in status
        assert screen.samples_list.option_count == 2
        # The metrics follow at 2 Hz (and only after the first frame, or 1 s): a fast run can end first.
        await wait_until(pilot, lambda: screen.decay is not None and screen.decay.summary.n_turns == 40)
        assert screen.decay is not None and screen.decay.summary.n_turns == 40
    db = open_database(db_path)
    assert load_session(db, live.session_id)["status"] == "finished"
    assert len(load_turns(db, live.session_id)) == 80


async def test_first_error_is_marked_and_e_jumps_to_it(db_path):
    live = start_live_run(RunConfig(samples=3, turns=60, seed=4, **ERRING), db_path)
    app = LheApp(db_path, live=live)
    async with app.run_test(size=SIZE) as pilot:
        screen = await finish(app, pilot)
        first = screen.model.samples[0].first_error
        assert first == 11
        row = [plain(c) for c in screen.table.get_row_at(first - 1)]
        assert "◆" in row[0] and row[5] == "1st err"
        assert "◆" not in plain(screen.table.get_row_at(first)[0])
        assert screen.table.cursor_row == 59          # followed the newest turn
        await pilot.press("e")
        await pilot.pause()
        assert screen.table.cursor_row == first - 1
        assert not screen.table.following
        assert screen.samples_list.get_option_at_index(0).prompt.plain.endswith("✗11")
        await pilot.press("f")
        await pilot.pause()
        assert screen.table.cursor_row == 59 and screen.table.following


async def test_table_follows_the_newest_turn_until_the_user_moves_up(db_path):
    live = start_live_run(RunConfig(samples=2, turns=ENDLESS, seed=4, sim_delay=0.004), db_path)
    app = LheApp(db_path, live=live)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        table = screen.table
        await wait_until(pilot, lambda: table.row_count > 30)
        await pilot.pause(0.3)
        assert table.following and table.cursor_row >= table.row_count - 3
        # Actions called directly: key presses wait for an idle process, and this one is busy running.
        screen.action_next_sample()                         # another sample: still following
        await wait_until(pilot, lambda: table.sample == 1 and table.row_count > 40)
        await pilot.pause(0.3)
        assert table.following and table.cursor_row >= table.row_count - 3
        assert table.scroll_y >= table.max_scroll_y - 3
        table.action_cursor_up()
        held, rows = table.cursor_row, table.row_count
        await wait_until(pilot, lambda: table.row_count > rows + 5)
        assert table.cursor_row == held and not table.following
        screen.action_follow()
        await pilot.pause(0.3)
        assert table.following and table.cursor_row >= table.row_count - 3
        screen.action_stop()
        await app.workers.wait_for_complete()


async def test_switching_samples_with_keys_and_the_list(db_path):
    live = start_live_run(RunConfig(samples=3, turns=30, seed=4, **ERRING), db_path)
    app = LheApp(db_path, live=live)
    async with app.run_test(size=SIZE) as pilot:
        screen = await finish(app, pilot)
        keys = [s.records[0].keys[0] for s in screen.model.samples]
        assert len(set(keys)) > 1
        await pilot.press("]")
        await pilot.pause()
        assert screen.model.watched == 1 and screen.table.sample == 1
        assert plain(screen.table.get_row_at(0)[1]) == keys[1]
        assert "s1 · turn 30" in screen.reply.render_stream(screen.model.stream).plain
        await pilot.press("[", "[")
        await pilot.pause()
        assert screen.model.watched == 2                # wraps around
        screen.samples_list.focus()
        await pilot.press("up")
        await pilot.pause(0.1)
        assert screen.model.watched == 1 and screen.table.sample == 1


async def test_pause_resume_and_stop_leave_an_interrupted_replayable_session(db_path):
    # A slow, mostly sleeping sim: Pilot's key presses wait for the process to be idle.
    config = RunConfig(samples=2, turns=ENDLESS, seed=1, sim_delay=0.005)
    live = start_live_run(config, db_path)
    app = LheApp(db_path, live=live)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await wait_until(pilot, lambda: screen.model.turns_done >= 4)
        await pilot.press("space")
        await wait_until(pilot, lambda: live.paused and screen.model.status == "paused")
        await pilot.pause(0.3)                          # turns in flight finish
        before = screen.model.turns_done
        await pilot.pause(0.5)
        assert screen.model.turns_done == before        # nothing arrives while paused
        assert "paused" in str(screen.status_bar.content)
        await pilot.press("space")
        await wait_until(pilot, lambda: not live.paused)
        await wait_until(pilot, lambda: screen.model.turns_done > before + 2)
        await pilot.press("x")
        await app.workers.wait_for_complete()
        await pilot.pause(0.25)
        assert screen.model.status == "interrupted"
    db = open_database(db_path)
    assert load_session(db, live.session_id)["status"] == "interrupted"
    replay = SessionReplay(db, live.session_id)
    assert 0 < len(replay) < 2 * ENDLESS and len(replay) == len(load_turns(db, live.session_id))


async def test_inject_marks_the_turn_in_table_and_history(db_path):
    # no slips at all, so the turn after the injection is wrong only because of the injected history
    config = RunConfig(samples=1, turns=ENDLESS, seed=2, sim_delay=0.005, sim_base_error=0.0, sim_growth=0.0,
                       sim_conditioning=0.0, sim_format_miss=0.0)
    live = start_live_run(config, db_path)
    app = LheApp(db_path, live=live)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await wait_until(pilot, lambda: screen.model.turns_done >= 3)
        await pilot.press("space")
        await wait_until(pilot, lambda: screen.model.status == "paused")
        await pilot.pause(0.2)
        turn = screen.model.samples[0].last_turn
        await pilot.press("i")
        await wait_until(pilot, lambda: turn in screen.model.samples[0].injections)
        screen.flush()
        await pilot.pause()
        assert "⚡" in plain(screen.table.get_row_at(turn - 1)[2])
        await pilot.press("space")
        await wait_until(pilot, lambda: screen.model.samples[0].last_turn >= turn + 2)
        after = screen.model.samples[0].records[turn]   # the next turn: built on the injected history
        assert not after.correct and after.step_correct
        await pilot.press("x")
        await app.workers.wait_for_complete()


async def test_toggle_values_and_charts_at_80x24(db_path):
    live = start_live_run(RunConfig(samples=2, turns=30, seed=4, **ERRING), db_path)
    app = LheApp(db_path, live=live)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await finish(app, pilot)
        record = screen.model.samples[0].records[0]
        assert plain(screen.table.get_row_at(0)[1]) == record.keys[0]
        await pilot.press("v")
        await pilot.pause()
        assert plain(screen.table.get_row_at(0)[1]) == f"{record.keys[0]}{record.key_values[0]:+d}"
        charts, main = screen.query_one("#charts"), screen.query_one("#main")
        assert not charts.display and main.display          # narrow: charts on demand
        await pilot.press("g")
        await pilot.pause(0.2)
        assert charts.display and not main.display
        assert screen.decay_plot.figure.has_data and "p<1st err" in screen.decay_plot.figure.title
        assert screen.decay_plot.figure.bands                # several samples: bootstrap band
        # the paper's two curves (and the theory), answer accuracy on `A`
        assert [s.label for s in screen.decay_plot.figure.series] == ["turn", "task", "p^t"]
        await pilot.press("A")
        await pilot.pause()
        assert [s.label for s in screen.decay_plot.figure.series] == ["turn", "answer", "task", "p^t"]
        await pilot.press("A")
        await pilot.pause()
        assert "answer" not in [s.label for s in screen.decay_plot.figure.series]
        assert screen.sum_chart.figure.has_data
        await pilot.press("g")
        await pilot.pause()
        assert main.display and not charts.display


async def test_wide_terminal_shows_charts_beside_the_table(db_path):
    live = start_live_run(RunConfig(samples=2, turns=30, seed=4, **ERRING), db_path)
    app = LheApp(db_path, live=live)
    async with app.run_test(size=(140, 45)) as pilot:
        screen = await finish(app, pilot)
        assert screen.query_one("#charts").display and screen.query_one("#main").display
        # The chart is built on a worker thread at low priority: on a loaded machine it may come after
        # the last flush (this failed in about half of the runs under load), so wait for it.
        await wait_until(pilot, lambda: bool(screen.sum_chart.figure.marks))
        marks = screen.sum_chart.figure.marks
        assert marks[0].x == screen.model.samples[0].first_error


async def test_redraws_come_at_most_once_a_flush_tick_with_32_streaming_samples(db_path):
    config = RunConfig(samples=32, turns=100, seed=0, sim_delay=0.002, mode="thinking", concurrency=32)
    live = start_live_run(config, db_path)
    streamed: list[int] = []                           # the samples whose token deltas reach this process
    live.subscribe(lambda event: isinstance(event, TokenDelta) and streamed.append(event.sample))
    app = LheApp(db_path, live=live)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await wait_until(pilot, lambda: screen.model.turns_done > 0)
        start, redraws = time.monotonic(), screen.redraws
        await wait_until(pilot, lambda: screen.redraws >= redraws + 5)
        # a redraw per flush tick at most (FLUSH_HZ), never per event; load can only lower the rate, which
        # bench/suite_timings.py measures
        assert screen.redraws - redraws <= (time.monotonic() - start) * FLUSH_HZ + 2
        # unwatched samples' tokens never leave the run process; watching another sample switches them
        assert streamed and set(streamed) == {0}
        await pilot.press("]")
        await wait_until(pilot, lambda: streamed[-1] == 1)
        await wait_until(pilot, lambda: screen.model.stream.sample == 1 and bool(screen.model.stream.text))
        await pilot.press("x")
        await app.workers.wait_for_complete()


async def test_replay_jump_to_first_error_and_step_back_and_forth(db_path, stored_session):
    replay = SessionReplay(open_database(db_path), stored_session)
    app = LheApp(db_path, replay=replay, replay_autoplay=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.pause()
        assert screen.player is not None and screen.player.position == 0 and screen.table.row_count == 0
        await pilot.press("e")
        await pilot.pause()
        s0 = screen.model.samples[0]
        assert s0.first_error == 11 and s0.records[-1].turn == 11 and not s0.records[-1].correct
        assert screen.table.cursor_row == 10
        await pilot.press("full_stop")
        await pilot.pause()
        assert screen.model.samples[0].last_turn == 12 and screen.table.row_count == 12
        await pilot.press("comma", "comma", "comma")
        await pilot.pause()
        assert screen.model.samples[0].last_turn == 9 and screen.table.row_count == 9
        assert screen.model.samples[0].first_error is None
        await pilot.press("]")
        await pilot.press("e")
        await pilot.pause()
        assert screen.model.watched == 1 and screen.model.samples[1].first_error == 26
        assert screen.table.cursor_row == 25
        assert "REPLAY" in str(screen.status_bar.content)


async def test_replay_plays_with_speed_controls_to_the_end(db_path, stored_session):
    replay = SessionReplay(open_database(db_path), stored_session)
    app = LheApp(db_path, replay=replay, replay_autoplay=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.press("plus", "plus")
        assert screen.player.speed == 5.0
        await pilot.press("minus")
        assert screen.player.speed == 2.0
        await pilot.press(*["plus"] * 6)
        assert screen.player.speed == float("inf")
        await pilot.press("space")
        await wait_until(pilot, lambda: replay.at_end)
        screen.flush()
        await pilot.pause()
        assert screen.model.status == "finished" and screen.table.row_count == 60
        assert "■ end" in str(screen.query_one("#replay-controls").content)


async def test_quitting_mid_run_stops_it_and_saves_an_interrupted_session(db_path):
    live = start_live_run(RunConfig(samples=2, turns=ENDLESS, seed=0, sim_delay=0.005), db_path)
    app = LheApp(db_path, live=live)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.screen.model.turns_done > 2)
        await pilot.press("q")
    await asyncio.sleep(0)
    assert live.finished
    assert load_session(open_database(db_path), live.session_id)["status"] == "interrupted"


async def test_a_crashing_run_worker_is_reported_and_the_app_keeps_going(db_path):
    from textual.worker import WorkerFailed

    live = start_live_run(RunConfig(samples=1, turns=5, seed=0, sim_delay=0.0), db_path)

    def explode(event):
        raise RuntimeError("disk on fire")

    live.subscribe(explode)
    app = LheApp(db_path, live=live)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        try:  # the worker is meant to fail; waiting on it re-raises that failure when it ends mid-wait
            await app.workers.wait_for_complete()
        except WorkerFailed:
            pass
        await pilot.pause(0.2)
        worker = screen.run_worker_
        assert worker is not None and worker.group == "run" and worker.error is not None
        assert screen.model.status == "failed" and "disk on fire" in screen.model.message
        assert any("disk on fire" in n.message for n in app._notifications)
        assert app.is_running and app.screen is screen


async def test_switching_theme_recolours_the_run_view(db_path):
    from textual.color import Color

    live = start_live_run(RunConfig(samples=2, turns=30, seed=4, **ERRING), db_path)
    app = LheApp(db_path, live=live)
    async with app.run_test(size=SIZE) as pilot:
        screen = await finish(app, pilot)

        def band_colour():
            row = screen.model.samples[0].first_error - 1
            return screen.table.get_row_at(row)[0].style.bgcolor.triplet

        assert band_colour() == Color.parse(app.theme_variables["error"]).rgb
        dark_error = band_colour()
        app.theme = "lhe-high-contrast"
        await pilot.pause(0.3)
        assert band_colour() == Color.parse(app.theme_variables["error"]).rgb != dark_error
        label = screen.samples_list.get_option_at_index(0).prompt
        assert any(span.style.color.triplet == Color.parse(app.theme_variables["error"]).rgb
                   for span in label.spans)


async def test_replay_opened_with_the_app_shows_its_status_and_computes_metrics_after_the_first_frame(
        db_path, stored_session):
    """`lhe-tui replay ID`: the run screen is pushed once the app runs (its first paint is written whole,
    status bar included), and the metrics (numpy) come after the first frame."""
    replay = SessionReplay(open_database(db_path), stored_session)
    app = LheApp(db_path, replay=replay, replay_speed=float("inf"))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, RunScreen))
        screen = app.screen
        await wait_until(pilot, lambda: replay.at_end)
        screen.flush()
        await wait_until(pilot, lambda: screen.decay is not None and screen.decay.summary.n_turns == 60)
        assert screen.model.status == "finished" and screen.table.row_count == 60
        assert "REPLAY" in str(screen.status_bar.content)


async def test_a_busy_live_flush_lets_the_next_tick_rest(db_path):
    from lhe_tui.core.events import TurnStarted
    from lhe_tui.ui.screens.run import BUSY_FLUSH_EVENTS

    live = start_live_run(RunConfig(samples=2, turns=5, seed=4, **ERRING), db_path)
    app = LheApp(db_path, live=live)
    async with app.run_test(size=SIZE) as pilot:
        screen = await finish(app, pilot)
        busy = [TurnStarted(0, 6, ("x",))] * BUSY_FLUSH_EVENTS   # no await below: no timer tick between
        for event in busy:
            screen.feed.push(event)
        screen.flush()
        assert len(screen.feed) == 0 and screen._rest             # a busy flush: the next tick rests
        for event in busy[:5]:
            screen.feed.push(event)
        screen.flush()
        assert len(screen.feed) == 5 and not screen._rest         # rested: the events wait
        screen.flush()
        assert len(screen.feed) == 0 and not screen._rest         # a quiet flush: every tick again
