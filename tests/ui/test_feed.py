"""The UI's event buffer and run model (no Textual): applying, undoing, filtering token deltas."""

from __future__ import annotations

import asyncio

from lhe_tui.core.config import RunConfig
from lhe_tui.core.events import TokenDelta, TurnFinished, TurnStarted
from lhe_tui.runs.session import prepare_run
from lhe_tui.store.database import open_database
from lhe_tui.store.replay import SessionReplay
from lhe_tui.store.replay_player import ReplayPlayer
from lhe_tui.ui.feed import EventFeed, RunModel

from .conftest import ERRING


def bools(flags) -> tuple[list[list[bool]], ...]:
    """The model's flags (a byte a turn) as booleans."""
    return tuple([[bool(f) for f in sample] for sample in kind] for kind in flags)


def snapshot(model: RunModel):
    # the flags the model keeps beside its records (for the metrics) say what the records say
    assert bools(model.flags()) == ([[r.correct for r in s.records] for s in model.samples],
                                    [[r.step_correct for r in s.records] for s in model.samples])
    return (model.status, model.turns_done, model.tokens_in, model.tokens_out,
            [(s.status, s.first_error, [(r.turn, r.injected, r.history_answer) for r in s.records],
              sorted(s.injections)) for s in model.samples], bools(model.flags()))


def test_stepping_back_by_undo_equals_rebuilding_from_the_start(db_path):
    db = open_database(db_path)
    prepared = prepare_run(RunConfig(samples=2, turns=25, seed=4, concurrency=1, **ERRING), db)

    def inject(event):
        if isinstance(event, TurnFinished) and event.record.turn in (5, 12) and event.record.sample == 0:
            prepared.runner.inject(0, offset=3)

    prepared.bus.subscribe(inject)
    asyncio.run(prepared.runner.run())
    replay = SessionReplay(db, prepared.session_id)
    player = ReplayPlayer(replay, playing=False)
    model = RunModel(live=False)
    model.apply_all(replay.seek(len(replay)))
    assert model.status == "finished" and len(model.samples[0].injections) == 2
    for position in range(len(replay) - 1, -1, -3):
        events, backward = player.goto(position)
        assert backward
        model.undo_all(events)
        fresh = RunModel(live=False)
        fresh.apply_all(SessionReplay(db, prepared.session_id).seek(position))
        assert snapshot(model) == snapshot(fresh), position


def test_feed_keeps_only_the_watched_samples_token_deltas():
    feed = EventFeed()
    feed.selected = 1
    feed(TokenDelta(sample=0, turn=1, kind="text", text="a"))
    feed(TokenDelta(sample=1, turn=1, kind="text", text="b"))
    feed(TurnStarted(sample=0, turn=1, keys=("x",)))
    drained = feed.drain()
    assert [type(e).__name__ for e in drained] == ["TokenDelta", "TurnStarted"]
    assert drained[0].sample == 1 and feed.dropped_deltas == 1 and len(feed) == 0


def test_stream_shows_deltas_then_the_finished_reply():
    model = RunModel()
    model.watch(0)
    model.apply(TurnStarted(sample=0, turn=3, keys=("k",)))
    model.apply(TokenDelta(sample=0, turn=3, kind="reasoning", text="thinking"))
    model.apply(TokenDelta(sample=0, turn=3, kind="text", text="<answer>"))
    assert model.stream.turn == 3 and model.stream.reasoning == ["thinking"] and model.stream.record is None
    model.apply(TokenDelta(sample=0, turn=2, kind="text", text="stale"))   # an older turn's delta is ignored
    assert model.stream.text == ["<answer>"]


def test_the_live_views_metrics_read_the_models_flags_as_the_cli_reads_the_store(db_path):
    """The model keeps a byte a turn for the flags (issue 26); the decay computed from them is the one the
    stored turns give (a bytes copy, which numpy reads as one scalar, or 0/1 read as ints, would differ)."""
    from lhe_tui.analysis.decay_curves import compute_decay
    from lhe_tui.store.queries import session_flags

    db = open_database(db_path)
    prepared = prepare_run(RunConfig(samples=4, turns=60, seed=5, **ERRING), db)
    asyncio.run(prepared.runner.run())
    model = RunModel(live=False)
    model.apply_all(SessionReplay(db, prepared.session_id).seek(10**6))
    live = compute_decay(*model.flags(), with_ci=True, status=model.statuses(), turns=model.n_turns)
    flags = session_flags(db, prepared.session_id, None)
    assert all(isinstance(f, bool) for sample in flags.correct for f in sample)
    stored = compute_decay(flags.correct, flags.update, with_ci=True, status=flags.status, turns=flags.turns)
    assert any(e is not None for e in live.summary.first_errors)
    assert live == stored
