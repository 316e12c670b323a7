"""Compare sessions: their task- and turn-accuracy curves in one plot and the table `lhe-tui compare` prints.

The curves load in a thread (a long session's flags take a while to read); the table is `compare_rows`
formatted by `compare_cells`, the same text as the headless command. The turns it reports accuracy at
come from the input above it ("10,20,50", parsed by `parse_turns`; empty means the CLI's default).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Label, Static

from lhe_tui.reports.compare_tables import compare_cells
from lhe_tui.analysis.compare import (compare_rows, default_turns, manual_injection_turns, no_data_note, parse_turns,
                             policy_label, session_curves)
from lhe_tui.common.errors import LheError
from lhe_tui.store.database import open_database
from lhe_tui.store.queries import load_session
from lhe_tui.ui.screens.stored_results import StoredResultsScreen
from lhe_tui.core.lineage import short_id
from lhe_tui.ui.widgets.compare_plot import CURVES, CompareEntry, ComparePlot, session_colour

if TYPE_CHECKING:
    from sqlite_utils import Database


def load_entries(db_path, session_ids: list[str]) -> list[CompareEntry]:
    """The sessions' curves and legend labels, read on a connection of the calling thread."""
    db = open_database(db_path, create=False, write=False)
    try:
        entries = []
        for session_id in session_ids:
            config = load_session(db, session_id)["config"]
            entries.append(CompareEntry(curves=session_curves(db, session_id),
                                        legend=f"{short_id(session_id)} "
                                               f"{policy_label(config, manual_injection_turns(db, session_id))}"))
        return entries
    finally:
        db.conn.close()


def comparison_screen(db: Database, session_ids: list[str], turns: list[int] | None = None) -> Screen | str:
    """The screen that compares these sessions (runs: curves; probes: accuracy per rate), or why none does."""
    from lhe_tui.ui.screens.probe import ProbeScreen

    ids = list(dict.fromkeys(session_ids))
    if not ids:
        return "mark sessions with space first, then press c"
    kinds = {}
    for session_id in ids:
        try:
            kinds[session_id] = load_session(db, session_id)["kind"]
        except LheError as exc:
            return str(exc)
    if set(kinds.values()) == {"probe"}:
        return ProbeScreen(ids)
    if "probe" in kinds.values():
        probes = sum(kind == "probe" for kind in kinds.values())
        return (f"{probes} of the {len(ids)} marked sessions are probes: compare runs with runs (accuracy over "
                f"turns) and probes with probes (accuracy per error rate)")
    return CompareScreen(ids, turns=turns)


def turns_error(exc: LheError) -> str:
    # parse_turns words its errors for the CLI's --at flag; here the field is the turns input.
    return "turns: " + str(exc).replace("--at turns ", "").replace("--at ", "")


class CompareScreen(StoredResultsScreen):
    LOAD_GROUP = "compare-load"
    TITLE_ID = "compare-title"
    FAILURE = "cannot compare"

    DEFAULT_CSS = """
    CompareScreen #compare-title { height: 1; background: $panel; padding: 0 1; text-style: bold;
                                   text-wrap: nowrap; text-overflow: ellipsis; }
    CompareScreen #compare-plot { height: 1fr; min-height: 8; }
    CompareScreen #turns-row { height: 1; padding: 0 1; }
    CompareScreen #turns-row Label { color: $text-muted; width: auto; }
    CompareScreen #turns-input { width: 24; margin: 0 1; }
    CompareScreen #turns-error { color: $error; width: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }
    CompareScreen #compare-table { height: auto; max-height: 40%; }
    """

    BINDINGS = [
        Binding("t", "cycle_curves", "Task/turn/both"),
        Binding("a", "edit_turns", "At turns"),
        Binding("r", "reload", "Refresh"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, session_ids: list[str], *, turns: list[int] | None = None, name: str | None = None) -> None:
        super().__init__(name=name)
        self.session_ids = list(dict.fromkeys(session_ids))
        self.entries: list[CompareEntry] = []
        self.turns: list[int] = list(turns or [])
        self.rows: list[dict] = []

    def compose(self) -> ComposeResult:
        yield Static(f"compare {len(self.session_ids)} sessions · loading…", id="compare-title")
        yield ComparePlot(id="compare-plot")
        with Horizontal(id="turns-row"):
            yield Label("accuracy at turns")
            yield Input("", placeholder="10,20,50", id="turns-input", compact=True)
            yield Static("", id="turns-error")
        yield DataTable(id="compare-table", cursor_type="row", zebra_stripes=True, fixed_columns=1)
        yield Footer()

    def on_mount(self) -> None:
        self.plot = self.query_one(ComparePlot)
        self.table = self.query_one(DataTable)
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._on_theme())
        self.load()
        self.table.focus()

    # ---- loading (thread) ----------------------------------------------------------------------------
    def loader(self):
        return load_entries

    def loaded(self, result: list[CompareEntry]) -> None:
        self.set_entries(result)

    def set_entries(self, entries: list[CompareEntry]) -> None:
        first_load = not self.entries
        self.left_out = no_data_note([e.curves for e in entries if e.curves.no_data])
        entries = [e for e in entries if not e.curves.no_data]   # no answered turn: nothing to draw or compare
        self.entries = entries
        self.plot.set_entries(entries)
        if first_load:
            if not self.turns:
                self.turns = default_turns(max((e.curves.n_turns for e in entries), default=0))
            self.query_one("#turns-input", Input).value = ",".join(str(t) for t in self.turns)
        self._update_title()
        self.fill_table()

    def _update_title(self) -> None:
        n = len(self.entries)
        left_out = getattr(self, "left_out", "")
        self.query_one("#compare-title", Static).update(
            f"compare {n} session{'s' if n != 1 else ''} · plot: {self.plot.curves} (t switches) · "
            f"table: turn/task accuracy at each turn, ←→ scrolls" + (f" · {left_out}" if left_out else ""))

    # ---- the table: compare_rows as `lhe-tui compare` prints them -------------------------------------
    def fill_table(self) -> None:
        table = self.table
        self.rows = compare_rows([e.curves for e in self.entries], self.turns, cost=True)   # as `lhe-tui compare`
        table.clear(columns=True)
        if not self.rows:
            return
        for column in self.rows[0]:
            table.add_column(column, key=column)
        theme = self.app.theme_variables
        for index, row in enumerate(self.rows):
            cells = [Text(cell, justify="left" if column in ("session", "label") else "right")
                     for column, cell in zip(row, compare_cells(row))]
            cells[0].stylize(f"bold {theme.get(session_colour(index), '')}".strip())
            table.add_row(*cells, key=str(row["session"]))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value:
            self.app.open_replay(event.row_key.value)  # type: ignore[attr-defined]

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.apply_turns(event.value)

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.query_one("#turns-error", Static).update("")

    def apply_turns(self, text: str) -> bool:
        error = self.query_one("#turns-error", Static)
        try:
            turns = parse_turns(text.strip())
        except LheError as exc:
            error.update(turns_error(exc))
            return False
        if turns is None:  # empty: the same default as `lhe-tui compare` without --at
            turns = default_turns(max((e.curves.n_turns for e in self.entries), default=0))
            self.query_one("#turns-input", Input).value = ",".join(str(t) for t in turns)
        error.update("")
        self.turns = turns
        self.fill_table()
        self.table.focus()
        return True

    # ---- actions ---------------------------------------------------------------------------------------
    def action_cycle_curves(self) -> None:
        self.plot.set_curves(CURVES[(CURVES.index(self.plot.curves) + 1) % len(CURVES)])
        self._update_title()

    def action_edit_turns(self) -> None:
        self.query_one("#turns-input", Input).focus()

    def action_reload(self) -> None:
        self.load()

    def _on_theme(self) -> None:
        self.plot.refresh()
        if self.entries:
            self.fill_table()

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()
