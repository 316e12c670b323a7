"""The sample switcher: one line per sample with its state (running, first error at turn t, finished)."""

from __future__ import annotations

import time

from rich.text import Text
from textual.message import Message
from textual.widgets import OptionList

from lhe_tui.ui.feed import SampleState
from lhe_tui.ui.widgets._style import component_style

TURNS_EVERY_S = 1.0
"""Turn counters alone refresh at most this often."""

GLYPHS = {"pending": "·", "running": "▶", "finished": "●", "stopped": "■", "failed": "!"}


class SampleList(OptionList):
    """Highlighting a sample (arrow keys, click) asks the screen to watch it."""

    COMPONENT_CLASSES = {"sample-list--ok", "sample-list--error", "sample-list--muted"}

    DEFAULT_CSS = """
    SampleList { width: 14; height: 1fr; border: none; border-right: vkey $panel-lighten-1; padding: 0; }
    SampleList:focus { border: none; border-right: vkey $primary; }
    SampleList > .sample-list--ok { color: $success; }
    SampleList > .sample-list--error { color: $error; }
    SampleList > .sample-list--muted { color: $text-muted; }
    """

    class Watch(Message):
        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._labels: list[tuple] = []
        self._synced_at = 0.0
        self._programmatic: list[int] = []   # highlights we set ourselves: not the user's choice
        self._style_cache: dict | None = None

    def _styles(self) -> dict:
        """The label colours, resolved once per theme (each costs two style lookups: ~0.5 ms per label
        when done per label, a whole frame's worth with 64 samples)."""
        if self._style_cache is None:
            self._style_cache = {k.rsplit("--", 1)[1]: component_style(self, k) for k in self.COMPONENT_CLASSES}
        return self._style_cache

    def label(self, state: SampleState) -> Text:
        style = self._styles()
        text = Text(f"{GLYPHS.get(state.status, '?')} s{state.index:<3}")
        if state.first_error is not None:
            text.append(f"✗{state.first_error}", style["error"])
        elif state.status == "finished":
            text.append("ok", style["ok"])
        elif state.current_turn or state.records:
            text.append(f"t{state.current_turn or state.last_turn}", style["muted"])
        return text

    def sync(self, samples: list[SampleState], watched: int, *, force: bool = False) -> None:
        keys = [(s.status, s.first_error, s.current_turn or s.last_turn) for s in samples]
        if force:
            self._labels = []   # e.g. a new theme: the labels' colours are baked in
            self._style_cache = None
        now = time.monotonic()
        if (not force and len(keys) == len(self._labels) and now - self._synced_at < TURNS_EVERY_S
                and all(k[:2] == old[:2] for k, old in zip(keys, self._labels))):
            # Only turn counters moved: an OptionList repaints every line when one changes (40 ms for 32
            # samples), so counters follow once per TURNS_EVERY_S; a state or first-error change shows at
            # once.
            self.show_watched(watched)
            return
        self._synced_at = now
        if keys != self._labels or self.option_count != len(samples):
            if self.option_count != len(samples):
                self.set_options([self.label(s) for s in samples])
            else:
                for index, (state, key) in enumerate(zip(samples, keys)):
                    if index >= len(self._labels) or self._labels[index] != key:
                        self.replace_option_prompt_at_index(index, self.label(state))
            self._labels = keys
        self.show_watched(watched)

    def _replace_option_prompt(self, index: int, prompt: Text) -> None:  # type: ignore[override]
        """Repaint only the option whose prompt changed.

        OptionList drops the rendering of every option and re-measures all lines when one prompt changes:
        with 32 samples that repaint took 20-90 ms on the UI loop during a run (issue 6 UI lag). When the
        new prompt takes as many lines as the old one, only this option's rendering goes.
        """
        option = self.get_option_at_index(index)
        option._set_prompt(prompt)
        line = self._index_to_line.get(index)
        padding = self.get_component_styles("option-list--option").padding
        width = self.scrollable_content_region.width - self._get_left_gutter_width() - padding.width
        if line is None or self._get_visual(option).get_height(self.styles, width) != self._heights.get(index):
            self._clear_caches()
            return
        cache = self._option_render_cache
        for key in [key for key in cache.keys() if key[0] is option]:
            cache.discard(key)
        self.refresh_lines(line, self._heights[index])

    def show_watched(self, watched: int) -> None:
        if self.option_count and self.highlighted != watched:
            self._programmatic.append(watched)
            self.highlighted = watched

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        if event.option_index in self._programmatic:
            self._programmatic.remove(event.option_index)
            return
        self.post_message(self.Watch(event.option_index))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.post_message(self.Watch(event.option_index))
