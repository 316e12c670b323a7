"""Replay: a stored session comes back as the same events a live run emitted, behind a cursor and a clock."""

from __future__ import annotations

import asyncio
import math

import pytest

from lhe_tui.core.config import RunConfig
from lhe_tui.core.events import (Injected, RunFinished, RunStarted, SampleFinished, TokenDelta, TurnFinished,
                                   TurnStarted)
from lhe_tui.runs.session import prepare_run
from lhe_tui.store.database import open_database
from lhe_tui.store.replay import SessionReplay
from lhe_tui.store.replay_player import SPEEDS, ReplayPlayer


def record_live(tmp_path, config: RunConfig, during=None):
    """Run `config` on sim into a fresh store; return (db, session_id, live events without token deltas)."""
    db = open_database(tmp_path / "s.db")
    prepared = prepare_run(config, db)
    seen = []
    prepared.bus.subscribe(lambda e: seen.append(e) if not isinstance(e, TokenDelta) else None)
    if during is not None:
        prepared.bus.subscribe(lambda e: during(prepared.runner, e))
    asyncio.run(prepared.runner.run())
    return db, prepared.session_id, seen


def comparable(events):
    """Live and replayed events, minus what only a live run knows (wall times of RunStarted/Finished)."""
    out = []
    for e in events:
        if isinstance(e, RunFinished):
            out.append(("finished", e.status))
        elif isinstance(e, RunStarted):
            out.append(("started", e.session_id, len(e.sample_keys), e.simulated))
        else:
            out.append(e)
    return out


def test_replay_emits_the_live_events_in_live_order(tmp_path):
    config = RunConfig(samples=3, turns=30, seed=3, sim_delay=0, concurrency=1)

    def inject_at_turn_10(runner, event):
        if isinstance(event, TurnFinished) and event.record.turn == 10 and event.record.sample == 1:
            runner.inject(1, offset=7)

    db, sid, live = record_live(tmp_path, config, inject_at_turn_10)
    replayed = list(SessionReplay(db, sid).iter_events())
    assert comparable(replayed) == comparable(live)
    injected = [e for e in replayed if isinstance(e, Injected)]
    assert injected and injected[0].turn == 10 and injected[0].injected == injected[0].original + 7


def test_cursor_steps_seeks_and_finds_the_first_error(tmp_path):
    db, sid, _ = record_live(tmp_path, RunConfig(samples=2, turns=80, seed=1, sim_delay=0, sim_base_error=0.05))
    replay = SessionReplay(db, sid)
    assert len(replay) == 160
    first = replay.step(1)
    assert [type(e) for e in first] == [TurnStarted, TurnFinished] and replay.position == 1
    position = replay.first_error_position(sample=1)
    assert position is not None
    events = replay.seek(position)
    assert isinstance(events[0], RunStarted)
    last = [e for e in events if isinstance(e, TurnFinished)][-1].record
    assert last.sample == 1 and not last.correct
    assert all(e.record.correct for e in events if isinstance(e, TurnFinished)
               and e.record.sample == 1 and e.record.turn < last.turn)
    back = replay.seek(position - 1)
    assert sum(isinstance(e, TurnFinished) for e in back) == position - 1
    tail = replay.seek(len(replay))
    assert isinstance(tail[-1], RunFinished) and tail[-1].status == "finished"
    assert sum(isinstance(e, SampleFinished) for e in tail) == 2


def test_player_paces_by_the_recorded_clock_and_speeds_up(tmp_path):
    db, sid, _ = record_live(tmp_path, RunConfig(samples=1, turns=20, seed=0, sim_delay=0))
    replay = SessionReplay(db, sid)
    replay.times = [float(i + 1) for i in range(len(replay))]  # one turn a second, to make the clock exact
    player = ReplayPlayer(replay, speed=1.0)
    assert player.tick(100.0) == []
    assert sum(isinstance(e, TurnFinished) for e in player.tick(102.5)) == 2
    player.set_speed(10.0)
    player.tick(200.0)
    assert sum(isinstance(e, TurnFinished) for e in player.tick(201.0)) == 10
    assert player.faster() == 20.0 and player.slower() == 10.0
    player.toggle()
    assert player.tick(300.0) == [] and player.tick(400.0) == []
    player.set_speed(math.inf)
    player.toggle()
    rest = player.tick(401.0)
    assert isinstance(rest[-1], RunFinished) and replay.at_end and not player.playing
    assert SPEEDS[0] == 1.0 and SPEEDS[-2] == 50.0


def test_replay_rejects_an_unknown_session(tmp_path):
    db = open_database(tmp_path / "s.db")
    from lhe_tui.common.errors import LheError

    with pytest.raises(LheError):
        SessionReplay(db, "nope")


# ---- lazy loading: frames are built from pages of turn records read when needed -------------------------------

def injecting_run(tmp_path, samples=3, turns=40):
    """A sim run with errors and two injections; (db, session_id, live events)."""
    config = RunConfig(samples=samples, turns=turns, seed=5, sim_delay=0, concurrency=2, sim_base_error=0.04)

    def inject(runner, event):
        if isinstance(event, TurnFinished) and (event.record.sample, event.record.turn) in ((0, 7), (2, 19)):
            runner.inject(event.record.sample, offset=5)

    return record_live(tmp_path, config, inject)


def test_small_pages_give_the_same_events_as_one_big_page_at_every_position(tmp_path):
    db, sid, live = injecting_run(tmp_path)
    whole = SessionReplay(db, sid, page_frames=1_000_000)
    paged = SessionReplay(db, sid, page_frames=3, cache_pages=2)
    assert len(whole) == len(paged) == 120 and list(whole.times) == list(paged.times)
    assert comparable(paged.iter_events()) == comparable(whole.iter_events()) == comparable(live)
    for position in range(len(whole) + 1):
        assert paged.seek(position) == whole.seek(position), position
    # stepping one frame at a time, then rewinding, crosses page boundaries and evicts pages
    paged.seek(0)
    stepped = [e for _ in range(len(paged)) for e in paged.step(1)]
    assert stepped == list(whole.iter_events())[1:]
    assert paged.rewind(0) == list(reversed(stepped))
    for start, end in ((0, 1), (2, 9), (5, 120), (0, 120), (118, 120)):
        paged.seek(start)
        whole.seek(start)
        assert paged.step(end - start) == whole.step(end - start), (start, end)
        assert paged.rewind(start) == whole.rewind(start), (start, end)
    assert [paged.events_of(i) for i in range(len(paged))] == [whole.events_of(i) for i in range(len(whole))]


def test_a_paged_turn_index_gives_what_the_whole_index_gives(tmp_path):
    """The turn index read a few rows at a time, as the cursor and the clock need it, lays out the same
    replay as the index read at once: times, events at every position, and the cursor queries."""
    db, sid, live = injecting_run(tmp_path)
    whole = SessionReplay(db, sid)
    assert whole.index_complete and whole.index_reads == 1

    def paged():
        return SessionReplay(db, sid, page_frames=4, cache_pages=2, index_pages=(2, 5))

    replay = paged()
    assert replay.index_reads == 1 and not replay.index_complete and len(replay) == 120
    assert replay.seek(0) == whole.seek(0) and replay.index_reads == 1   # the first frame needs nothing more
    replay.step(3)
    assert replay.index_reads == 2 and not replay.index_complete
    assert comparable(paged().iter_events()) == comparable(whole.iter_events()) == comparable(live)
    replay = paged()
    assert replay.duration == whole.duration and replay.index_complete and list(replay.times) == list(whole.times)
    for position in range(len(whole) + 1):
        assert paged().seek(position) == whole.seek(position), position
    for sample in (None, 0, 1, 2, 7):
        assert paged().first_error_position(sample) == whole.first_error_position(sample), sample
    for sample in range(3):
        for turn in (1, 2, 20, 40, 41):
            assert paged().position_of(sample, turn) == whole.position_of(sample, turn), (sample, turn)
        for position in range(0, len(whole) + 1, 7):
            for direction in (+1, -1):
                replay = paged()
                replay.seek(position)
                whole.position = position
                assert replay.sample_step(sample, direction) == whole.sample_step(sample, direction)
    # the clock reads further pages as it goes, and plays the same events
    player, reference = ReplayPlayer(paged(), speed=50.0), ReplayPlayer(SessionReplay(db, sid), speed=50.0)
    for now in (0.0, 0.01, 0.02, 0.05, 0.1, 0.3, 1.0, 100.0):
        assert player.tick(now) == reference.tick(now), now
    assert player.replay.at_end and reference.replay.at_end


def test_cursor_queries_match_a_scan_of_the_frames(tmp_path):
    db, sid, _ = injecting_run(tmp_path)
    replay = SessionReplay(db, sid, page_frames=4, cache_pages=2)
    frames = [replay.frame(i) for i in range(len(replay))]
    for sample in (None, 0, 1, 2, 7):
        expected = next((i + 1 for i, f in enumerate(frames) if not f.correct and sample in (None, f.sample)), None)
        assert replay.first_error_position(sample) == expected
    for sample in range(3):
        for turn in (1, 2, 20, 40, 41):
            expected = next((i + 1 for i, f in enumerate(frames) if (f.sample, f.turn) == (sample, turn)), None)
            assert replay.position_of(sample, turn) == expected
        for position in range(0, len(replay) + 1, 7):
            replay.position = position
            forward = next((i + 1 for i in range(position, len(frames)) if frames[i].sample == sample), None)
            back = next((i for i in range(position - 1, -1, -1) if frames[i].sample == sample), None)
            assert replay.sample_step(sample, +1) == forward and replay.sample_step(sample, -1) == back


def test_opening_reads_no_turn_records_and_a_step_reads_one_page(tmp_path):
    db, sid, _ = record_live(tmp_path, RunConfig(samples=2, turns=300, seed=1, sim_delay=0))
    replay = SessionReplay(db, sid, page_frames=64)
    assert replay.pages_read == 0 and len(replay) == 600
    assert len(replay.seek(0)) == 1 and replay.pages_read == 0
    replay.step(5)
    replay.step(5)
    assert replay.pages_read == 1
    replay.seek(600)                 # a long jump reads in one pass, without filling the cache
    assert replay.pages_read == 1 and replay.at_end


@pytest.mark.parametrize("index_pages", [(1_000, 1_000), (2, 3)])
def test_a_session_still_being_written_replays_as_it_was_when_opened(tmp_path, index_pages):
    """Opened mid-run: later turns are not in it, and a later injection into a turn it holds is not shown."""
    opened: dict = {}
    live_records = []

    def open_mid_run(runner, event):
        if isinstance(event, TurnFinished):
            live_records.append(event.record)
            if event.record.sample == 0 and event.record.turn == 12 and "replay" not in opened:
                # a second connection, as the TUI's replay of a running session would have
                reader = open_database(tmp_path / "s.db")
                opened["replay"] = SessionReplay(reader, runner.session_id, page_frames=5, cache_pages=1,
                                                 index_pages=index_pages)
                opened["records"] = list(live_records)
                runner.inject(0, offset=9)          # into turn 12, which the replay already holds

    db, sid, _ = record_live(tmp_path, RunConfig(samples=2, turns=40, seed=2, sim_delay=0, concurrency=2),
                             open_mid_run)
    replay = opened["replay"]
    events = list(replay.iter_events())             # the records are read now, after the run ended
    records = [e.record for e in events if isinstance(e, TurnFinished)]
    assert records == opened["records"] and len(replay) == len(records) < 80
    assert not any(isinstance(e, (Injected, SampleFinished)) for e in events)
    turn_12 = next(r for r in records if (r.sample, r.turn) == (0, 12))
    assert not turn_12.injected and turn_12.history_answer == turn_12.model_answer
    assert replay.seek(len(replay))[-1].status == "running"
    stored = SessionReplay(db, sid)                 # reopened: the whole session, injection included
    assert len(stored) == 80 and sum(isinstance(e, Injected) for e in stored.iter_events()) == 1


def test_a_replay_opened_from_the_app_keeps_its_connection_and_plays(tmp_path):
    """`LheApp.open_replay` loads in a thread; the replay then reads its turn records as it plays."""
    from lhe_tui.ui.app import LheApp
    from lhe_tui.ui.screens.run import RunScreen

    _db, sid, _ = record_live(tmp_path, RunConfig(samples=2, turns=30, seed=3, sim_delay=0))

    async def drive():
        app = LheApp(tmp_path / "s.db", replay_autoplay=False)
        async with app.run_test(size=(120, 40)) as pilot:
            app.open_replay(sid)
            await app.workers.wait_for_complete()
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, RunScreen) and screen.player.position == 0
            await pilot.press("full_stop", "full_stop")
            await pilot.pause()
            assert screen.model.turns_done == screen.player.position >= 2
            await pilot.press("e")  # jump to the first error (or stay, if none)
            await pilot.pause()
            assert screen.model.turns_done == screen.player.position

    asyncio.run(drive())


def test_the_samples_keys_are_read_only_when_asked_for_and_are_the_live_ones(tmp_path):
    db, sid, live = record_live(tmp_path, RunConfig(samples=3, turns=20, seed=5, sim_delay=0))
    started = SessionReplay(db, sid).run_started
    keys = started.sample_keys
    assert len(keys) == 3 and keys._keys is None     # the count only: nothing read yet  # type: ignore[attr-defined]
    live_keys = next(e for e in live if isinstance(e, RunStarted)).sample_keys
    assert tuple(keys) == tuple(live_keys) and keys[1] == live_keys[1] and keys == live_keys
    assert keys != live_keys[:2]


def _finish_order(db, sid) -> list[tuple[int, int]]:
    """The session's stored turns in the order they finished, straight from the table."""
    return [tuple(r) for r in db.conn.execute("SELECT sample, turn FROM turns WHERE session_id = ? "
                                              "ORDER BY finished_at, sample, turn", [sid]).fetchall()]


def _finished_turns(events) -> list[tuple[int, int]]:
    return [(e.record.sample, e.record.turn) for e in events if isinstance(e, TurnFinished)]


@pytest.mark.parametrize("index_pages", [(1_000, 1_000), (2, 3)])
def test_a_session_with_gaps_in_its_turns_replays_the_turns_it_has(tmp_path, index_pages):
    """Opening takes the number of frames from each sample's first and last turn (issue 26: no count of every
    turn). A store with turns missing inside a sample (repaired by hand) has fewer: every way through the
    replay gives exactly the stored turns, ends with RunFinished, and the length comes right."""
    db, sid, _ = record_live(tmp_path, RunConfig(samples=2, turns=40, seed=4, sim_delay=0))
    db.conn.execute("DELETE FROM turns WHERE session_id = ? AND ((sample = 0 AND turn BETWEEN 5 AND 7) "
                    "OR (sample = 1 AND turn IN (20, 39)))", [sid])
    db.conn.commit()
    stored = _finish_order(db, sid)
    assert len(stored) == 75

    def opened() -> SessionReplay:
        return SessionReplay(db, sid, page_frames=5, cache_pages=2, index_pages=index_pages)

    stepped, replay = [], opened()
    while not replay.at_end:
        events = replay.step(7)
        assert events, "a step short of the end gave nothing"
        stepped.extend(events)
    assert _finished_turns(stepped) == stored and isinstance(stepped[-1], RunFinished)
    assert len(replay) == replay.position == 75 and replay.index_complete

    sought = opened().seek(10**6)
    assert _finished_turns(sought) == stored and isinstance(sought[-1], RunFinished)
    assert _finished_turns(opened().iter_events()) == stored

    player = ReplayPlayer(opened(), speed=math.inf)
    played = player.tick(0.0)
    assert _finished_turns(played) == stored and isinstance(played[-1], RunFinished) and not player.playing

    last = opened()
    assert (last.frame(-1).sample, last.frame(-1).turn) == stored[-1] and len(last) == 75
    near_end = opened()
    near_end.seek(74)
    assert not near_end.at_end and _finished_turns(near_end.step(1)) == [stored[-1]] and near_end.at_end


def test_a_forks_frames_are_counted_with_its_inherited_turns(tmp_path, capsys):
    """A fork stores its parent's turns up to the fork (inherited) and its own after: the replay's length,
    found without counting, is every stored turn, and the replay gives them all."""
    import sqlite3

    from lhe_tui.cli.main import main

    path = tmp_path / "s.db"
    assert main(["run", "--headless", "--provider", "sim", "--sim-delay", "0", "--turns", "12", "--samples", "2",
                 "--seed", "6", "--db", str(path)]) == 0
    parent = sqlite3.connect(path).execute("SELECT id FROM sessions").fetchone()[0]
    assert main(["fork", parent, "--turn", "5", "--sample", "1", "--turns", "9", "--headless", "--db", str(path)]) == 0
    capsys.readouterr()
    db = open_database(path)
    child = db.conn.execute("SELECT id FROM sessions WHERE parent_id = ?", [parent]).fetchone()[0]
    stored = _finish_order(db, child)
    inherited = db.conn.execute("SELECT COUNT(*) FROM turns WHERE session_id = ? AND inherited = 1", [child])
    assert inherited.fetchone()[0] > 0 and len(stored) > 0
    replay = SessionReplay(db, child)
    assert len(replay) == len(stored)
    assert _finished_turns(replay.iter_events()) == stored


def test_the_first_frame_shows_the_sessions_samples_and_its_number_of_turns(tmp_path):
    """`lhe-tui replay ID`'s first frame, from what opening read (no turn counted, no key read): the run's
    samples and the replay's total of turns."""
    from lhe_tui.ui.app import LheApp
    from lhe_tui.ui.widgets.replay_controls import ReplayControls

    db, sid, _ = record_live(tmp_path, RunConfig(samples=3, turns=25, seed=3, sim_delay=0))
    stored = len(_finish_order(db, sid))

    async def drive():
        app = LheApp(tmp_path / "s.db", replay=SessionReplay(db, sid), replay_autoplay=False)
        async with app.run_test(size=(160, 48)) as pilot:
            await pilot.pause()
            controls = app.screen.query_one(ReplayControls)
            text = controls.compose_text(app.screen.player, 120).plain
            assert f"turns 0/{stored} " in text and stored == 75
            assert len(app.screen.model.samples) == 3

    asyncio.run(drive())


def test_garbage_collection_paused_for_the_start_up_comes_back_once_the_replay_is_drawn(tmp_path):
    """`lhe-tui replay ID` starts with the garbage collector off (lhe_tui.ui.launch); the app turns it back on
    after the first frame, else a long replay would never free a cycle."""
    import gc

    from lhe_tui.ui.app import LheApp

    db, sid, _ = record_live(tmp_path, RunConfig(samples=2, turns=10, seed=3, sim_delay=0))

    async def drive() -> bool:
        app = LheApp(tmp_path / "s.db", replay=SessionReplay(db, sid), replay_autoplay=False)
        app.resume_gc = True
        async with app.run_test(size=(120, 40)) as pilot:
            for _ in range(50):
                await pilot.pause()
                if gc.isenabled():
                    break
            return gc.isenabled()

    gc.disable()
    try:
        assert asyncio.run(drive()) is True
    finally:
        gc.enable()


def test_a_replay_that_cannot_start_leaves_garbage_collection_on(tmp_path, capsys):
    import gc

    from lhe_tui.cli.main import main

    record_live(tmp_path, RunConfig(samples=1, turns=3, seed=3, sim_delay=0))
    assert main(["replay", "no-such-session", "--db", str(tmp_path / "s.db")]) != 0
    assert "no-such-session" in capsys.readouterr().err and gc.isenabled()
