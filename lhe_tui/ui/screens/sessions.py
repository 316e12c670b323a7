"""Stored sessions, with the same columns as `lhe-tui sessions` (the cost last, and in the detail lines).

Enter replays the highlighted run (a probe opens its results; a group's line its arms side by side); space marks sessions and `c` compares the
marked ones; `R` resumes an unfinished run, as `lhe-tui resume ID` does.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static
from textual.widgets.data_table import RowKey

from lhe_tui.reports.report import NO_DATA
from lhe_tui.reports.session_list import SESSION_COLUMNS, GroupLine, group_cells, grouped_rows, session_cells
from lhe_tui.analysis.compare import session_costs
from lhe_tui.common.errors import ConfigError, StoreError
from lhe_tui.store.queries import list_sessions

STATUS_COLUMN = SESSION_COLUMNS.index("status")
COST_COLUMN = "cost"   # as `lhe-tui sessions` prices it (the price files); last, so 80 columns keep the rest


def store_label(path: str | Path) -> str:
    """Which store this is: its path from the current folder when it is under it, else its absolute path
    (`~` for home)."""
    if not path:
        return "?"
    full = Path(path).expanduser().resolve()
    try:
        return str(full.relative_to(Path.cwd().resolve()))
    except ValueError:
        pass
    home = str(Path.home())
    text = str(full)
    return "~" + text[len(home):] if home not in ("", "/") and text.startswith(home + "/") else text


MARK = "●"


class SessionsScreen(Screen):
    DEFAULT_CSS = """
    SessionsScreen #sessions-title { height: 1; background: $panel; padding: 0 1; text-style: bold; }
    SessionsScreen #sessions-table { height: 1fr; }
    SessionsScreen #sessions-table > .datatable--header-cursor { background: $block-cursor-background; }
    SessionsScreen #sessions-empty { padding: 1 2; color: $text-muted; }
    SessionsScreen #session-detail { height: auto; max-height: 5; background: $panel; padding: 0 1;
                                     text-wrap: nowrap; text-overflow: ellipsis; }
    """

    BINDINGS = [
        Binding("enter", "open", "Open", priority=True),
        Binding("space", "toggle_mark", "Mark"),
        Binding("c", "compare", "Compare"),
        Binding("R", "resume", "Resume", key_display="R"),
        Binding("g", "group", "Group", show=False),   # in the help screen: the footer keeps 80 columns
        Binding("r", "reload", "Refresh"),
        Binding("escape", "back", "Back", show=False),
    ]

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name=name)
        self.marked: list[str] = []    # in marking order: the compare screen's colours follow it
        self.groups: dict[str, GroupLine] = {}   # the listed groups' lines, by group id (their row keys)

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
        table.add_column(COST_COLUMN, key=COST_COLUMN)
        self.reload()
        table.focus()
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.reload())   # status and mark colours

    def on_screen_resume(self) -> None:
        self.reload()

    def on_resize(self) -> None:
        self.query_one(Footer).compact = self.size.width < 120   # every key fits at 100 columns

    def reload(self) -> None:
        table = self.query_one(DataTable)
        current = None
        if table.row_count:
            current = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        problem = getattr(self.app, "store_problem", None)
        rows = []
        self.costs: dict[str, str] = {}
        if problem is None:
            try:
                rows = list_sessions(self.app.db)  # type: ignore[attr-defined]
                self.costs = self._costs(rows)
            except (StoreError, sqlite3.Error) as exc:   # said here, in place of the list
                problem = self.app.describe_error(exc)  # type: ignore[attr-defined]
        self.rows = {row["id"]: row for row in rows}
        self.marked = [sid for sid in self.marked if sid in self.rows]
        table.clear()
        self.groups: dict[str, GroupLine] = {}
        # Forks under their parent (`└ ` before the id), a group's arms under a line of its own: the CLI's list.
        for entry, depth in grouped_rows(rows):
            if isinstance(entry, GroupLine):
                self.groups[entry.group_id] = entry
                key, cells = entry.group_id, [Text(cell) for cell in group_cells(entry, depth)]
                cells.append(Text("-", justify="right"))
                cells[0].stylize("bold")
                status = entry.arms[0].get("status") or ""
            else:
                key, status = entry["id"], entry.get("status") or ""
                cells = [Text(cell) for cell in session_cells(entry, depth)]
                if entry.get("group_id"):
                    cells[0] = Text("  ") + cells[0]
                cells.append(Text(self.costs.get(key, "-"), justify="right"))
            cells[STATUS_COLUMN].stylize(self._status_style(status))
            table.add_row(*cells, key=key, label=self._mark_label(key))
        if rows:
            # The label column (the marks) is sized when the table next idles; lines drawn before that
            # would be cached without it until something changes, so redraw once it is sized.
            self.call_after_refresh(self._redraw_row, RowKey(table.coordinate_to_cell_key((0, 0)).row_key.value))
        self._update_title()
        empty = self.query_one("#sessions-empty", Static)
        empty.display = not rows
        if problem is not None:
            empty.update(Text(problem, style=self.app.theme_variables.get("error", "")))
        else:
            empty.update("No sessions yet. Press n to start a run (the sim model needs no key).")
        if current is not None and (current in self.rows or current in self.groups):
            table.move_cursor(row=table.get_row_index(current))
        self.show_detail(self.selected_id())

    def _costs(self, rows: list[dict]) -> dict[str, str]:
        """Each session's cost cell; a bad price file leaves them "?" and says why in the detail lines."""
        self.cost_problem: str | None = None
        try:
            return session_costs(self.app.db, rows)  # type: ignore[attr-defined]
        except ConfigError as exc:
            self.cost_problem = str(exc)
            return {row["id"]: "?" for row in rows}

    def _redraw_row(self, key: RowKey) -> None:
        """Rewrite a cell with its own value: the table drops its cached lines, labels included."""
        table = self.query_one(DataTable)
        if key in table.rows:
            first = SESSION_COLUMNS[0]
            table.update_cell(key, first, table.get_cell(key, first))

    def _update_title(self) -> None:
        marked = f" · {len(self.marked)} marked (c compares)" if self.marked else ""
        self.query_one("#sessions-title", Static).update(
            f"{len(self.rows)} session{'s' if len(self.rows) != 1 else ''} stored in "
            f"{store_label(getattr(self.app, 'db_path', ''))} · newest "
            f"first{marked}")

    def _mark_label(self, session_id: str) -> Text:
        if session_id in self.marked:
            return Text(MARK, style=self.app.theme_variables.get("accent", ""))
        return Text(" ")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self.show_detail(event.row_key.value if event.row_key is not None else None)

    def show_detail(self, session_id: str | None) -> None:
        """Every column of the highlighted session, readable even when the table is wider than the screen."""
        detail = self.query_one("#session-detail", Static)
        group = self.groups.get(session_id or "")
        if group is not None:
            detail.display = True
            detail.update(Text(f"{group.group_id}  {len(group.arms)} arms over one task: "
                               f"{', '.join(group.names)} · enter replays them side by side", no_wrap=True,
                               overflow="ellipsis"))
            return
        row = self.rows.get(session_id or "")
        detail.display = row is not None
        if row is None:
            return
        cells = dict(zip(SESSION_COLUMNS, session_cells(row)))
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(cells["id"], "bold")
        text.append(f"  {cells['provider/model']} · mode {row.get('mode') or '-'} · {cells['protocol']} · "
                    f"K={cells['K']} · {cells['samples']} x {cells['turns']} turns · seed {row.get('seed')}\n")
        text.append("status ")
        text.append(cells["status"], self._status_style(row.get("status") or ""))
        p = row.get("fitted_p")   # the stored mean turn accuracy (the column keeps its old name)
        p_cell = "-" if p is None else f"{p:.4f}"
        if not row.get("answered", 1):
            p_cell = NO_DATA
        cost = getattr(self, "costs", {}).get(row["id"], "-")
        if getattr(self, "cost_problem", None):
            cost = f"? ({self.cost_problem})"
        text.append(f" · task acc {cells['task acc']} · H_0.5 {cells['H_0.5']} · "
                    f"turn acc {p_cell} · cost {cost} · created {cells['created'][:16]}")
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
        if not session_id:
            return
        if session_id in self.groups and session_id.startswith("swp-"):   # a sweep's line: its board
            self.notify(f"a sweep replays on its board: lhe-tui replay {session_id}", timeout=5, markup=False)
            return
        if session_id in self.groups:       # a group's line: its arms side by side
            self.app.open_group_replay(session_id)  # type: ignore[attr-defined]
            return
        if (self.rows.get(session_id) or {}).get("kind") == "probe":
            from lhe_tui.ui.screens.probe import ProbeScreen

            self.app.push_screen(ProbeScreen(session_id))   # its results; `r` there replays the turns
        else:
            self.app.open_replay(session_id)  # type: ignore[attr-defined]

    def action_group(self) -> None:
        """Replay the group of the selected arm, its arms side by side."""
        session_id = self.selected_id()
        group = session_id if session_id in self.groups else \
            (self.rows.get(session_id) or {}).get("group_id") if session_id else None
        if not group:
            self.notify("this session is not an arm of a group (`lhe-tui run … --arm …` runs arms)",
                        severity="warning", timeout=3)
            return
        self.app.open_group_replay(group)  # type: ignore[attr-defined]

    # ---- marks and compare ---------------------------------------------------------------------------
    def action_toggle_mark(self) -> None:
        session_id = self.selected_id()
        if session_id is None:
            return
        if session_id in self.groups:
            self.notify("a group's arms are compared as a group: `lhe-tui compare grp-…`, or mark its arms",
                        severity="warning", timeout=4)
            return
        if session_id in self.marked:
            self.marked.remove(session_id)
        else:
            self.marked.append(session_id)
        table = self.query_one(DataTable)
        key = RowKey(session_id)
        table.rows[key].label = self._mark_label(session_id)
        self._redraw_row(key)
        self._update_title()
        if table.cursor_row < table.row_count - 1:   # like a file manager: mark and move on
            table.move_cursor(row=table.cursor_row + 1)

    def action_compare(self) -> None:
        if not self.marked:
            self.notify("mark two or more sessions with space, then press c", title="compare", severity="warning")
            return
        self.app.open_compare(list(self.marked))  # type: ignore[attr-defined]

    def action_resume(self) -> None:
        session_id = self.selected_id()
        if session_id in self.groups:
            self.notify(f"a group resumes as a whole: lhe-tui resume {session_id}", severity="warning", timeout=5,
                        markup=False)
            return
        if session_id is not None:
            self.app.resume_session(session_id)  # type: ignore[attr-defined]

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()
