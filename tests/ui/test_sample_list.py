"""The sample list's labels: colours resolved once per theme, and again after a theme change."""

from __future__ import annotations

from textual.app import App, ComposeResult

from lhe_tui.ui.feed import SampleState
from lhe_tui.ui.widgets.sample_list import SampleList


class ListApp(App):
    def compose(self) -> ComposeResult:
        yield SampleList()


def erring(index: int) -> SampleState:
    state = SampleState(index)
    state.status, state.first_error = "running", 3
    return state


async def test_label_colours_are_resolved_once_per_theme_and_follow_a_theme_change():
    app = ListApp()
    async with app.run_test() as pilot:
        app.theme = "textual-dark"
        await pilot.pause()
        samples = app.query_one(SampleList)
        samples.sync([erring(i) for i in range(4)], 0, force=True)
        styles = samples._style_cache
        dark = samples.label(erring(0)).spans[0].style
        samples.sync([erring(i) for i in range(4)], 1)
        assert samples._style_cache is styles          # not looked up again per label or per sync
        app.theme = "gruvbox"
        await pilot.pause()
        samples.sync([erring(i) for i in range(4)], 0, force=True)   # what the run screen does on a theme change
        light = samples.label(erring(0)).spans[0].style
    assert samples._style_cache is not styles
    assert dark.color != light.color                # $error differs between the two themes
