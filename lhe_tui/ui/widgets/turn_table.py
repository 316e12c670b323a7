"""The turn table of one sample: one row per finished turn, the first error marked, follows the newest row.

Drawn with Textual's Line API (a `ScrollView` with `render_line`): only the visible lines are drawn, each
row's line is kept as a `Strip` until something that changes its look changes (its cells, the column
widths, the widget's width, the theme or focus styles, the cursor), so a row added at the end draws that
row alone. A DataTable re-rendered every visible row whenever a row was added (issue 6: ~64 ms a repaint
with a run going, the UI lag's biggest single cost).
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Region, Size
from textual.strip import Strip

from lhe_tui.core.step_rules import DEFAULT_STEP_RULE, update_flag_at
from lhe_tui.core.events import TurnRecord
from lhe_tui.ui.feed import SampleState
from lhe_tui.ui.widgets._rows import GrowingRows
from lhe_tui.ui.widgets._style import component_style
from lhe_tui.ui.widgets.cell_rows import CellRows
from lhe_tui.ui.widgets.turn_cells import COLUMNS, Cell, turn_cells

CELL_PADDING = 1        # blank cells either side of every cell, as DataTable's cell_padding
HEADER_HEIGHT = 1
MAX_CACHED_ROWS = 2_000  # row strips kept; a long scroll through a huge sample starts over past this


class TurnTable(GrowingRows):
    header_height = HEADER_HEIGHT
    """Rows for the watched sample. `sync(state)` brings it up to date; cheap when nothing changed.

    The header is line 0 and stays put; row `i` is line `1 + i - scroll_y`. The look is DataTable's with
    a row cursor (same padding, header, cursor and focus styles), so the table did not change when the
    widget did. Read API for tests: `row_count`, `cursor_row`, `get_row_at(i)` (the row's `Cell`s).
    """

    COMPONENT_CLASSES = {"turn-table--ok", "turn-table--wrong", "turn-table--format", "turn-table--first-error",
                         "turn-table--injected", "turn-table--muted", "turn-table--header", "turn-table--cursor",
                         "turn-table--inherited"}
    CELL_CLASSES = ("turn-table--ok", "turn-table--wrong", "turn-table--format", "turn-table--first-error",
                    "turn-table--injected", "turn-table--muted", "turn-table--inherited")

    DEFAULT_CSS = """
    TurnTable {
        height: 1fr;
        background: $surface;
        color: $foreground;
        &:focus {
            background-tint: $foreground 5%;
            & > .turn-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .turn-table--header { background-tint: $foreground 5%; }
        }
        & > .turn-table--header { text-style: bold; background: $panel; color: $foreground; }
        &:ansi > .turn-table--header { background: ansi_bright_blue; color: ansi_default; }
        & > .turn-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
    }
    TurnTable > .turn-table--ok { color: $success; }
    TurnTable > .turn-table--wrong { color: $error; }
    TurnTable > .turn-table--format { color: $warning; }
    TurnTable > .turn-table--first-error { background: $error; color: $background; text-style: bold; }
    TurnTable > .turn-table--injected { color: $accent; text-style: bold; }
    TurnTable > .turn-table--muted { color: $text-muted; }
    TurnTable > .turn-table--inherited { text-style: dim; }
    """



    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.show_values = False
        self.step_rule = DEFAULT_STEP_RULE   # the run's: how the `upd` (turn accuracy) column scores a turn
        self._sample: int | None = None
        self._generation = -1
        self._first_error: int | None = None
        self._marked_injections: dict[int, object] = {}   # turn -> the Injected its row shows
        self._state: SampleState | None = None
        self._styles: dict[str, Style] = {}
        self._styles_look: tuple | None = None
        self._follow = True
        self._rows = CellRows(self._build_row)
        self._labels = [label for _key, label in COLUMNS]
        self._widths = [cell_len(label) for label in self._labels]   # content widths, padding not included
        self._cursor = 0
        # drawing state: what the cached strips were drawn with (width, styles, column widths)
        self._look: tuple | None = None
        self._base = Style()
        self._header_style = Style()
        self._cursor_style = Style()
        self._cursor_post: Style | None = None
        self._row_cache: dict[int, Strip] = {}
        self._cursor_strip: tuple[int, Strip] | None = None
        self._header_strip: Strip | None = None

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.rebuild())

    # ---- public -------------------------------------------------------------------------------------
    @property
    def sample(self) -> int | None:
        return self._sample

    @property
    def row_count(self) -> int:
        return len(self._rows)

    @property
    def cursor_row(self) -> int:
        return self._cursor

    def get_row_at(self, row: int) -> list[Cell]:
        """The cells of `row` (each with `.plain` and `.style`)."""
        return list(self._rows[row])

    @property
    def following(self) -> bool:
        """True while the table keeps the newest row in view: until the user moves the cursor off the
        last row or scrolls up; moving back to the last row (or `go_to_newest`) follows again."""
        return self._follow

    def sync(self, state: SampleState | None, *, force: bool = False) -> int:
        """Show `state`'s turns; returns the number of rows added."""
        if state is None:
            if self._rows:
                self.clear()
            self._sample, self._state = None, None
            return 0
        rebuild = force or state.index != self._sample or state.generation != self._generation
        if rebuild:
            follow = state.index != self._sample or self.following
            keep_turn = None if follow else self.cursor_turn()
            self.clear()
            self._sample, self._generation = state.index, state.generation
            self._first_error = state.first_error
            self._marked_injections = {}
        else:
            follow, keep_turn = self.following, None
        if len(state.records) < len(self._rows):
            # A replay stepped back: drop the newest rows instead of redrawing the table.
            self._truncate(len(state.records))
            follow = follow or self._cursor >= len(self._rows) - 1
        self._state = state
        look = (self.has_focus, self.app.theme)
        if force or look != self._styles_look:
            # Resolved once per theme and focus (six style lookups: 2-3% of the UI thread per sync with 64
            # samples). A theme change comes here with force=True once its CSS is in (the theme signal).
            self._styles_look = look
            self._styles = {name: component_style(self, name) for name in self.CELL_CLASSES}
        if state.first_error != self._first_error:
            # Only a resumed or rebuilt sample can learn an earlier first error for rows already shown.
            for turn in (self._first_error, state.first_error):
                row = state.row_of(turn) if turn is not None else None
                if row is not None and row < len(self._rows):
                    self._update_row(row, state.records[row], state.first_error)
            self._first_error = state.first_error
        new = state.records[len(self._rows):]
        if new:
            self._append([self.cells(r, state.first_error) for r in new])
        marked = self._marked_injections
        for turn in [t for t in marked if t not in state.injections]:   # injections taken back
            row = state.row_of(turn)
            if row is not None and row < len(self._rows):
                self._update_row(row, state.records[row], state.first_error)
            del marked[turn]
        for turn, injection in state.injections.items():
            if marked.get(turn) is injection:
                continue          # shown as it is (a turn injected again is a new event: drawn again)
            row = state.row_of(turn)
            if row is not None and row < len(self._rows):
                self._update_row(row, state.records[row], state.first_error)
                marked[turn] = injection
        if follow and self._rows:
            self._follow = True
            if new or rebuild:
                self.go_to_newest()
        elif keep_turn is not None:
            self.go_to_turn(keep_turn)
        return len(new)

    def rebuild(self) -> None:
        self._styles_look = None   # e.g. a new theme: colours resolved again at the next sync
        if self._state is not None:
            self.sync(self._state, force=True)

    def clear(self) -> None:
        """No rows, the columns back to their labels' widths, the cursor and scroll at the top."""
        self._rows = CellRows(self._build_row)
        self._widths = [cell_len(label) for label in self._labels]
        self._cursor = 0
        self._forget_strips()
        self._update_virtual_size()
        self.scroll_to(0, 0, animate=False)
        self.refresh()

    def cursor_turn(self) -> int | None:
        record = self.cursor_record()
        return None if record is None else record.turn

    def cursor_record(self) -> TurnRecord | None:
        """The turn under the cursor (None: no rows)."""
        if self._state is None or not self._rows:
            return None
        row = min(self._cursor, len(self._state.records) - 1)
        return self._state.records[row] if row >= 0 else None

    def go_to_turn(self, turn: int) -> bool:
        if self._state is None:
            return False
        row = self._state.row_of(turn)
        if row is None or row >= len(self._rows):
            return False
        self._follow = row >= len(self._rows) - 1
        self._move_cursor(row, scroll=True)
        if not self._follow:
            # Put the row mid-view so there is context above and below it.
            self.scroll_to(y=max(0, row - self.scrollable_content_region.height // 2), animate=False)
        return True

    def go_to_newest(self) -> None:
        self._follow = True
        if self._rows:
            self._move_cursor(len(self._rows) - 1, scroll=False)
            self._scroll_to_newest()
            # Again once laid out: before the first layout (or when a scrollbar comes) the range changes.
            self.call_after_refresh(self._scroll_to_newest)

    def toggle_values(self) -> bool:
        self.show_values = not self.show_values
        self.rebuild()
        return self.show_values

    # ---- keys and mouse -----------------------------------------------------------------------------
    # Following is decided by what the user does: up, page up, home, a scroll up or a click above the
    # last row stop it; reaching the last row again (down, page down, end, a click) resumes it.
    def action_cursor_up(self) -> None:
        self._follow = False
        self._move_cursor(self._cursor - 1, scroll=True)

    def action_cursor_down(self) -> None:
        self._move_cursor(self._cursor + 1, scroll=True)
        self._follow_if_at_bottom()

    def action_page_up(self) -> None:
        self._follow = False
        page = self._page()
        self.scroll_to(y=max(0, self.scroll_offset.y - page), animate=False)
        self._move_cursor(self._cursor - page, scroll=True)

    def action_page_down(self) -> None:
        page = self._page()
        self.scroll_to(y=self.scroll_offset.y + page, animate=False)
        self._move_cursor(self._cursor + page, scroll=True)
        self._follow_if_at_bottom()

    def action_first_row(self) -> None:
        self._follow = False
        self._move_cursor(0, scroll=False)
        self.scroll_to(y=0, animate=False)

    def action_newest_row(self) -> None:
        self.go_to_newest()

    def _row_count(self) -> int:
        return len(self._rows)

    def _select(self, row: int) -> None:
        self._move_cursor(row, scroll=True)

    def _follow_if_at_bottom(self) -> None:
        self._follow = self._cursor >= len(self._rows) - 1

    # ---- rows, cursor, scrolling ----------------------------------------------------------------------
    def _append(self, rows: list[list[Cell]]) -> None:
        start = len(self._rows)
        self._rows.extend(rows)
        widened = any([self._widen(cells) for cells in rows])   # a list: every row widens the columns
        self._update_virtual_size()
        if widened:
            # Every line changes when a column grows; that happens a few times a run (sums, latencies
            # and token counts get a digit longer), never per row.
            self._forget_strips()
            self.refresh()
        else:
            self._refresh_rows(start, len(rows))   # only seen if they land in view without a scroll

    def _update_row(self, row: int, record: TurnRecord, first_error: int | None) -> None:
        cells = self.cells(record, first_error)
        self._rows[row] = cells
        if self._widen(cells):
            self._update_virtual_size()
            self._forget_strips()
            self.refresh()
            return
        self._row_cache.pop(row, None)
        if self._cursor_strip is not None and self._cursor_strip[0] == row:
            self._cursor_strip = None
        self._refresh_rows(row, 1)

    def _widen(self, cells: list[Cell]) -> bool:
        """Grow the columns to fit `cells`; True if any grew."""
        widths = self._widths
        widened = False
        for i, cell in enumerate(cells):
            if cell.width > widths[i]:
                widths[i] = cell.width
                widened = True
        return widened

    def _build_row(self, row: int) -> list[Cell]:
        """A row whose cells were let go (CellRows), from the sample's record as it is now."""
        state = self._state
        assert state is not None
        return self.cells(state.records[row], state.first_error)

    def _truncate(self, count: int) -> None:
        self._rows.truncate(count)
        for row in [row for row in self._row_cache if row >= count]:
            del self._row_cache[row]
        if self._cursor >= count:
            self._move_cursor(count - 1, scroll=False)
        self._update_virtual_size()
        self.refresh()

    def _update_virtual_size(self) -> None:
        width = sum(self._widths) + 2 * CELL_PADDING * len(self._widths)
        self.virtual_size = Size(width, len(self._rows) + HEADER_HEIGHT)

    def _refresh_rows(self, start: int, count: int) -> None:
        """Repaint the lines of rows `start`..`start + count - 1` that are in view."""
        top = self.scroll_offset.y
        first = max(start, top)
        last = min(start + count, top + self.size.height - HEADER_HEIGHT)
        if last > first:
            width = max(self.virtual_size.width, self.size.width)
            self.refresh(Region(0, HEADER_HEIGHT + first - top, width, last - first))

    def _move_cursor(self, row: int, *, scroll: bool) -> None:
        row = max(0, min(row, len(self._rows) - 1))
        old, self._cursor = self._cursor, row
        if old != row:
            self._cursor_strip = None
            self._refresh_rows(old, 1)
            self._refresh_rows(row, 1)
        if scroll:
            self._scroll_row_into_view(row)

    def _scroll_row_into_view(self, row: int) -> None:
        top = self.scroll_offset.y
        page = self._page()
        if row < top:
            self.scroll_to(y=row, animate=False)
        elif row >= top + page:
            self.scroll_to(y=row - page + 1, animate=False)

    def _scroll_to_newest(self) -> None:
        if self._follow and self.scroll_offset.y != self.max_scroll_y:
            self.scroll_to(y=self.max_scroll_y, animate=False)

    # ---- drawing ------------------------------------------------------------------------------------
    def _forget_strips(self) -> None:
        self._row_cache.clear()
        self._cursor_strip = None
        self._header_strip = None

    def render_lines(self, crop: Region) -> list[Strip]:
        # What the strips depend on besides their cells; checked once per repaint, not per line.
        base = self.rich_style
        header = self.get_component_rich_style("turn-table--header")
        cursor = self.get_component_rich_style("turn-table--cursor")
        look = (self.size.width, base, header, cursor, tuple(self._widths))
        if look != self._look:
            self._look = look
            self._base, self._header_style, self._cursor_style = base, header, cursor
            # The cursor's colour wins over a cell's own, its background does not (DataTable's
            # cursor_foreground_priority="css", cursor_background_priority="renderable").
            self._cursor_post = Style.from_color(color=cursor.color) if cursor.color is not None else None
            self._forget_strips()
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        scroll_x, scroll_y = self.scroll_offset
        if y < HEADER_HEIGHT:
            if self._header_strip is None:
                self._header_strip = self._draw_header()
            strip = self._header_strip
        else:
            row = y - HEADER_HEIGHT + scroll_y
            if row >= len(self._rows):
                return Strip.blank(width, self._base)
            strip = self._row_strip(row)
        if scroll_x or strip.cell_length != width:
            strip = strip.crop(scroll_x, scroll_x + width).adjust_cell_length(width, self._base)
        return strip

    def _row_strip(self, row: int) -> Strip:
        if row == self._cursor:
            if self._cursor_strip is None or self._cursor_strip[0] != row:
                self._cursor_strip = (row, self._draw_row(self._rows[row], cursor=True))
            return self._cursor_strip[1]
        strip = self._row_cache.get(row)
        if strip is None:
            if len(self._row_cache) >= MAX_CACHED_ROWS:
                self._row_cache.clear()
            strip = self._row_cache[row] = self._draw_row(self._rows[row], cursor=False)
        return strip

    def _table_width(self) -> int:
        return sum(self._widths) + 2 * CELL_PADDING * len(self._widths)

    def _draw_header(self) -> Strip:
        style = self._header_style
        pad = " " * CELL_PADDING
        text = "".join(f"{pad}{label}{' ' * (width - cell_len(label))}{pad}"
                       for label, width in zip(self._labels, self._widths))
        fill = max(0, self.size.width - self._table_width())
        return Strip([Segment(text + " " * fill, style)], cell_len(text) + fill)

    def _draw_row(self, cells: list[Cell], *, cursor: bool) -> Strip:
        """One row as DataTable draws it: each cell padded, the widget's style under everything, the cell's
        style (and its parts') over it, the cursor's colour over those; the rest of the line in the row's
        style."""
        pre = self._base + self._cursor_style if cursor else self._base
        post = self._cursor_post if cursor else None
        pad_style = pre + post
        pad = Segment(" " * CELL_PADDING, pad_style)
        segments: list[Segment] = []
        add = segments.append
        for cell, width in zip(cells, self._widths):
            add(pad)
            style = cell.style
            blank = width - cell.width
            fill = Segment(" " * blank, pre + style + post) if blank > 0 else None
            if fill is not None and cell.right:
                add(fill)
            for text, part_style in cell.parts:
                if text:
                    own = style + part_style if style and part_style else part_style or style
                    add(Segment(text, pre + own + post))
            if fill is not None and not cell.right:
                add(fill)
            add(pad)
        table_width = self._table_width()
        rest = self.size.width - table_width
        if rest > 0:
            add(Segment(" " * rest, pre))
        return Strip(segments, table_width + max(0, rest)).simplify()

    # ---- cells --------------------------------------------------------------------------------------
    def cells(self, r: TurnRecord, first_error: int | None) -> list[Cell]:
        """The row of `r` (turn_cells) with this table's styles, key values and step rule."""
        return turn_cells(r, first_error, self._styles, show_values=self.show_values, update_ok=self._update_ok(r))

    def _update_ok(self, r: TurnRecord) -> bool:
        """Whether the update into turn `r` is right (turn accuracy) under the run's step rule."""
        if self.step_rule == DEFAULT_STEP_RULE or self._state is None:
            return r.step_correct
        index = self._state.row_of(r.turn)
        return r.step_correct if index is None else update_flag_at(self._state.records, index, self.step_rule)
