"""One arm in the arms view: its source (a live run or none, in a replay), event feed, model and latest curves."""

from __future__ import annotations

from lhe_tui.analysis.decay_curves import DecayData
from lhe_tui.ui.feed import EventFeed, RunModel
from lhe_tui.ui.live import LiveRun
from lhe_tui.ui.widgets.compare_plot import session_colour


class ArmPane:
    """One arm: its source, feed, model and latest curves."""

    def __init__(self, index: int, name: str, *, live: LiveRun | None = None) -> None:
        self.index = index
        self.name = name
        self.colour = session_colour(index)
        self.live = live
        self.feed = EventFeed()
        self.model = RunModel(live=live is not None)
        self.decay: DecayData | None = None
        self.metrics_version = -1
        self.failure = ""
        self.announced_end = False
        if live is not None:
            live.subscribe(self.feed)

    @property
    def running(self) -> bool:
        return self.live is not None and self.model.running and not self.failure

    def injected_turns(self) -> tuple[int, ...]:
        return tuple(self.model.injected_turns())
