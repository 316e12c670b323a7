"""A Footer whose keys are in the screen's first frame.

Textual's Footer composes nothing at first. It waits for the screen to publish its bindings, then
recomposes after the next refresh, and only then styles its keys: a few refreshes after the screen,
0.1-0.45 s into `lhe-tui replay ID` on a busy machine, and until then the frame has no footer (issue 6,
replay first frame). This one composes its keys with the screen, from the bindings active then (the
screen's and the app's; no widget is focused yet), and recomposes later only when the keys it would
show have changed (a focused widget's own shown keys, an action enabled or disabled, the palette key).
"""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer


class QuickFooter(Footer):
    _shown: tuple | None = None   # what the last compose showed

    def _signature(self, screen: Screen) -> tuple:
        keys = tuple((key, b.binding.action, b.binding.description, b.enabled, b.tooltip)
                     for key, b in screen.active_bindings.items() if b.binding.show)
        return keys, self.show_command_palette, self.combine_groups

    def compose(self):
        self.set_reactive(Footer._bindings_ready, True)
        self._shown = self._signature(self.screen)
        return super().compose()

    def bindings_changed(self, screen: Screen) -> None:
        if self._shown is not None and self.is_attached and screen is self.screen \
                and self._signature(screen) == self._shown:
            return   # the same keys: no recompose (it would mount and style every key again)
        super().bindings_changed(screen)

    def watch_show_command_palette(self) -> None:
        # Textual's Footer shows a change only at its next recompose (a change of bindings).
        if self._shown is not None and self.is_attached and self._signature(self.screen) != self._shown:
            self.call_after_refresh(self.recompose)
