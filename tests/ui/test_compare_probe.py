"""Pilot tests of the compare screen, the probe view and resuming from the sessions screen (issues 4 and 6)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Static

from lhe_tui.reports.probe_tables import PROBE_COLUMNS, probe_cells
from lhe_tui.reports.compare_tables import compare_cells
from lhe_tui.analysis.compare import compare_rows, default_turns, session_curves
from lhe_tui.runs.probe import prepare_probe, probe_table
from lhe_tui.core.config import Injection, RunConfig
from lhe_tui.core.events import TurnFinished
from lhe_tui.runs.session import prepare_run
from lhe_tui.store.database import open_database
from lhe_tui.ui.app import LheApp, start_live_run
from lhe_tui.ui.resume import ALIVE_SECONDS, resume_problem
from lhe_tui.ui.screens.compare import CompareScreen
from lhe_tui.ui.screens.probe import ProbeScreen
from lhe_tui.ui.screens.run import RunScreen
from lhe_tui.ui.screens.sessions import MARK, SessionsScreen
from lhe_tui.ui.widgets.compare_plot import ComparePlot
from lhe_tui.ui.widgets.probe_plot import ProbePlot

from .conftest import ERRING, freeze_session, run_headless

SIZE = (120, 40)


def plain(cell) -> str:
    return getattr(cell, "plain", str(cell))


def table_rows(table: DataTable) -> list[list[str]]:
    return [[plain(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def notes(app) -> list[str]:
    return [n.message for n in app._notifications]


async def probe_session(db_path: Path, **config) -> str:
    """A finished probe: T = 12, rates 0, 0.5, 1, six samples per rate."""
    db = open_database(db_path)
    base = dict(samples=6, seed=3, sim_delay=0.0)
    prepared = prepare_probe(RunConfig(**{**base, **config}), db, 12, (0.0, 0.5, 1.0))
    await prepared.runner.run()
    db.conn.close()
    return prepared.session_id


async def interrupted_session(db_path: Path, config: RunConfig, after: int) -> str:
    """A run stopped after `after` finished turns: the session ends interrupted, as with x in the TUI."""
    db = open_database(db_path)
    prepared = prepare_run(config, db, stream_deltas=False)
    seen = 0

    def stop_after(event) -> None:
        nonlocal seen
        if isinstance(event, TurnFinished):
            seen += 1
            if seen == after:
                prepared.runner.stop()

    prepared.bus.subscribe(stop_after)
    await prepared.runner.run()
    db.conn.close()
    return prepared.session_id


def stored(db_path: Path, session_id: str) -> tuple[int, str]:
    with sqlite3.connect(db_path) as conn:
        count = conn.execute("SELECT COUNT(*) FROM turns WHERE session_id = ?", [session_id]).fetchone()[0]
        status = conn.execute("SELECT status FROM sessions WHERE id = ?", [session_id]).fetchone()[0]
    return count, status


@pytest.fixture
def two_runs(db_path: Path) -> tuple[str, str]:
    """The same sim model, without and with an injection at turn 10 (sessions listed newest first)."""
    plain_run = run_headless(db_path, RunConfig(samples=4, turns=40, seed=2, **ERRING))
    injected = run_headless(db_path, RunConfig(samples=4, turns=40, seed=2, inject_at=(Injection(turn=10, offset=5),),
                                               **ERRING))
    return plain_run, injected


async def loaded(pilot) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()     # the curves / probe tables load in a thread
    await pilot.pause()


async def test_marking_two_sessions_and_c_compares_them(db_path, two_runs):
    plain_run, injected = two_runs
    app = LheApp(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        sessions = app.screen
        assert isinstance(sessions, SessionsScreen)
        table = sessions.query_one(DataTable)
        assert table.get_row_at(0)[0].plain == injected          # newest first
        await pilot.press("space", "space")                     # mark, move down, mark
        assert sessions.marked == [injected, plain_run]
        assert [plain(table.rows[k].label) for k in table.rows] == [MARK, MARK]
        title = str(sessions.query_one("#sessions-title", Static).content)
        assert title.startswith("2 sessions stored in ") and "2 marked" in title
        await pilot.press("c")
        await loaded(pilot)
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        db = open_database(db_path)
        curves = [session_curves(db, sid) for sid in (injected, plain_run)]
        turns = default_turns(40)
        expected = compare_rows(curves, turns, cost=True)
        compare = screen.query_one("#compare-table", DataTable)
        assert [str(c.label) for c in compare.ordered_columns] == list(expected[0])
        assert table_rows(compare) == [list(compare_cells(row)) for row in expected]
        assert screen.query_one("#turns-input", Input).value == ",".join(map(str, turns))
        # one legend entry per session; task and turn curves for each (and the 0.5 guide) under "both"
        plot = screen.query_one(ComparePlot)
        figure = plot.figure
        assert [s.label for s in figure.series if s.label] == [e.legend for e in plot.entries]
        assert len(plot.entries) == 2 and plot.entries[0].legend.endswith("inject@10")
        assert len(figure.series) == 1 + 2 * 2
        assert figure.series[2].y == curves[0].task_curve and figure.series[1].y == curves[0].turn_curve
        assert len({s.color for s in figure.series if s.label}) == 2
        await pilot.press("t")
        assert plot.curves == "task" and [s.y for s in plot.figure.series[1:]] == [c.task_curve for c in curves]
        await pilot.press("t")
        assert plot.curves == "turn" and [s.y for s in plot.figure.series] == [c.turn_curve for c in curves]
        await pilot.press("enter")                            # the highlighted row: its replay
        await loaded(pilot)
        assert isinstance(app.screen, RunScreen) and app.screen.player.replay.session_id == injected
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is sessions and sessions.marked == [injected, plain_run]   # marks survive


async def test_compare_turns_input_reports_bad_input_in_one_line(db_path, two_runs):
    app = LheApp(db_path, compare=list(two_runs))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        compare = screen.query_one("#compare-table", DataTable)
        before = table_rows(compare)
        error = screen.query_one("#turns-error", Static)
        await pilot.press("a")
        assert isinstance(app.focused, Input)
        for bad, says in (("5,x", "comma-separated"), ("0,3", "at least 1")):
            app.focused.value = bad
            await pilot.press("enter")
            await pilot.pause()
            message = str(error.content)
            assert says in message and "\n" not in message and "--at" not in message
            assert table_rows(compare) == before                  # the table keeps the last good turns
        app.focused.value = "5, 20"
        await pilot.press("enter")
        await pilot.pause()
        assert str(error.content) == ""
        # issue 13: each @t column also says how many samples the point counts (n)
        assert [str(c.label) for c in compare.ordered_columns][-2:] == ["@5 turn/task/n", "@20 turn/task/n"]
        db = open_database(db_path)
        expected = compare_rows([session_curves(db, sid) for sid in two_runs], [5, 20], cost=True)
        assert table_rows(compare) == [list(compare_cells(row)) for row in expected]
        assert app.focused is compare


async def test_compare_needs_marks_and_refuses_runs_mixed_with_probes(db_path, two_runs):
    probe = await probe_session(db_path)
    app = LheApp(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        sessions = app.screen
        await pilot.press("c")
        await pilot.pause()
        assert app.screen is sessions and any("mark two or more" in m for m in notes(app))
        await pilot.press("space", "space")                      # the probe (newest) and a run
        assert sessions.marked[0] == probe
        await pilot.press("c")
        await pilot.pause()
        assert app.screen is sessions and any("are probes" in m for m in notes(app))


async def test_enter_on_a_probe_session_shows_its_rate_table_and_plot(db_path, stored_session):
    probe = await probe_session(db_path)
    app = LheApp(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.screen.query_one(DataTable).get_row_at(0)[0].plain == probe
        await pilot.press("enter")
        await loaded(pilot)
        screen = app.screen
        assert isinstance(screen, ProbeScreen)
        rows = probe_table(open_database(db_path), probe)
        table = screen.query_one("#probe-table", DataTable)
        assert [str(c.label) for c in table.ordered_columns] == list(PROBE_COLUMNS)
        assert table_rows(table) == [list(probe_cells(r)) for r in rows]
        figure = screen.query_one(ProbePlot).figure
        line = next(s for s in figure.series if s.label == "accuracy at T")
        assert list(line.x) == [0.0, 0.5, 1.0] and list(line.y) == [r.accuracy for r in rows]
        bars = [s for s in figure.series if s.color == "muted"]          # one CI bar per rate
        assert [(s.y[0], s.y[1]) for s in bars] == [(r.ci_low, r.ci_high) for r in rows]
        assert "target turn 12" in str(screen.query_one("#probe-title", Static).content)
        await pilot.press("r")                                          # its turns, in the run view
        await loaded(pilot)
        assert isinstance(app.screen, RunScreen) and app.screen.player.replay.session_id == probe


async def test_marked_probes_overlay_in_the_probe_view(db_path):
    first, second = await probe_session(db_path), await probe_session(db_path, seed=9)
    app = LheApp(db_path, compare=[first, second])
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        screen = app.screen
        assert isinstance(screen, ProbeScreen)
        table = screen.query_one("#probe-table", DataTable)
        assert table.row_count == 6 and str(table.ordered_columns[0].label) == "session"
        labelled = [s for s in screen.query_one(ProbePlot).figure.series if s.label and s.label != "95% CI"]
        assert len(labelled) == 2 and len({s.color for s in labelled}) == 2


async def test_a_live_probe_shows_its_results_when_it_ends(db_path):
    live = start_live_run(RunConfig(samples=4, seed=1, sim_delay=0.0), db_path, probe=(10, (0.0, 1.0)))
    app = LheApp(db_path, live=live)
    async with app.run_test(size=SIZE) as pilot:
        deadline = time.monotonic() + 30
        while not isinstance(app.screen, ProbeScreen) and time.monotonic() < deadline:
            await pilot.pause(0.1)
        assert isinstance(app.screen, ProbeScreen)
        await loaded(pilot)
        rows = probe_table(open_database(db_path), live.session_id)
        assert [r.n for r in rows] == [4, 4]
        assert table_rows(app.screen.query_one("#probe-table", DataTable)) == [list(probe_cells(r)) for r in rows]
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, RunScreen)


async def test_resume_key_finishes_an_interrupted_run_and_refuses_a_finished_one(db_path, stored_session):
    config = RunConfig(samples=3, turns=50, seed=5, **ERRING)
    interrupted = await interrupted_session(db_path, config, after=40)
    count, status = stored(db_path, interrupted)
    assert status == "interrupted" and 0 < count < 150
    app = LheApp(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        sessions = app.screen
        assert sessions.selected_id() == interrupted
        await pilot.press("R")
        await pilot.pause()
        run = app.screen
        assert isinstance(run, RunScreen) and run.live is not None and run.live.resumed
        assert run.live.session_id == interrupted
        await app.workers.wait_for_complete()
        await pilot.pause(0.3)
        assert stored(db_path, interrupted) == (150, "finished")
        assert len(run.model.samples) == 3 and all(len(s.records) == 50 for s in run.model.samples)
        await pilot.press("s")
        await pilot.pause()
        assert app.screen is sessions
        await pilot.press("R")                                   # now finished: nothing to resume
        await pilot.pause()
        assert app.screen is sessions and any("nothing to resume" in m for m in notes(app))
        await pilot.press("down")
        assert sessions.selected_id() == stored_session
        await pilot.press("R")
        await pilot.pause()
        assert app.screen is sessions and sum("nothing to resume" in m for m in notes(app)) == 2
    assert stored(db_path, stored_session) == (180, "finished")


async def test_resume_refuses_probes_and_a_second_run(db_path):
    probe = await probe_session(db_path)
    interrupted = await interrupted_session(db_path, RunConfig(samples=1, turns=400, seed=5, sim_delay=0.002), after=5)
    app = LheApp(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.resume_session(probe) is False
        await pilot.pause()
        assert any("only runs can be resumed" in m for m in notes(app))
        assert app.resume_session(interrupted) is True
        await pilot.pause()
        first = app.screen
        assert app.resume_session(interrupted) is False and app.screen is first
        await pilot.pause()
        assert any("already going" in m for m in notes(app))
        first.action_stop()
        await app.workers.wait_for_complete()


def test_a_running_session_with_a_fresh_turn_looks_alive(db_path, stored_session):
    db = open_database(db_path)
    with db.conn:
        db.execute("UPDATE sessions SET status = 'running' WHERE id = ?", [stored_session])
        db.execute("DELETE FROM turns WHERE session_id = ? AND turn > 30", [stored_session])
    last = db.execute("SELECT MAX(finished_at) FROM turns WHERE session_id = ?", [stored_session]).fetchone()[0]
    assert "looks alive" in resume_problem(db, stored_session, now=last + 1)
    assert resume_problem(db, stored_session, now=last + ALIVE_SECONDS + 1) is None


# ---- snapshots -----------------------------------------------------------------------------------------
SNAP_SIZE = (100, 30)


@pytest.fixture
def frozen_pair(tmp_path: Path, monkeypatch) -> tuple[Path, list[str]]:
    monkeypatch.chdir(tmp_path)
    path = Path("ui.db")
    ids = ["20260101-120000-base", "20260101-120100-heal"]
    run_headless(path, RunConfig(samples=4, turns=60, seed=4, **ERRING), session_id=ids[0])
    run_headless(path, RunConfig(samples=4, turns=60, seed=4, induced_error_rate=0.1, **ERRING), session_id=ids[1])
    for sid in ids:
        freeze_session(path, sid)
    return path, ids


def test_compare_screen_snapshot(frozen_pair, snap_compare, plots_in_render):
    path, ids = frozen_pair

    async def settle(pilot) -> None:
        await loaded(pilot)
        pilot.app.screen.query_one(Input).cursor_blink = False

    assert snap_compare(LheApp(path, compare=ids, compare_turns=[10, 30]), terminal_size=SNAP_SIZE,
                        run_before=settle)


def test_probe_screen_snapshot(tmp_path, monkeypatch, snap_compare, plots_in_render):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("lhe_tui.runs.probe.new_session_id", lambda: "20260101-120000-prob")
    path = Path("ui.db")
    probe = asyncio.run(probe_session(path))
    freeze_session(path, probe)
    assert snap_compare(LheApp(path, compare=[probe]), terminal_size=SNAP_SIZE, run_before=loaded)


def test_compare_tui_flag_fails_on_bad_input_before_the_app(db_path, two_runs, capsys, monkeypatch):
    from lhe_tui.cli.args import build_parser
    from lhe_tui.cli.main import main

    assert build_parser().parse_args(["compare", "a", "b", "--tui"]).tui is True
    monkeypatch.setattr(LheApp, "run", lambda *a, **kw: pytest.fail("the app started"))
    assert main(["compare", two_runs[0], "nope", "--tui", "--db", str(db_path)]) == 2
    assert main(["compare", *two_runs, "--at", "x", "--tui", "--db", str(db_path)]) == 2
    err = capsys.readouterr().err
    assert "no session 'nope'" in err and "--at expects" in err
