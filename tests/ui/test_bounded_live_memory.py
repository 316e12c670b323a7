"""Issue 26 §4: the live view keeps full turn records only for the newest turns of each sample and reads
older ones back from the store when they are shown; what it keeps stays bounded while the run goes on."""

from __future__ import annotations

import gc
import weakref
from dataclasses import replace

from lhe_tui.core.config import Injection, RunConfig
from lhe_tui.core.events import TurnFinished
from lhe_tui.store.database import open_database
from lhe_tui.store.queries import load_turn_range, load_turns
from lhe_tui.store.replay import SessionReplay
from lhe_tui.ui import heap
from lhe_tui.ui.app import LheApp, start_live_run
from lhe_tui.ui.feed import RunModel, SampleState
from lhe_tui.ui.heap import HeapFreezer
from lhe_tui.ui.screens import run as run_screen
from lhe_tui.ui.turn_records import PAGE_ROWS, UNREAD, TurnRecords
from lhe_tui.ui.widgets.reply_view import describe_result
from lhe_tui.ui.widgets.turn_cells import turn_cells
from lhe_tui.ui.widgets.sum_chart import MOST_POINTS, sum_figure

from .conftest import ERRING, run_headless
from .test_run_view import SIZE, finish, wait_until
from .test_turn_table import record

KEEP = 50


def loader_from(records):
    calls = []

    def load(sample, first, last):
        calls.append((sample, first, last))
        return [r for r in records if first <= r.turn <= last]
    return load, calls


def test_old_records_are_dropped_and_read_back_a_page_at_a_time():
    records = [record(t) for t in range(1, 1001)]
    load, calls = loader_from(records)
    column = TurnRecords(sample=0, loader=load, keep=KEEP)
    most = 0
    for r in records:
        column.append(r)
        most = max(most, column.held)
    assert most <= 2 * KEEP and len(column) == 1000
    assert column.held < 2 * KEEP and not calls
    assert len(column._held) < 2 * KEEP                             # no slot left per dropped row either
    assert column.chart_columns() == ([r.turn for r in records], [r.gold_sum for r in records],
                                      [r.model_answer for r in records])   # 1,000 rows: the chart draws all
    assert column[-1] is records[-1] and not calls                  # the newest: held
    assert column[3] == records[3] and len(calls) == 1              # an old one: its page read back
    assert column[4] == records[4] and len(calls) == 1              # the same page: not read again
    assert calls[0] == (0, 1, PAGE_ROWS)
    assert list(column) == records and column[10:20] == records[10:20]
    assert column.row_of(500) == 499 and column.row_of(1001) is None


def test_a_row_changed_in_place_is_kept_and_a_failed_read_stands_in_from_the_columns():
    records = [record(t) for t in range(1, 301)]
    failing = []

    def load(sample, first, last):
        if failing:
            raise OSError("gone")
        return [r for r in records if first <= r.turn <= last]

    column = TurnRecords(sample=0, loader=load, keep=KEEP)
    column.extend(records)
    injected = replace(column[5], injected=True, history_answer=7)
    column[5] = injected
    assert column[5] is injected and column.chart_columns()[2][5] == records[5].model_answer
    failing.append(True)
    unread = TurnRecords(sample=0, loader=load, keep=KEEP)
    unread.extend(records)
    unread[5] = injected
    assert unread[5] is injected                                    # pinned: never read back
    stand_in = unread[6]                                            # dropped, and the store fails
    assert (stand_in.turn, stand_in.gold_sum, stand_in.model_answer) == (7, records[6].gold_sum,
                                                                         records[6].model_answer)
    assert stand_in.raw_reply == "" and stand_in.correct
    assert column.pop() is records[-1] and len(column) == 299 and column.chart_columns()[0][-1] == 299


def test_the_chart_keeps_a_bounded_evenly_spaced_sample_of_any_length():
    most, n = 16, 20_000
    def answer(t):   # none, past 64 bits, or near gold: the chart keeps each through every halving
        return None if t % 7 == 0 else 10**30 + t if t % 11 == 0 else t * 10 + t % 3

    records = [record(t, answer=answer(t), status="format" if t % 7 == 0 else "ok") for t in range(1, n + 1)]
    load, _ = loader_from(records)
    column = TurnRecords(sample=0, loader=load, keep=KEEP, chart_points=most)
    kept = 0
    for r in records:
        column.append(r)
        kept = max(kept, len(column._chart.rows))
        if r.turn in (5, 31, 32, 33, 1000, n):                      # short and long: always the last row, evenly
            turns, gold, answers = column.chart_columns(most)
            assert len(turns) <= most and turns[0] == 1 and turns[-1] == r.turn
            gaps = {b - a for a, b in zip(turns, turns[1:-1])}
            assert len(gaps) <= 1                                   # evenly spaced but for the last step
            assert all(turns[-1] - turns[-2] <= g for g in gaps)
            picked = [records[t - 1] for t in turns]
            assert (gold, answers) == ([p.gold_sum for p in picked], [p.model_answer for p in picked])
    assert kept < 2 * most                                          # never more rows kept for the chart
    assert column._turns is None                                    # turns that follow one another: no array


def test_a_skipped_turn_injection_and_pop_keep_the_chart_and_the_rows_right():
    records = [record(t) for t in [*range(1, 11), *range(20, 31)]]  # turns 11-19 missing (a resume's gap)
    column = TurnRecords(sample=0, keep=KEEP, chart_points=4)
    column.extend(records)
    assert column.row_of(20) == 10 and column.turn_at(10) == 20 and column.row_of(15) is None
    assert column.turn_at(-1) == 30 and column.row_of(30) == 20 and column.row_of(31) is None
    rows = column._chart.rows
    assert rows and all(r % column._chart.stride == 0 for r in rows)
    changed = rows[2]
    column[changed] = replace(records[changed], model_answer=-1)
    turns, _, answers = column.chart_columns(8)
    assert answers[turns.index(records[changed].turn)] == -1      # the chart shows the rewritten answer
    column.pop()
    column.pop()
    assert column.chart_columns(8)[0][-1] == 28 and len(column) == 19
    again = [record(29, answer=5), *(record(t, answer=-t) for t in range(30, 61))]
    column.extend(again)
    assert column.chart_columns(8)[2][-1] == -60
    now = {r.turn: r for r in [*records[:19], *again]}
    now[records[changed].turn] = replace(records[changed], model_answer=-1)
    turns, gold, answers = column.chart_columns(8)
    assert (gold, answers) == ([now[t].gold_sum for t in turns], [now[t].model_answer for t in turns])


def test_a_row_neither_read_back_nor_kept_by_the_chart_says_it_is_unread():
    records = [record(t) for t in range(1, 301)]

    def load(sample, first, last):
        raise OSError("gone")

    column = TurnRecords(sample=0, loader=load, keep=KEEP, chart_points=4)
    column.extend(records)
    kept = set(column._chart.rows)
    lost = next(row for row in range(len(records)) if row not in kept)
    stand_in = column[lost]
    assert (stand_in.turn, stand_in.answer_status, stand_in.model_answer) == (lost + 1, UNREAD, None)
    cells = [c.plain for c in turn_cells(stand_in, None, {}, show_values=False, update_ok=False)]
    assert cells[2:6] == ["—", "—", "—", UNREAD]                    # answer, gold, diff: unknown, not 0
    words, _ = describe_result(type("Stream", (), {"record": stand_in})())
    assert "could not be read back" in words and "miss" not in words  # not taken for a format miss
    on_chart = column[min(row for row in kept if row < len(records) - 2 * KEEP)]
    assert on_chart.answer_status == "ok" and on_chart.gold_sum == records[on_chart.turn - 1].gold_sum


def test_without_a_loader_every_record_is_kept():
    column = TurnRecords(sample=0, keep=KEEP)
    column.extend(record(t) for t in range(1, 501))
    assert column.held == 500


def test_the_run_model_stays_bounded_and_reads_the_store_back(db_path):
    sid = run_headless(db_path, RunConfig(samples=2, turns=900, seed=4, inject_at=(Injection(turn=5, offset=3),),
                                          **ERRING))
    db = open_database(db_path)
    model = RunModel(live=True)
    model.record_loader = lambda sample, first, last: load_turn_range(db, sid, sample, first, last)
    most = 0
    for event in SessionReplay(db, sid).seek(10**9):
        model.apply(event)
        if isinstance(event, TurnFinished):
            most = max(most, max(s.records.held for s in model.samples))
    assert model.turns_done == 1800
    assert most <= 2 * 256 + len(model.samples[0].injections)       # KEEP_NEWEST full records, twice at most
    for state in model.samples:
        stored = load_turns(db, sid, state.index)
        assert state.records.held <= 2 * 256 + PAGE_ROWS
        assert list(state.records) == stored                        # read back as stored, injection included
        assert state.records[4].injected and state.row_of(5) == 4
        assert [bool(f) for f in model.flags()[0][state.index]] == [r.correct for r in stored]
        assert list(sum_figure(state).series[-1].y) == [r.gold_sum for r in stored]


async def test_a_long_live_run_keeps_few_records_and_shows_any_turn(db_path):
    live = start_live_run(RunConfig(samples=2, turns=1200, seed=4, **ERRING), db_path)
    app = LheApp(db_path, live=live)
    async with app.run_test(size=SIZE) as pilot:
        screen = await finish(app, pilot)
        stored = load_turns(open_database(db_path), live.session_id, 0)
        assert [s.records.held for s in screen.model.samples] and \
            all(s.records.held < 2 * 256 for s in screen.model.samples)
        table = screen.table
        assert table.row_count == 1200
        table.action_first_row()
        await pilot.pause(0.2)
        assert table.cursor_record() == stored[0]
        reply = screen.reply.render_stream(screen._reply_stream(screen.model.sample(0))).plain
        assert "s0 · turn 1 ·" in reply and stored[0].raw_reply.strip() in reply
        screen.action_next_sample()                                 # a rebuilt table reads every row back
        await pilot.pause(0.3)
        assert table.sample == 1 and table.row_count == 1200
        assert table.get_row_at(0)[0].plain.strip() == "1"


def test_the_answer_column_keeps_none_and_huge_answers():
    records = [record(1), record(2, status="format", answer=None), record(3, answer=10**30), record(4, gold=-5)]
    column = TurnRecords(sample=0, keep=KEEP)
    column.extend(records)
    assert column.chart_columns() == ([1, 2, 3, 4], [10, 20, 30, -5], [10, None, 10**30, -5])
    column[1] = replace(records[1], model_answer=7)
    column.pop()
    assert column.chart_columns() == ([1, 2, 3], [10, 20, 30], [10, 7, 10**30])


class Cycle:
    """Garbage only the collector frees (as Textual's strips are, which keep themselves in their caches)."""

    def __init__(self) -> None:
        self.me = self


def test_the_heap_freezer_frees_cycles_that_died_after_they_were_frozen():
    freezer = HeapFreezer(collect_every=3)
    try:
        cycle = Cycle()
        ref = weakref.ref(cycle)
        freezer.tick()                     # frozen while alive
        del cycle
        gc.collect()
        assert ref() is not None           # a frozen cycle is out of the collector's reach...
        freezer.tick()
        freezer.tick()                     # ...until the freezer's full collection
        assert ref() is None and freezer.full_collections == 1 and freezer.freed >= 1
        assert gc.get_freeze_count() > 0   # and the heap is frozen again
    finally:
        HeapFreezer.release()


async def test_the_live_view_frees_its_frozen_garbage_while_it_is_up(db_path, monkeypatch):
    monkeypatch.setattr(run_screen, "FREEZE_EVERY_S", 0.05)
    monkeypatch.setattr(heap, "COLLECT_EVERY", 3)
    live = start_live_run(RunConfig(samples=2, turns=30, seed=4, **ERRING), db_path)
    app = LheApp(db_path, live=live)
    async with app.run_test(size=SIZE) as pilot:
        screen = await finish(app, pilot)
        cycle = Cycle()
        ref = weakref.ref(cycle)
        frozen = gc.get_freeze_count()
        await wait_until(pilot, lambda: gc.get_freeze_count() != frozen)   # the view's timer froze it
        del cycle
        await wait_until(pilot, lambda: ref() is None)   # a frozen cycle stayed until the view went (issue 26)
        assert screen.is_mounted


def test_the_sum_chart_of_a_long_sample_takes_a_bounded_number_of_turns():
    records = [record(t, gold=t * 3, status="format" if t % 7 == 0 else "ok") for t in range(1, 10_001)]
    state = SampleState(index=0, records=TurnRecords(records, sample=0, loader=lambda *_: [], keep=KEEP))
    figure = sum_figure(state)
    model, gold = figure.series
    assert len(gold.x) <= MOST_POINTS and gold.x[0] == 1 and gold.x[-1] == 10_000
    assert list(gold.y) == [3 * t for t in gold.x]                      # each point its own turn's values
    assert all(a == 3 * t and t % 7 for t, a in zip(model.x, model.y)) and len(model.x) < len(gold.x)
    assert sum_figure(SampleState(index=0, records=records)) == figure  # a list of records: the same figure
