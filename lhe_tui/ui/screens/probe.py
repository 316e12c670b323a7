"""Probe results (paper Fig. 5): accuracy at the target turn T per history error rate, with 95% CIs, as a
plot and as the table `lhe-tui show` prints for a probe session (`probe_table` + `probe_cells`).

Opened by Enter on a probe session, by `c` on marked probe sessions (they overlay), and at the end of a
live probe run. `r` replays the probe's turns in the run view.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Static

from lhe_tui.reports.probe_tables import PROBE_COLUMNS, probe_cells
from lhe_tui.common.errors import StoreError
from lhe_tui.runs.probe import probe_table
from lhe_tui.store.database import open_database
from lhe_tui.store.queries import load_session
from lhe_tui.ui.screens.stored_results import StoredResultsScreen
from lhe_tui.core.lineage import short_id
from lhe_tui.ui.widgets.compare_plot import session_colour
from lhe_tui.ui.widgets.probe_plot import ProbePlot, ProbeResult


def load_probe_results(db_path: Path, session_ids: list[str]) -> list[ProbeResult]:
    """Each probe session's table (bootstrap CIs included), read on a connection of the calling thread."""
    db = open_database(db_path, create=False)
    try:
        results = []
        for session_id in session_ids:
            session = load_session(db, session_id)
            if session["kind"] != "probe":
                raise StoreError(f"session {session_id} is a {session['kind']} session, not a probe")
            probe = (session["config"].get("extra") or {}).get("probe") or {}
            target = probe.get("target_turn") or session.get("turns")
            model = f"{session['provider']}/{session['model']}" + (" (sim)" if session.get("simulated") else "")
            results.append(ProbeResult(session_id=session_id, label=f"{short_id(session_id)} T={target}",
                                       model=model, status=session.get("status") or "", target_turn=target,
                                       samples_per_rate=probe.get("samples_per_rate"),
                                       rows=probe_table(db, session_id)))
        return results
    finally:
        db.conn.close()


class ProbeScreen(StoredResultsScreen):
    LOAD_GROUP = "probe-load"
    TITLE_ID = "probe-title"
    FAILURE = "cannot show the probe"

    DEFAULT_CSS = """
    ProbeScreen #probe-title { height: 1; background: $panel; padding: 0 1; text-style: bold;
                               text-wrap: nowrap; text-overflow: ellipsis; }
    ProbeScreen #probe-plot { height: 1fr; min-height: 8; }
    ProbeScreen #probe-table { height: auto; max-height: 50%; }
    """

    BINDINGS = [
        Binding("r", "replay", "Replay turns"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, session_ids: list[str] | str, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.session_ids = [session_ids] if isinstance(session_ids, str) else list(dict.fromkeys(session_ids))
        self.results: list[ProbeResult] = []

    def compose(self) -> ComposeResult:
        yield Static("probe · loading…", id="probe-title")
        yield ProbePlot(id="probe-plot")
        yield DataTable(id="probe-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.plot = self.query_one(ProbePlot)
        self.table = self.query_one(DataTable)
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._on_theme())
        self.load()
        self.table.focus()

    def loader(self):
        return load_probe_results

    def loaded(self, result: list[ProbeResult]) -> None:
        self.set_results(result)

    def set_results(self, results: list[ProbeResult]) -> None:
        self.results = results
        self.plot.set_results(results)
        self.query_one("#probe-title", Static).update(self._title())
        self.fill_table()

    def _title(self) -> str:
        if len(self.results) == 1:
            r = self.results[0]
            per_rate = f" · {r.samples_per_rate} samples per rate" if r.samples_per_rate else ""
            status = "" if r.status == "finished" else f" · {r.status}"
            return f"probe {r.session_id} · {r.model} · target turn {r.target_turn}{per_rate}{status}"
        return f"{len(self.results)} probes · accuracy at the target turn per history error rate"

    def fill_table(self) -> None:
        table = self.table
        table.clear(columns=True)
        several = len(self.results) > 1
        if several:
            table.add_column("session", key="session")
        for column in PROBE_COLUMNS:
            table.add_column(column, key=column)
        theme = self.app.theme_variables
        for index, result in enumerate(self.results):
            for row in result.rows:
                cells = [Text(cell, justify="right") for cell in probe_cells(row)]
                key = f"{result.session_id}:{row.rate:g}"
                if several:
                    name = Text(result.label, style=f"bold {theme.get(session_colour(index), '')}".strip())
                    table.add_row(name, *cells, key=key)
                else:
                    table.add_row(*cells, key=key)

    def _on_theme(self) -> None:
        self.plot.refresh()
        if self.results:
            self.fill_table()

    def action_replay(self) -> None:
        """Replay the probe's turns (the highlighted session's, when several are shown)."""
        session_id = self.session_ids[0]
        if len(self.results) > 1 and self.table.row_count:
            key = self.table.coordinate_to_cell_key(self.table.cursor_coordinate).row_key.value or ""
            session_id = key.rpartition(":")[0] or session_id
        self.app.open_replay(session_id)  # type: ignore[attr-defined]

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()
