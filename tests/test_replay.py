"""Replay: a stored session comes back as the same events a live run emitted, behind a cursor and a clock."""

from __future__ import annotations

import asyncio
import math

import pytest

from lhe_tui.runner.config import RunConfig
from lhe_tui.runner.events import (Injected, RunFinished, RunStarted, SampleFinished, TokenDelta, TurnFinished,
                                   TurnStarted)
from lhe_tui.session import prepare_run
from lhe_tui.store.database import open_database
from lhe_tui.store.replay import SPEEDS, ReplayPlayer, SessionReplay


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
    from lhe_tui.errors import LheError

    with pytest.raises(LheError):
        SessionReplay(db, "nope")
