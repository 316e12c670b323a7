"""Component styles for text drawn inside other widgets (table cells, labels, spans)."""

from __future__ import annotations

from rich.style import Style
from textual.widget import Widget


def component_style(widget: Widget, name: str) -> Style:
    """The component's style without the widget's background, its colour resolved against it.

    A partial style alone cannot resolve colours such as `$text-muted` ("auto 60%": contrast with
    whatever is below, with alpha), which then come out nearly invisible on a light theme. The full
    style resolves them; keeping only its colour leaves the table cursor and row backgrounds alone.
    """
    partial = widget.get_component_rich_style(name, partial=True)
    if partial.color is None:
        return partial
    return partial + Style(color=widget.get_component_rich_style(name).color)
