"""The turn table of one sample: one row per finished turn, the first error marked, follows the newest row."""

from __future__ import annotations

from rich.cells import cell_len, set_cell_size
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.reactive import Reactive
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey

from lhe_tui.runner.events import TurnRecord
from lhe_tui.ui.feed import SampleState
from lhe_tui.ui.widgets._style import component_style

COLUMNS = (("turn", "turn"), ("keys", "keys"), ("answer", "answer"), ("gold", "gold"), ("diff", "diff"),
           ("result", "result"), ("step", "step"), ("tok", "tok"), ("lat", "lat"))
KEYS_WIDTH = 24


class Cell:
    """A one-line table cell that is cheap to build and to measure (a long run has tens of thousands).

    `parts` are (text, style) pairs; `style` (if any) also covers the padding, so a marked row reads as one
    band. `plain` is the text, for tests and searching.
    """

    __slots__ = ("parts", "style", "right", "width")

    def __init__(self, text: str, style: Style | None = None, *, right: bool = False,
                 parts: tuple[tuple[str, Style | None], ...] | None = None) -> None:
        self.parts = parts if parts is not None else ((text, None),)
        self.style = style
        self.right = right
        self.width = sum(cell_len(t) for t, _ in self.parts)

    @property
    def plain(self) -> str:
        return "".join(t for t, _ in self.parts)

    def __str__(self) -> str:
        return self.plain

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(self.width, self.width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        room = options.max_width
        style = self.style
        if self.width > room:
            yield Segment(set_cell_size(self.plain, room), style)
            return
        pad = Segment(" " * (room - self.width), style)
        if self.right:
            yield pad
        for text, part_style in self.parts:
            yield Segment(text, style + part_style if style and part_style else part_style or style)
        if not self.right:
            yield pad


def format_latency(seconds: float) -> str:
    return f"{seconds * 1000:.0f}ms" if seconds < 1 else f"{seconds:.1f}s"


class TurnTable(DataTable):
    """Rows for the watched sample. `sync(state)` brings it up to date; cheap when nothing changed."""

    COMPONENT_CLASSES = {"turn-table--ok", "turn-table--wrong", "turn-table--format", "turn-table--first-error",
                         "turn-table--injected", "turn-table--muted"}

    DEFAULT_CSS = """
    TurnTable { height: 1fr; }
    TurnTable > .turn-table--ok { color: $success; }
    TurnTable > .turn-table--wrong { color: $error; }
    TurnTable > .turn-table--format { color: $warning; }
    TurnTable > .turn-table--first-error { background: $error; color: $background; text-style: bold; }
    TurnTable > .turn-table--injected { color: $accent; text-style: bold; }
    TurnTable > .turn-table--muted { color: $text-muted; }
    """

    # New rows change the virtual size, and DataTable's reactive lays out the whole screen for that
    # (100-500 ms with the charts up and a run going: the UI-lag benchmark's worst stalls). Only the
    # scrollbars need to follow, unless one appears or goes.
    virtual_size: Reactive[Size] = Reactive(Size(0, 0), layout=False)

    def watch_virtual_size(self, size: Size) -> None:
        bars = (self.show_vertical_scrollbar, self.show_horizontal_scrollbar)
        self._scroll_update(size)
        self.refresh(layout=bars != (self.show_vertical_scrollbar, self.show_horizontal_scrollbar))

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self.show_values = False
        self._sample: int | None = None
        self._generation = -1
        self._drawn = 0
        self._first_error: int | None = None
        self._marked_injections: set[int] = set()
        self._state: SampleState | None = None
        self._styles: dict[str, Style] = {}
        self._follow = True
        self._row_keys: list = []

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.rebuild())

    # ---- public -------------------------------------------------------------------------------------
    @property
    def sample(self) -> int | None:
        return self._sample

    @property
    def following(self) -> bool:
        """True while the table keeps the newest row in view: until the user moves the cursor off the
        last row or scrolls up; moving back to the last row (or `go_to_newest`) follows again."""
        return self._follow

    # Following is decided by what the user does, never by highlight events (the table posts those for
    # its own reasons, and ours arrive after more rows may have come in).
    def on_mouse_scroll_up(self) -> None:
        self._follow = False

    def on_click(self) -> None:
        self.call_after_refresh(self._follow_if_at_bottom)

    def _follow_if_at_bottom(self) -> None:
        self._follow = self.cursor_row >= self.row_count - 1

    def action_cursor_up(self) -> None:
        self._follow = False
        super().action_cursor_up()

    def action_page_up(self) -> None:
        self._follow = False
        super().action_page_up()

    def action_scroll_top(self) -> None:
        self._follow = False
        super().action_scroll_top()

    def action_scroll_home(self) -> None:
        self._follow = False
        super().action_scroll_home()

    def action_cursor_down(self) -> None:
        super().action_cursor_down()
        self._follow_if_at_bottom()

    def action_page_down(self) -> None:
        super().action_page_down()
        self._follow_if_at_bottom()

    def action_scroll_bottom(self) -> None:
        self.go_to_newest()

    def action_scroll_end(self) -> None:
        self.go_to_newest()

    def _move_to(self, row: int, *, scroll: bool) -> None:
        self.move_cursor(row=row, animate=False, scroll=scroll)

    def sync(self, state: SampleState | None, *, force: bool = False) -> int:
        """Show `state`'s turns; returns the number of rows added."""
        if state is None:
            if self.row_count:
                self.clear()
            self._sample, self._drawn, self._state, self._row_keys = None, 0, None, []
            return 0
        rebuild = force or state.index != self._sample or state.generation != self._generation
        if rebuild:
            follow = state.index != self._sample or self.following
            keep_turn = None if follow else self.cursor_turn()
            self.clear()
            self._row_keys = []
            self._sample, self._generation, self._drawn = state.index, state.generation, 0
            self._first_error = state.first_error
            self._marked_injections = set()
        else:
            follow, keep_turn = self.following, None
        if len(state.records) < self._drawn:
            # A replay stepped back: drop the newest rows instead of redrawing the table.
            for key in self._row_keys[len(state.records):]:
                self.remove_row(key)
            del self._row_keys[len(state.records):]
            self._drawn = len(state.records)
            follow = follow or self.cursor_row >= self._drawn - 1
        self._state = state
        self._styles = {name: component_style(self, name) for name in self.COMPONENT_CLASSES}
        if state.first_error != self._first_error:
            # Only a resumed or rebuilt sample can learn an earlier first error for rows already shown.
            for turn in (self._first_error, state.first_error):
                row = state.row_of(turn) if turn is not None else None
                if row is not None and row < self._drawn:
                    self._update_row(row, state.records[row], state.first_error)
            self._first_error = state.first_error
        new = state.records[self._drawn:]
        if new:
            self._row_keys.extend(self.add_rows([self.cells(r, state.first_error) for r in new]))
            self._drawn = len(state.records)
        for turn in self._marked_injections - set(state.injections):   # injections taken back
            row = state.row_of(turn)
            if row is not None and row < self._drawn:
                self._update_row(row, state.records[row], state.first_error)
            self._marked_injections.discard(turn)
        for turn in set(state.injections) - self._marked_injections:
            row = state.row_of(turn)
            if row is not None and row < self._drawn:
                self._update_row(row, state.records[row], state.first_error)
                self._marked_injections.add(turn)
        if follow and self.row_count:
            self._follow = True
            if new or rebuild:
                self._move_to(self.row_count - 1, scroll=False)
                # Scroll once the new rows are laid out (before that the scroll range is the old one).
                self.call_after_refresh(self._scroll_to_newest)
        elif keep_turn is not None:
            self.go_to_turn(keep_turn)
        return len(new)

    def rebuild(self) -> None:
        if self._state is not None:
            self.sync(self._state, force=True)

    def cursor_turn(self) -> int | None:
        if self._state is None or not self.row_count:
            return None
        row = min(self.cursor_row, len(self._state.records) - 1)
        return self._state.records[row].turn if row >= 0 else None

    def _scroll_to_newest(self) -> None:
        if self._follow:
            self.scroll_to(y=self.max_scroll_y, animate=False)

    def go_to_turn(self, turn: int) -> bool:
        if self._state is None:
            return False
        row = self._state.row_of(turn)
        if row is None or row >= self.row_count:
            return False
        self._follow = row >= self.row_count - 1
        self._move_to(row, scroll=True)
        if not self._follow:
            # Put the row mid-view so there is context above and below it.
            self.scroll_to(y=max(0, row - self.scrollable_content_region.height // 2), animate=False)
        return True

    def go_to_newest(self) -> None:
        self._follow = True
        if self.row_count:
            self._move_to(self.row_count - 1, scroll=False)
            self.call_after_refresh(self._scroll_to_newest)

    def toggle_values(self) -> bool:
        self.show_values = not self.show_values
        self.rebuild()
        return self.show_values

    # ---- cells --------------------------------------------------------------------------------------
    def _update_row(self, row: int, record: TurnRecord, first_error: int | None) -> None:
        row_key = self._row_keys[row]
        widened = False
        for (key, _label), cell in zip(COLUMNS, self.cells(record, first_error)):
            self.update_cell(row_key, key, cell)
            # Grow the column at once for a wider cell ("-72 ⚡-67"): DataTable's own update_width is
            # deferred to idle and measures the whole column when a cell gets narrower.
            column = self.columns[ColumnKey(key)]
            if cell.width > column.content_width:
                column.content_width = cell.width
                widened = True
        if widened:
            self._require_update_dimensions = True
            self.refresh(layout=True)

    def cells(self, r: TurnRecord, first_error: int | None) -> list[Cell]:
        s = self._styles
        first = r.turn == first_error
        if r.answer_status != "ok":
            result, result_style = r.answer_status, s.get("turn-table--format")
        elif r.correct:
            result, result_style = "ok", s.get("turn-table--ok")
        else:
            result, result_style = "wrong", s.get("turn-table--wrong")
        if first:
            result = "1st err"
        if self.show_values:
            keys = ", ".join(f"{k}{v:+d}" for k, v in zip(r.keys, r.key_values))
        else:
            keys = ", ".join(r.keys)
        if len(keys) > KEYS_WIDTH:
            keys = keys[:KEYS_WIDTH - 1] + "…"
        answer = "—" if r.model_answer is None else str(r.model_answer)
        if r.model_answer is None:
            diff = "—"
        else:
            diff = "0" if r.model_answer == r.gold_sum else f"{r.model_answer - r.gold_sum:+d}"
        muted = s.get("turn-table--muted")
        wrong, ok = s.get("turn-table--wrong"), s.get("turn-table--ok")
        if first:
            # One style for the whole row, over the per-cell colours, so it reads as one marked line.
            band = s.get("turn-table--first-error")
            return [Cell(f"{r.turn} ◆", band, right=True), Cell(keys, band), Cell(answer, band, right=True),
                    Cell(str(r.gold_sum), band, right=True), Cell(diff, band, right=True), Cell(result, band),
                    Cell("✓" if r.step_correct else "✗", band),
                    Cell("-" if r.tokens_out is None else str(r.tokens_out), band, right=True),
                    self._latency_cell(r, band)]
        if r.injected and r.history_answer is not None:
            answer_cell = Cell("", right=True, parts=((answer, None),
                                                      (f" ⚡{r.history_answer}", s.get("turn-table--injected"))))
        else:
            answer_cell = Cell(answer, right=True)
        return [
            Cell(str(r.turn), right=True),
            Cell(keys, None if self.show_values else muted),
            answer_cell,
            Cell(str(r.gold_sum), right=True),
            Cell(diff, muted if diff == "0" else wrong, right=True),
            Cell(result, result_style),
            Cell("✓" if r.step_correct else "✗", ok if r.step_correct else wrong),
            Cell("-" if r.tokens_out is None else str(r.tokens_out), muted, right=True),
            self._latency_cell(r, muted),
        ]

    def _latency_cell(self, r: TurnRecord, style: Style | None) -> Cell:
        """Latency, and `↻N` when the turn needed N retries (429, 5xx, resets, timeouts) to get its reply."""
        if not r.retries:
            return Cell(format_latency(r.latency_s), style, right=True)
        return Cell("", style, right=True, parts=((format_latency(r.latency_s), None),
                                                  (f" ↻{r.retries}", self._styles.get("turn-table--format"))))
