"""What the turn tables share: a ScrollView of one line per turn that grows at the bottom while a run goes.

Subclasses draw their lines (`render_line`) and define `_scroll_to_newest`, `_row_count`, `_select` and the
cursor actions; `header_height` lines of headers sit above the rows."""

from __future__ import annotations

from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.reactive import Reactive
from textual.scroll_view import ScrollView


class GrowingRows(ScrollView, can_focus=True):
    BINDINGS = [
        Binding("up", "cursor_up", "Cursor up", show=False),
        Binding("down", "cursor_down", "Cursor down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home,ctrl+home", "first_row", "First turn", show=False),
        Binding("end,ctrl+end", "newest_row", "Newest turn", show=False),
    ]

    # A new row changes the virtual size, and Widget's reactive would lay out the whole screen for that
    # (100-500 ms with the charts up and a run going) and repaint every line. Only the scrollbars need to
    # follow, unless one appears or goes; the lines that changed are refreshed by whoever changed them.
    virtual_size: Reactive[Size] = Reactive(Size(0, 0), layout=False, repaint=False)

    def watch_virtual_size(self, size: Size) -> None:
        bars = (self.show_vertical_scrollbar, self.show_horizontal_scrollbar)
        self._scroll_update(size)
        if bars != (self.show_vertical_scrollbar, self.show_horizontal_scrollbar):
            self.refresh(layout=True)
            # A scrollbar that comes takes a line: the newest row would sit under it until the next row.
            self.call_after_refresh(self._scroll_to_newest)

    header_height = 1
    _follow: bool   # the table follows the newest row (set by the subclass)

    def _scroll_to_newest(self) -> None:
        raise NotImplementedError

    def _row_count(self) -> int:
        raise NotImplementedError

    def _select(self, row: int) -> None:
        """Put the cursor on `row` (0-based), scrolled into view."""
        raise NotImplementedError

    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - self.header_height)

    def on_mouse_scroll_up(self) -> None:
        self._follow = False

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y < self.header_height:
            return
        row = offset.y - self.header_height + self.scroll_offset.y
        if row < self._row_count():
            self._select(row)
            self._follow = row >= self._row_count() - 1      # clicked the newest row: follow again
