"""Issue 17 in the TUI's own lists: the sessions screen and the compare screen show each session's cost, the
same text `lhe-tui sessions` and `lhe-tui compare` print (the same price files, the same totals: a fork's
inherited turns left out), and the sessions list keeps its key columns at 80x24."""

from __future__ import annotations

import sqlite3

import pytest
from textual.widgets import DataTable, Static

from lhe_tui.cli.main import main
from lhe_tui.analysis.compare import session_costs
from lhe_tui.core.config import RunConfig
from lhe_tui.core.prices import fmt_cost, load_prices
from lhe_tui.store.database import open_database
from lhe_tui.store.queries import list_sessions, session_token_totals
from lhe_tui.ui.app import LheApp
from lhe_tui.ui.screens.compare import CompareScreen
from lhe_tui.ui.screens.sessions import COST_COLUMN, SessionsScreen

from .conftest import ERRING, run_headless

PRICES = "[models.sim-1]\ninput = 3.0\noutput = 15.0\n"   # a made-up price, so the sim's counts have a cost


@pytest.fixture
def priced(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    path = tmp_path / "prices.toml"
    path.write_text(PRICES)
    monkeypatch.setenv("LHE_TUI_PRICES", str(path))
    return path


@pytest.fixture
def two_runs(db_path):
    first = run_headless(db_path, RunConfig(samples=2, turns=15, seed=1, **ERRING))
    second = run_headless(db_path, RunConfig(samples=3, turns=20, seed=2, **ERRING))
    return first, second


def cell(table: DataTable, row: int, column: str) -> str:
    return getattr(table.get_cell_at((row, table.get_column_index(column))), "plain", "")


def expected_cost(db_path, session_id: str) -> str:
    db = open_database(db_path, create=False, write=False)
    return fmt_cost(session_token_totals(db, session_id).cost(load_prices().for_model("sim-1")))


async def test_sessions_screen_shows_the_cost_the_cli_prints(db_path, two_runs, priced, capsys):
    first, second = two_runs
    # a fork's inherited turns were paid for by its parent: not in the fork's cost
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE turns SET inherited = 1 WHERE session_id = ? AND turn <= 5", [second])
        # (and its stored totals gone: a fork's are summed as its run ends, after its inherited turns are in)
        conn.execute("UPDATE sessions SET token_totals_json = NULL WHERE id = ?", [second])
    costs = {sid: expected_cost(db_path, sid) for sid in two_runs}
    assert all(c.startswith("$") for c in costs.values()) and costs[first] != costs[second]
    assert main(["sessions", "--db", str(db_path)]) == 0
    printed = capsys.readouterr().out
    app = LheApp(db_path)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SessionsScreen)
        table = screen.query_one(DataTable)
        shown = {cell(table, i, "id"): cell(table, i, COST_COLUMN) for i in range(table.row_count)}
        assert shown == costs
        db = open_database(db_path, create=False, write=False)
        assert shown == session_costs(db, list_sessions(db))     # the CLI's function
        assert all(cost in printed for cost in costs.values())   # and what `lhe-tui sessions` printed
        detail = str(screen.query_one("#session-detail", Static).render())
        assert f"cost {costs[second]}" in detail                 # the newest, highlighted first


async def test_the_cost_is_in_the_detail_at_80x24_and_the_key_columns_still_fit(db_path, two_runs, priced):
    app = LheApp(db_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        table = screen.query_one(DataTable)
        x, shown = 0, []
        for column in table.ordered_columns:
            x += column.get_render_width(table)
            if x <= table.size.width:
                shown.append(str(column.label))
        assert shown[:4] == ["id", "status", "task acc", "H_0.5"]
        detail = screen.query_one("#session-detail", Static)
        line = str(detail.render()).splitlines()[1]
        cost = expected_cost(db_path, two_runs[1])
        assert f"cost {cost}" in line and line.index(cost) + len(cost) <= detail.content_region.width


async def test_no_price_shows_a_dash_not_a_made_up_cost(db_path, two_runs, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("LHE_TUI_PRICES", raising=False)
    app = LheApp(db_path)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        assert {cell(table, i, COST_COLUMN) for i in range(table.row_count)} == {"-"}


async def test_a_bad_price_file_is_said_once_not_a_crash(db_path, two_runs, monkeypatch, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[models.sim-1]\ninput = 'free'\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("LHE_TUI_PRICES", str(bad))
    app = LheApp(db_path)
    async with app.run_test(size=(160, 30)) as pilot:
        await pilot.pause()
        screen = app.screen
        table = screen.query_one(DataTable)
        assert table.row_count == 2 and {cell(table, i, COST_COLUMN) for i in range(2)} == {"?"}
        detail = str(screen.query_one("#session-detail", Static).render())
        assert "bad price file" in detail and "input must be a number" in detail


async def test_compare_screen_shows_each_sessions_cost(db_path, two_runs, priced):
    first, second = two_runs
    app = LheApp(db_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("space", "space", "c")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        table = screen.query_one("#compare-table", DataTable)
        assert "cost" in [str(c.label) for c in table.ordered_columns]
        shown = {cell(table, i, "session"): cell(table, i, "cost") for i in range(table.row_count)}
        assert shown == {sid: expected_cost(db_path, sid) for sid in two_runs}
