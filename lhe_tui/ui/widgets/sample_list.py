"""The sample switcher: one line per sample with its state (running, first error at turn t, finished).

Drawn with Textual's Line API (a `ScrollView` with `render_line`), like the turn table: each sample's line
is kept as a `Strip` until its state, the width or the theme changes, so a sample whose state changed
redraws that line alone, and an update never lays anything out. An OptionList re-measured and re-rendered
its options on every prompt change (issue 6: ~18% of the UI thread's time with 64 samples streaming).
"""

from __future__ import annotations

from time import monotonic
from typing import NamedTuple

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from lhe_tui.ui.feed import SampleState
from lhe_tui.ui.widgets._style import component_style

TURNS_EVERY_S = 1.0
"""Turn counters alone refresh at most this often."""

# `early`: stopped by its --until rule (by design), told apart from `stopped` (by the user).
GLYPHS = {"pending": "·", "running": "▶", "finished": "●", "early": "◐", "stopped": "■", "failed": "!"}

Key = tuple  # (status, first_error, turn): what a sample's line shows


class Option(NamedTuple):
    """What `get_option_at_index` gives (OptionList's read API, kept for callers and tests)."""
    prompt: Text


def line_parts(state: SampleState) -> tuple[str, str, str | None]:
    """A sample's line: the head (glyph and `s<index>`), the tail and the tail's colour (ok, error, muted)."""
    head = f"{GLYPHS.get(state.status, '?')} s{state.index:<3}"
    if state.first_error is not None:
        return head, f"✗{state.first_error}", "error"
    if state.status == "finished":
        return head, "ok", "ok"
    if state.current_turn or state.records:
        return head, f"t{state.current_turn or state.last_turn}", "muted"
    return head, "", None


class SampleList(ScrollView, can_focus=True):
    """Moving the highlight (keys, click) asks the screen to watch that sample with `SampleList.Watch`;
    `show_watched` (the screen's own choice) moves it without asking."""

    COMPONENT_CLASSES = {"sample-list--ok", "sample-list--error", "sample-list--muted",
                         "sample-list--highlighted", "sample-list--hover"}

    # OptionList's look: its background, focus tint and block cursor, no padding.
    DEFAULT_CSS = """
    SampleList {
        width: 14; height: 1fr; border: none; border-right: vkey $panel-lighten-1; padding: 0;
        color: $foreground; background: $surface; overflow-x: hidden;
        & > .sample-list--highlighted {
            color: $foreground;
            background: $block-cursor-blurred-background;
            text-style: $block-cursor-blurred-text-style;
        }
        & > .sample-list--hover { background: $block-hover-background; }
        &:focus {
            border: none; border-right: vkey $primary;
            background-tint: $foreground 5%;
            & > .sample-list--highlighted {
                color: $block-cursor-foreground;
                background: $block-cursor-background;
                text-style: $block-cursor-text-style;
            }
        }
    }
    SampleList > .sample-list--ok { color: $success; }
    SampleList > .sample-list--error { color: $error; }
    SampleList > .sample-list--muted { color: $text-muted; }
    """

    BINDINGS = [
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
        Binding("pageup", "page_up", "Page Up", show=False),
        Binding("pagedown", "page_down", "Page Down", show=False),
        Binding("enter", "select", "Select", show=False),
    ]

    class Watch(Message):
        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._samples: list[SampleState] = []
        self._keys: list[Key] = []
        self._synced_at = 0.0
        self._highlighted: int | None = None
        self._hover: int | None = None
        self._style_cache: dict | None = None
        # drawing state: what the cached strips were drawn with
        self._look: tuple | None = None
        self._base = Style()
        self._cursor_style = Style()
        self._hover_style = Style()
        self._strips: dict[int, Strip] = {}
        self._cursor_strip: tuple[int, Strip] | None = None

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._forget_look())

    # ---- public -------------------------------------------------------------------------------------
    @property
    def option_count(self) -> int:
        return len(self._keys)

    @property
    def highlighted(self) -> int | None:
        return self._highlighted

    def get_option_at_index(self, index: int) -> Option:
        return Option(self.label(self._samples[index]))

    def label(self, state: SampleState) -> Text:
        """The line as Rich text (for tests and callers; drawing does not go through it)."""
        head, tail, colour = line_parts(state)
        text = Text(head)
        if tail:
            text.append(tail, self._styles()[colour])
        return text

    def sync(self, samples: list[SampleState], watched: int, *, force: bool = False) -> None:
        keys = [(s.status, s.first_error, s.current_turn or s.last_turn) for s in samples]
        self._samples = samples
        if force:
            self._keys = []      # e.g. a new theme: every line is drawn again
            self._forget_look()
        now = monotonic()
        old = self._keys
        if (not force and len(keys) == len(old) and now - self._synced_at < TURNS_EVERY_S
                and all(k[:2] == o[:2] for k, o in zip(keys, old))):
            # Only turn counters moved: they follow once per TURNS_EVERY_S (64 samples x 1,000+ turns/s
            # would redraw every line every flush); a state or first-error change shows at once, and so
            # does the watched sample's turn, which the status line shows in the same flush.
            if 0 <= watched < len(keys) and keys[watched] != old[watched]:
                old[watched] = keys[watched]
                self._strips.pop(watched, None)
                if self._cursor_strip is not None and self._cursor_strip[0] == watched:
                    self._cursor_strip = None
                self._refresh_rows([watched])
            self.show_watched(watched)
            return
        self._synced_at = now
        if len(keys) != len(old):
            self._keys = keys
            self._strips.clear()
            self._cursor_strip = None
            if self._highlighted is not None and self._highlighted >= len(keys):
                self._highlighted = len(keys) - 1 if keys else None
            self.virtual_size = Size(0, len(keys))
            self.refresh()
            # Again once laid out: until then the scroll range is the old one.
            self.call_after_refresh(lambda: self._scroll_into_view(self._highlighted))
        elif keys != old:
            changed = [i for i, (k, o) in enumerate(zip(keys, old)) if k != o]
            self._keys = keys
            for i in changed:
                self._strips.pop(i, None)
            if self._cursor_strip is not None and self._cursor_strip[0] in changed:
                self._cursor_strip = None
            self._refresh_rows(changed)
        self.show_watched(watched)

    def show_watched(self, watched: int) -> None:
        """Highlight `watched` and scroll it into view; no `Watch` message (the screen chose it)."""
        if self._keys:
            self._move_highlight(watched)

    # ---- keys and mouse -----------------------------------------------------------------------------
    def _choose(self, index: int) -> None:
        if not self._keys:
            return
        index = max(0, min(index, len(self._keys) - 1))
        self._move_highlight(index)
        self.post_message(self.Watch(index))

    def action_cursor_up(self) -> None:
        self._choose(len(self._keys) - 1 if self._highlighted is None else self._highlighted - 1)

    def action_cursor_down(self) -> None:
        self._choose(0 if self._highlighted is None else self._highlighted + 1)

    def action_first(self) -> None:
        self._choose(0)

    def action_last(self) -> None:
        self._choose(len(self._keys) - 1)

    def action_page_up(self) -> None:
        self._choose((self._highlighted or 0) - self._page())

    def action_page_down(self) -> None:
        self._choose((self._highlighted or 0) + self._page())

    def action_select(self) -> None:
        if self._highlighted is not None:
            self._choose(self._highlighted)

    def _row_at(self, event: events.MouseEvent) -> int | None:
        offset = event.get_content_offset(self)
        if offset is None:
            return None
        row = offset.y + self.scroll_offset.y
        return row if 0 <= row < len(self._keys) else None

    def on_click(self, event: events.Click) -> None:
        row = self._row_at(event)
        if row is not None:
            self._choose(row)

    def on_mouse_move(self, event: events.MouseMove) -> None:
        row = self._row_at(event)
        if row != self._hover:
            self._refresh_rows([r for r in (self._hover, row) if r is not None])
            self._hover = row

    def on_leave(self, _event: events.Leave) -> None:
        if self._hover is not None:
            self._refresh_rows([self._hover])
            self._hover = None

    def on_resize(self) -> None:
        self._scroll_into_view(self._highlighted)

    def on_show(self) -> None:
        self._scroll_into_view(self._highlighted)

    # ---- highlight, scrolling -------------------------------------------------------------------------
    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height)

    def _move_highlight(self, index: int) -> None:
        index = max(0, min(index, len(self._keys) - 1))
        old = self._highlighted
        if old != index:
            self._highlighted = index
            self._cursor_strip = None
            self._refresh_rows([r for r in (old, index) if r is not None])
        self._scroll_into_view(index)

    def _scroll_into_view(self, row: int | None) -> None:
        if row is None:
            return
        top, page = self.scroll_offset.y, self.scrollable_content_region.height
        if page <= 0:
            return
        if row < top:
            self.scroll_to(y=row, animate=False, immediate=True)
        elif row >= top + page:
            self.scroll_to(y=row - page + 1, animate=False, immediate=True)

    def _refresh_rows(self, rows: list[int]) -> None:
        """Repaint the lines of `rows` that are in view (one region over them: they are few, or most)."""
        top, height = self.scroll_offset.y, self.size.height
        seen = [row - top for row in rows if top <= row < top + height]
        if seen:
            first, last = min(seen), max(seen)
            self.refresh(Region(0, first, self.size.width, last - first + 1))

    # ---- drawing ------------------------------------------------------------------------------------
    def _styles(self) -> dict[str, Style]:
        """The tail colours, resolved once per theme (each costs two style lookups)."""
        if self._style_cache is None:
            self._style_cache = {name: component_style(self, f"sample-list--{name}")
                                 for name in ("ok", "error", "muted")}
        return self._style_cache

    def _forget_look(self) -> None:
        self._style_cache = None
        self._look = None
        self._strips.clear()
        self._cursor_strip = None
        self.refresh()

    def render_lines(self, crop: Region) -> list[Strip]:
        # What the strips depend on besides the samples' states; checked once per repaint, not per line.
        base = self.rich_style
        cursor = self.get_component_rich_style("sample-list--highlighted")
        hover = self.get_component_rich_style("sample-list--hover")
        look = (self.size.width, base, cursor, hover)
        if look != self._look:
            self._look = look
            self._base, self._cursor_style, self._hover_style = base, cursor, hover
            self._style_cache = None
            self._strips.clear()
            self._cursor_strip = None
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        row = y + self.scroll_offset.y
        width = self.size.width
        if row >= len(self._keys) or row >= len(self._samples):
            return Strip.blank(width, self._base)
        if row == self._highlighted:
            if self._cursor_strip is None or self._cursor_strip[0] != row:
                self._cursor_strip = (row, self._draw(row, self._cursor_style))
            return self._cursor_strip[1]
        if row == self._hover:
            return self._draw(row, self._hover_style)
        strip = self._strips.get(row)
        if strip is None:
            strip = self._strips[row] = self._draw(row, self._base)
        return strip

    def _draw(self, row: int, style: Style) -> Strip:
        head, tail, colour = line_parts(self._samples[row])
        width = self.size.width
        text = head + tail
        used = cell_len(text)
        if used > width:          # a huge index or turn: cut, one line per sample
            return Strip([Segment(set_cell_size(text, width), style)], width)
        segments = [Segment(head, style)]
        if tail:
            segments.append(Segment(tail, style + self._styles()[colour]))
        if used < width:
            segments.append(Segment(" " * (width - used), style))
        return Strip(segments, width)
