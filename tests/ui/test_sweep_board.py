"""The sweep board (issue 24 §2): rows per run, the live view of a run and back, sort, filter, quit."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from textual.widgets import DataTable

from lhe_tui.store.database import open_database
from lhe_tui.sweep.engine import SweepEngine
from lhe_tui.sweep.live import SweepDriver
from lhe_tui.sweep.plan import load_plan, plan_sweep, store_plan
from lhe_tui.sweep.spec import parse_spec
from lhe_tui.ui.app import LheApp
from lhe_tui.ui.screens.sweep import SweepBoard, SweepRunScreen
from tests.ui.test_rough_edges_app import wait_until


def stored_sweep(db_path: Path, *, turns: int = 8, delay: float = 0.0) -> str:
    spec = parse_spec({"base": {"samples": 2, "turns": turns, "seed": 2, "sim-delay": delay},
                       "axes": {"model": [{"label": "weak", "model": "sim-weak", "sim-error": 0.1},
                                          {"label": "strong", "model": "sim-strong", "sim-error": 0.0}],
                                "k": [1, 2]}})
    plan = plan_sweep(spec, parallel=4)
    db = open_database(db_path)
    store_plan(db, plan)
    db.conn.close()
    return plan.sweep_id


def statuses(db_path: Path) -> dict[str, str]:
    with sqlite3.connect(db_path) as conn:
        return dict(conn.execute("SELECT sweep_run, status FROM sessions").fetchall())


def board_rows(app) -> list[list[str]]:
    table = app.screen.query_one(DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def test_the_board_runs_the_sweep_and_opens_a_finished_run(db_path):
    sweep_id = stored_sweep(db_path)
    driver = SweepDriver(db_path, sweep_id)
    app = LheApp(db_path, sweep=(driver.engine, driver))
    async with app.run_test(size=(150, 30)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, SweepBoard))
        await wait_until(pilot, lambda: driver.finished, timeout=60)
        await pilot.pause(0.4)
        rows = board_rows(app)
        assert [r[1:4] for r in rows] == [["weak", "1", "finished"], ["weak", "2", "finished"],
                                          ["strong", "1", "finished"], ["strong", "2", "finished"]]
        assert [r[4] for r in rows] == ["16/16"] * 4
        assert rows[2][7] == ">8"                                  # never wrong: H_0.5 past the 8 turns
        assert "4 finished" in str(app.screen.query_one("#sweep-summary").render())
        await pilot.press("down", "down", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, SweepRunScreen))
        assert app.screen.player is not None and app.screen.player.replay.session_id in statuses_ids(db_path, "strong/1")
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, SweepBoard))
    assert set(statuses(db_path).values()) == {"finished"}


def statuses_ids(db_path: Path, run: str) -> list[str]:
    with sqlite3.connect(db_path) as conn:
        return [r[0] for r in conn.execute("SELECT id FROM sessions WHERE sweep_run = ?", [run])]


async def test_a_run_opened_live_goes_on_after_escape_and_quitting_stops_the_rest(db_path):
    sweep_id = stored_sweep(db_path, turns=400, delay=0.003)
    driver = SweepDriver(db_path, sweep_id)
    app = LheApp(db_path, sweep=(driver.engine, driver))
    async with app.run_test(size=(150, 30)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, SweepBoard))
        await wait_until(pilot, lambda: driver.engine.progress["weak/1"].done > 4, timeout=30)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, SweepRunScreen))
        screen = app.screen
        assert screen.live is driver.handles["weak/1"]
        await wait_until(pilot, lambda: screen.model.turns_done > 0 or any(s.records for s in screen.model.samples))
        assert screen.model.config.get("model") == "sim-weak"        # the run's start reached a view opened mid-run
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, SweepBoard))
        before = driver.engine.progress["weak/1"].done
        await wait_until(pilot, lambda: driver.engine.progress["weak/1"].done > before + 4, timeout=30)
        assert not driver.handles["weak/1"].finished                   # leaving the view did not stop it
    # quitting the app stopped every run, keeping its turns
    assert driver.finished
    assert set(statuses(db_path).values()) == {"interrupted"}
    db = open_database(db_path, create=False, write=False)
    engine = SweepEngine(load_plan(db, sweep_id), db)
    assert sorted(w.run.name for w in engine.work) == ["strong/1", "strong/2", "weak/1", "weak/2"]
    assert all(w.resume for w in engine.work)


async def test_sort_and_filter(db_path):
    sweep_id = stored_sweep(db_path)
    driver = SweepDriver(db_path, sweep_id)
    app = LheApp(db_path, sweep=(driver.engine, driver))
    async with app.run_test(size=(150, 30)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, SweepBoard))
        await wait_until(pilot, lambda: driver.finished, timeout=60)
        await pilot.press("o")                      # by the first column (model), ascending
        await pilot.pause(0.3)
        assert [r[1] for r in board_rows(app)] == ["strong", "strong", "weak", "weak"]
        await pilot.press("o")                      # the same, descending
        await pilot.pause(0.3)
        assert [r[1] for r in board_rows(app)] == ["weak", "weak", "strong", "strong"]
        await pilot.press("slash", *"strong")
        await pilot.pause(0.3)
        assert [r[1:3] for r in board_rows(app)] == [["strong", "1"], ["strong", "2"]]
        await pilot.press("enter")                  # the filter is kept, the rows have the keys
        await pilot.pause(0.3)
        assert isinstance(app.screen, SweepBoard) and len(board_rows(app)) == 2
        await pilot.press("escape")                 # clears it
        await pilot.pause(0.3)
        assert len(board_rows(app)) == 4


async def test_replay_of_a_finished_sweep_shows_its_runs(db_path):
    sweep_id = stored_sweep(db_path)
    driver = SweepDriver(db_path, sweep_id)
    driver.start()
    assert driver.wait(60)
    db = open_database(db_path, create=False, write=False)
    app = LheApp(db_path, sweep=(SweepEngine(load_plan(db, sweep_id), db), None))
    async with app.run_test(size=(150, 30)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, SweepBoard))
        await pilot.pause(0.3)
        rows = board_rows(app)
        assert [r[3] for r in rows] == ["finished"] * 4 and [r[4] for r in rows] == ["16/16"] * 4
        await pilot.press("space", "down", "space", "c")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "CompareScreen")


def test_board_snapshot_of_a_replayed_sweep(tmp_path, snap_compare):
    from dataclasses import replace

    from lhe_tui.sweep.engine import SweepEngine as Engine

    path = tmp_path / "snap.db"
    spec = parse_spec({"name": "snap", "base": {"samples": 4, "turns": 30, "seed": 3, "sim-delay": 0},
                       "axes": {"model": [{"label": "weak", "model": "sim-weak", "sim-error": 0.08},
                                          {"label": "strong", "model": "sim-strong", "sim-error": 0.0}],
                                "mode": ["direct", "cot"]}})
    plan = replace(plan_sweep(spec), sweep_id="swp-20260101-120000-snap")
    db = open_database(path)
    store_plan(db, plan)
    import asyncio

    asyncio.run(Engine(plan, db).run())
    app = LheApp(path, sweep=(Engine(load_plan(db, plan.sweep_id), db), None))

    async def settle(pilot) -> None:
        await pilot.pause(0.5)

    assert snap_compare(app, terminal_size=(100, 14), run_before=settle)
