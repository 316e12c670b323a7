"""Stored sessions, with the same columns as `lhe-tui sessions`; Enter replays the highlighted one."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from lhe_tui.cli.report import SESSION_COLUMNS, session_cells
from lhe_tui.store.queries import list_sessions

STATUS_COLUMN = SESSION_COLUMNS.index("status")


class SessionsScreen(Screen):
    DEFAULT_CSS = """
    SessionsScreen #sessions-title { height: 1; background: $panel; padding: 0 1; text-style: bold; }
    SessionsScreen #sessions-table { height: 1fr; }
    SessionsScreen #sessions-empty { padding: 1 2; color: $text-muted; }
    SessionsScreen #session-detail { height: auto; max-height: 5; background: $panel; padding: 0 1;
                                     text-wrap: nowrap; text-overflow: ellipsis; }
    """

    BINDINGS = [
        Binding("enter", "open", "Replay", priority=True),
        Binding("r", "reload", "Refresh"),
        Binding("escape", "back", "Back"),
    ]

    def compose(self) -> ComposeResult:
        yield Static("", id="sessions-title")
        yield DataTable(id="sessions-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="sessions-empty")
        yield Static("", id="session-detail")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for column in SESSION_COLUMNS:
            table.add_column(column, key=column)
        self.reload()
        table.focus()

    def on_screen_resume(self) -> None:
        self.reload()

    def reload(self) -> None:
        table = self.query_one(DataTable)
        current = None
        if table.row_count:
            current = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        rows = list_sessions(self.app.db)  # type: ignore[attr-defined]
        rows.reverse()  # newest first
        self.rows = {row["id"]: row for row in rows}
        table.clear()
        for row in rows:
            cells = [Text(cell) for cell in session_cells(row)]
            cells[STATUS_COLUMN].stylize(self._status_style(row.get("status") or ""))
            table.add_row(*cells, key=row["id"])
        db_path = getattr(self.app, "db_path", "")
        self.query_one("#sessions-title", Static).update(f"sessions in {db_path} · {len(rows)} stored · newest first")
        empty = self.query_one("#sessions-empty", Static)
        empty.display = not rows
        empty.update("No sessions yet. Press n to start a run (the sim model needs no key).")
        if current is not None and current in self.rows:
            table.move_cursor(row=table.get_row_index(current))
        self.show_detail(self.selected_id())

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self.show_detail(event.row_key.value if event.row_key is not None else None)

    def show_detail(self, session_id: str | None) -> None:
        """Every column of the highlighted session, readable even when the table is wider than the screen."""
        detail = self.query_one("#session-detail", Static)
        row = self.rows.get(session_id or "")
        detail.display = row is not None
        if row is None:
            return
        cells = dict(zip(SESSION_COLUMNS, session_cells(row)))
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(cells["id"], "bold")
        text.append(f"  {cells['provider/model']} · mode {row.get('mode') or '-'} · K={cells['K']} · "
                    f"{cells['samples']} x {cells['turns']} turns · seed {row.get('seed')}\n")
        text.append("status ")
        text.append(cells["status"], self._status_style(row.get("status") or ""))
        p = row.get("fitted_p")
        text.append(f" · task acc {cells['task acc']} · H_0.5 {cells['H_0.5']} · "
                    f"p {'-' if p is None else f'{p:.4f}'} · created {cells['created']}")
        detail.update(text)

    def _status_style(self, status: str) -> str:
        """A theme colour for the status cell (the theme's own value, so no colour is written here)."""
        variable = {"finished": "success", "running": "primary", "interrupted": "warning"}.get(status, "error")
        return self.app.theme_variables.get(variable, "")

    def action_reload(self) -> None:
        self.reload()

    def selected_id(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.open(event.row_key.value)

    def action_open(self) -> None:
        self.open(self.selected_id())

    def open(self, session_id: str | None) -> None:
        if session_id:
            self.app.open_replay(session_id)  # type: ignore[attr-defined]

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()
