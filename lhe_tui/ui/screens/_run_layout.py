"""The run view's layout: which panes a terminal of its size shows (charts beside the table when wide), and `g`."""

from __future__ import annotations

from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer

WIDE = 120             # columns from which the charts sit beside the table
TALL = 36              # rows from which the reply view gets taller


def shown(widget: Widget) -> bool:
    """Displayed on the current screen (every ancestor displayed too)."""
    node: Widget | None = widget
    while node is not None and not isinstance(node, Screen):
        if not node.display:
            return False
        node = node.parent  # type: ignore[assignment]
    return isinstance(node, Screen) and node.is_current


class RunLayout:
    """Mixed into the RunScreen: lays it out for its size and `show_charts` (None: the layout's default)."""

    show_charts: bool | None

    def on_resize(self) -> None:
        self._apply_layout()

    def _apply_layout(self) -> None:
        # Not laid out yet (on_mount): the screen will fill the terminal, so lay out for that at once
        # rather than for a narrow one first and again on the first resize (one layout and paint fewer).
        width, height = self.size if self.size.width else self.app.size
        if not width:
            return   # no size known yet: on_resize comes with the real one
        wide, charts_shown, main_shown = self._layout_classes(width, height)
        footer = self.query_one(Footer)
        footer.compact = not wide
        footer.show_command_palette = wide
        self.query_one("#charts").display = charts_shown
        self.query_one("#main").display = main_shown
        self._force = True

    def _layout_classes(self, width: int, height: int) -> tuple[bool, bool, bool]:
        """Set the screen's size classes for a terminal of this size; (wide, charts shown, table shown)."""
        wide = width >= WIDE
        self.set_class(wide, "-wide")
        self.set_class(height >= TALL, "-tall")
        charts = self.show_charts if self.show_charts is not None else wide
        return wide, charts, wide or not charts

    def action_toggle_charts(self) -> None:
        wide = self.size.width >= WIDE
        current = self.show_charts if self.show_charts is not None else wide
        self.show_charts = not current
        self._apply_layout()
        self._metrics_key = None
        self.refresh_metrics()
        self.flush()
