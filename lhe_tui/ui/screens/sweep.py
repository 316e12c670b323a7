"""The sweep board (issue 24 §2): one row per run of a sweep, live or replayed.

Each row: the run's axes, status, turns x/N, sparklines of task and turn accuracy, H_0.5 so far, cost, and the
rate-limit wait holding it. `o` sorts by the next column (again: the other way), `/` filters the rows by text,
space marks a run and `c` compares the marked ones, `enter` opens the run's view (live: the one `lhe-tui run`
shows, injection and all; `escape` comes back and the run goes on; finished: its replay). The line at the top
sums the sweep up: runs by status, turns, cost and a forecast to finish. Quitting stops every run, keeping
their turns (`lhe-tui resume swp-…` continues).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from lhe_tui.reports.sweep_cells import run_cells
from lhe_tui.core.prices import fmt_cost
from lhe_tui.analysis.run_duration import fmt_duration
from lhe_tui.ui.screens.run import RunScreen

if TYPE_CHECKING:
    from lhe_tui.sweep.engine import SweepEngine
    from lhe_tui.sweep.live import SweepDriver

REFRESH_HZ = 4
MARK = "●"


class SweepRunScreen(RunScreen):
    """A sweep run's live view: leaving it (escape) goes back to the board, the run goes on."""

    BINDINGS = [Binding("escape", "back", "Board")]

    def action_back(self) -> None:
        self.app.pop_screen()

    def on_unmount(self, event: events.Unmount) -> None:
        """Not RunScreen's (which stops the run): the view goes, the run goes on."""
        import gc

        event.prevent_default()
        gc.unfreeze()
        if self.live is not None:
            self.live.unsubscribe(self.feed)   # type: ignore[attr-defined]


class SweepBoard(Screen):
    DEFAULT_CSS = """
    SweepBoard #sweep-summary { height: 1; background: $panel; padding: 0 1; text-style: bold; }
    SweepBoard #sweep-table { height: 1fr; }
    SweepBoard #sweep-filter { display: none; }
    SweepBoard.-filtering #sweep-filter { display: block; }
    """

    BINDINGS = [
        Binding("enter", "open", "Open", priority=True),
        Binding("space", "toggle_mark", "Mark"),
        Binding("c", "compare", "Compare"),
        Binding("o", "sort", "Sort"),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("x", "stop_all", "Stop all"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(self, engine: SweepEngine, driver: SweepDriver | None = None) -> None:
        super().__init__()
        self.engine = engine
        self.driver = driver
        self.marked: set[str] = set()
        self.sort_column: int | None = None
        self.sort_reverse = False
        self.filter_text = ""
        self.started_at = time.monotonic()
        self.started_done = sum(p.done for p in engine.progress.values())
        self.lag_samples: list[float] = []      # the refresh tick's lateness (bench/sweep_scale.py reads it)
        self._last_tick: float | None = None
        self._said_end = False
        self._shown: dict[str, tuple[str, ...]] = {}   # the cells on screen, per run

    def compose(self) -> ComposeResult:
        yield Static(id="sweep-summary")
        yield Input(placeholder="filter: text in any column (escape clears)", id="sweep-filter")
        yield DataTable(id="sweep-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        header, _ = run_cells(self.engine)
        table = self.query_one(DataTable)
        table.add_column(" ", key="mark", width=1)
        for name in header:
            table.add_column(name, key=name)
        self.header = header
        self.refresh_board()
        self.set_interval(1 / REFRESH_HZ, self.refresh_board, name="board")
        table.focus()

    def on_unmount(self) -> None:
        """Leaving the app stops every run of the sweep, keeping their turns (`resume swp-…` continues)."""
        if self.driver is not None and not self.driver.finished:
            self.driver.stop()
            self.driver.wait(timeout=60)

    # ---- rows --------------------------------------------------------------------------------------
    def rows(self) -> list[tuple[str, tuple[str, ...]]]:
        _, cells = run_cells(self.engine)
        rows = [(run.name, cell) for run, cell in zip(self.engine.plan.runs, cells)]
        if self.filter_text:
            needle = self.filter_text.lower()
            rows = [(name, cell) for name, cell in rows if any(needle in c.lower() for c in cell)]
        if self.sort_column is not None:
            column = self.sort_column
            rows.sort(key=lambda row: _sort_key(row[1][column]), reverse=self.sort_reverse)
        return rows

    def refresh_board(self) -> None:
        now = time.monotonic()
        if self._last_tick is not None:
            self.lag_samples.append(max(0.0, now - self._last_tick - 1 / REFRESH_HZ))
        self._last_tick = now
        table = self.query_one(DataTable)
        rows = self.rows()
        keys = [name for name, _ in rows]
        current = [str(key.value) for key in table.rows]
        if current != keys:
            cursor = table.cursor_row
            table.clear()
            for name, cells in rows:
                table.add_row(MARK if name in self.marked else "", *cells, key=name)
            if rows:
                table.move_cursor(row=min(cursor, len(rows) - 1))
        else:       # only the cells that changed (each update re-measures its column)
            for name, cells in rows:
                before = self._shown.get(name, ())
                mark = MARK if name in self.marked else ""
                if not before or before[0] != mark:
                    table.update_cell(name, "mark", mark)
                for i, (column, value) in enumerate(zip(self.header, cells), start=1):
                    if i >= len(before) or before[i] != value:
                        table.update_cell(name, column, value, update_width=True)
        self._shown = {name: (MARK if name in self.marked else "", *cells) for name, cells in rows}
        self.query_one("#sweep-summary", Static).update(self.summary())
        if self.driver is not None and self.driver.finished and not self._said_end:
            self._said_end = True
            self.notify(self.end_message(), title="sweep", timeout=15, markup=False)

    def summary(self) -> str:
        progress = self.engine.progress.values()
        done = sum(p.done for p in progress)
        total = sum(p.total for p in progress)
        cost = sum(p.cost for p in progress)
        counts: dict[str, int] = {}
        for p in progress:
            counts[p.status] = counts.get(p.status, 0) + 1
        states = ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in sorted(counts.items()))
        line = f"sweep {self.engine.plan.sweep_id} ({self.engine.plan.name}): {states}; {done:,}/{total:,} turns; " \
               f"cost {fmt_cost(cost) if any(p.price for p in self.engine.progress.values()) else '-'}"
        elapsed = time.monotonic() - self.started_at
        fresh = done - self.started_done
        if self.driver is not None and not self.driver.finished and fresh > 0 and elapsed > 1:
            line += f"; about {fmt_duration((total - done) * elapsed / fresh)} to go"
        if self.filter_text:
            line += f"  [filter: {self.filter_text}]"
        return line

    def end_message(self) -> str:
        if self.driver is not None and self.driver.error is not None:
            return f"the sweep stopped: {self.driver.error}"
        left = [p.name for p in self.engine.progress.values() if p.status not in ("finished", "finished_with_errors",
                                                                                      "failed")]
        if left:
            return f"{len(left)} runs not finished: `lhe-tui resume {self.engine.plan.sweep_id}` continues"
        return f"sweep finished: `lhe-tui plot {self.engine.plan.sweep_id} --kind horizon --by model -o h.svg`"

    def _cursor_name(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return str(key.value)

    # ---- actions -----------------------------------------------------------------------------------
    def action_open(self) -> None:
        if isinstance(self.focused, Input):     # enter in the filter box: back to the rows, the filter kept
            self.query_one(DataTable).focus()
            return
        name = self._cursor_name()
        if name is None:
            return
        if self.driver is not None and not self.driver.finished:
            handle = self.driver.handles[name]
            if not handle.finished:
                self.app.push_screen(SweepRunScreen(live=handle))   # type: ignore[arg-type]
                return
        session_id = self.engine.progress[name].session_id
        if session_id is None:
            self.notify(f"run {name} has not started", title="sweep", markup=False)
            return
        from lhe_tui.store.replay import SessionReplay

        player = self.app._player(SessionReplay(self.app.db, session_id))   # type: ignore[attr-defined]
        self.app.push_screen(SweepRunScreen(player=player))

    def action_toggle_mark(self) -> None:
        name = self._cursor_name()
        if name is not None:
            self.marked.symmetric_difference_update({name})
            self.refresh_board()

    def action_compare(self) -> None:
        ids = [self.engine.progress[n].session_id for n in self.engine.progress if n in self.marked]
        ids = [sid for sid in ids if sid]
        if len(ids) < 2:
            self.notify("mark two or more started runs with space, then c", title="compare", markup=False)
            return
        self.app.open_compare(ids)   # type: ignore[attr-defined]

    def action_sort(self) -> None:
        n = len(self.header)
        if self.sort_column is None:
            self.sort_column, self.sort_reverse = 0, False
        elif not self.sort_reverse:
            self.sort_reverse = True
        else:
            self.sort_column, self.sort_reverse = (self.sort_column + 1) % n, False
        self.notify(f"sorted by {self.header[self.sort_column]}{' (descending)' if self.sort_reverse else ''}",
                    title="sort", timeout=2, markup=False)
        self.refresh_board()

    def action_filter(self) -> None:
        self.add_class("-filtering")
        self.query_one(Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        self.refresh_board()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one(DataTable).focus()

    def action_clear_filter(self) -> None:
        self.filter_text = ""
        self.query_one(Input).value = ""
        self.remove_class("-filtering")
        self.query_one(DataTable).focus()
        self.refresh_board()

    def action_stop_all(self) -> None:
        if self.driver is not None and not self.driver.finished:
            self.driver.stop()
            self.notify("stopping every run (their turns are kept)", title="sweep", markup=False)


def _sort_key(value: str) -> tuple:
    """Numbers as numbers (`12`, `>40`, `5/60`, `$0.12`), the rest as text."""
    text = value.lstrip(">$").split("/")[0].replace(",", "")
    try:
        return (0, float(text), value)
    except ValueError:
        return (1, 0.0, value)
