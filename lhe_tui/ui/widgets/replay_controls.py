"""One line under a replay: play state, speed, position (frames and replay clock) and a progress bar."""

from __future__ import annotations

import math

from rich.text import Text
from textual.widgets import Static

from lhe_tui.store.replay_player import ReplayPlayer
from lhe_tui.ui.widgets._style import component_style


def speed_label(speed: float) -> str:
    return "instant" if math.isinf(speed) else f"{speed:g}x"


class ReplayControls(Static):
    COMPONENT_CLASSES = {"replay-controls--bar", "replay-controls--rest", "replay-controls--state"}

    DEFAULT_CSS = """
    ReplayControls { height: 1; background: $panel; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    ReplayControls > .replay-controls--bar { color: $primary; }
    ReplayControls > .replay-controls--rest { color: $text-muted; }
    ReplayControls > .replay-controls--state { text-style: bold; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self._key: tuple | None = None

    def sync(self, player: ReplayPlayer) -> None:
        replay = player.replay
        width = max(10, self.size.width - 2)
        key = (player.playing, player.speed, replay.position, len(replay), width)
        if key == self._key:
            return
        self._key = key
        self.update(self.compose_text(player, width))

    def compose_text(self, player: ReplayPlayer, width: int) -> Text:
        replay = player.replay
        total = len(replay)
        state = "▶ playing" if player.playing else ("■ end" if replay.at_end else "‖ paused")
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(state, component_style(self, "replay-controls--state"))
        t.append(f" · {speed_label(player.speed)} · turns {replay.position}/{total} ")
        bar_width = max(4, width - len(t.plain) - 1)
        done = round(bar_width * replay.position / total) if total else bar_width
        t.append("━" * done, component_style(self, "replay-controls--bar"))
        t.append("─" * (bar_width - done), component_style(self, "replay-controls--rest"))
        return t
