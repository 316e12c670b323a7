"""The turn table of one sample: one row per finished turn, the first error marked, follows the newest row."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.widgets import DataTable

from lhe_tui.runner.events import TurnRecord
from lhe_tui.ui.feed import SampleState

COLUMNS = (("turn", "turn"), ("keys", "keys"), ("answer", "answer"), ("gold", "gold"), ("diff", "diff"),
           ("result", "result"), ("step", "step"), ("tok", "tok"), ("lat", "lat"))
KEYS_WIDTH = 24


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
            self._sample, self._drawn, self._state = None, 0, None
            return 0
        rebuild = (force or state.index != self._sample or state.generation != self._generation
                   or len(state.records) < self._drawn)
        if rebuild:
            follow = state.index != self._sample or self.following
            keep_turn = None if follow else self.cursor_turn()
            self.clear()
            self._sample, self._generation, self._drawn = state.index, state.generation, 0
            self._first_error = state.first_error
            self._marked_injections = set()
        else:
            follow, keep_turn = self.following, None
        self._state = state
        self._styles = {name: self.get_component_rich_style(name, partial=True) for name in self.COMPONENT_CLASSES}
        if state.first_error != self._first_error:
            # Only a resumed or rebuilt sample can learn an earlier first error for rows already shown.
            for turn in (self._first_error, state.first_error):
                row = state.row_of(turn) if turn is not None else None
                if row is not None and row < self._drawn:
                    self._update_row(row, state.records[row], state.first_error)
            self._first_error = state.first_error
        new = state.records[self._drawn:]
        if new:
            self.add_rows([self.cells(r, state.first_error) for r in new])
            self._drawn = len(state.records)
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
        row_key = self.ordered_rows[row].key
        for (key, _label), cell in zip(COLUMNS, self.cells(record, first_error)):
            self.update_cell(row_key, key, cell)

    def cells(self, r: TurnRecord, first_error: int | None) -> list[Text]:
        s = self._styles
        first = r.turn == first_error
        row_style = s.get("turn-table--first-error", Style()) if first else Style()
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
        answer_text = Text(answer, justify="right")
        if r.injected and r.history_answer is not None:
            answer_text.append(f" ⚡{r.history_answer}", s.get("turn-table--injected"))
        diff = "—" if r.model_answer is None else f"{r.model_answer - r.gold_sum:+d}" if r.model_answer != r.gold_sum else "0"
        muted = s.get("turn-table--muted")
        cells = [
            Text(f"{r.turn}{' ◆' if first else ''}", justify="right"),
            Text(keys, style=muted if not self.show_values else ""),
            answer_text,
            Text(str(r.gold_sum), justify="right"),
            Text(diff, justify="right", style=s.get("turn-table--wrong") if diff not in ("0",) else muted),
            Text(result, style=result_style or ""),
            Text("✓" if r.step_correct else "✗",
                 style=s.get("turn-table--ok") if r.step_correct else s.get("turn-table--wrong")),
            Text("-" if r.tokens_out is None else str(r.tokens_out), justify="right", style=muted),
            Text(format_latency(r.latency_s), justify="right", style=muted),
        ]
        if first:
            # One style for the whole row, over the per-cell colours, so it reads as one marked line.
            for cell in cells:
                cell.spans = []
                cell.style = row_style
        return cells
