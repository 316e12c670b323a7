"""The arms' accuracy decay in one plot (issue 15): each arm's task-accuracy curve as a line and its turn
accuracy as dots, in the arm's colour (the colours of its status line and table header), a faint line at 0.5
(where an arm's task line crosses it is its H0.5), and the turns any arm was injected at."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lhe_tui.ui.plotting import ACCURACY_AXIS, Figure, Mark, PlotView, Series

if TYPE_CHECKING:
    from lhe_tui.analysis.decay_curves import DecayData


@dataclass(frozen=True)
class ArmCurve:
    name: str
    colour: str
    data: DecayData | None
    injected: tuple[int, ...] = field(default=())
    turns: int = 0          # the run's --turns (0: not known): the x axis spans them from the start
    fork_turn: int | None = None   # a fork's last inherited turn (marked "fork @T")


def arms_figure(arms: Sequence[ArmCurve], *, compact: bool = False) -> Figure:
    """`compact`: a short plot (under the table in a narrow terminal): no x label, its line goes to the curves."""
    drawn = [a for a in arms if a.data is not None and a.data.task]
    if not drawn:
        return Figure(empty="accuracy decay: no turns yet")
    longest = max(a.data.last_turn for a in drawn)   # type: ignore[union-attr]
    turns = max([a.turns for a in arms] + [longest])
    series: list[Series] = [Series([1, max(2, turns)], [0.5, 0.5], color="muted")]
    parts = []
    for arm in drawn:
        data = arm.data
        assert data is not None
        x = list(data.turns)
        series.append(Series(x, data.turn, color=arm.colour, kind="scatter", marker="·"))
        series.append(Series(x, data.task, label=arm.name, color=arm.colour))
        h = data.summary.horizon_measured
        parts.append(f"{arm.name} H0.5={h}" if h is not None else f"{arm.name} H0.5>{data.summary.n_turns}")
    forks = sorted({a.fork_turn for a in drawn if a.fork_turn is not None})
    injected = sorted({t for a in drawn for t in a.injected if t <= longest} - set(forks))   # a fork's edit: its mark
    marks = (tuple(Mark(t, color="secondary", label=f"fork @{t}") for t in forks)
             + tuple(Mark(t, color="accent", label="" if n else "injected") for n, t in enumerate(injected)))
    # The whole run from the start (0..turns: round ticks for round turn counts), so the arms' curves keep
    # their places as they grow instead of the axis stretching under them.
    what = "task acc (lines), turn acc (dots)" + (" by turn" if compact else "")
    return Figure(series=tuple(series), marks=marks, xlabel="" if compact else "turn", **ACCURACY_AXIS,
                  xlim=(0, turns), title=what + " · " + " · ".join(parts))


class ArmsDecayPlot(PlotView):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.arms: tuple[ArmCurve, ...] = ()
        self.compact = False

    def set_arms(self, arms: Sequence[ArmCurve], *, compact: bool | None = None, force: bool = False) -> bool:
        """Draw these curves; False (nothing drawn) when they are the ones shown."""
        arms = tuple(arms)
        compact = self.compact if compact is None else compact
        if not force and arms == self.arms and compact == self.compact:
            return False
        self.arms, self.compact = arms, compact
        self.show(arms_figure(arms, compact=compact))
        return True
