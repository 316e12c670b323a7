"""Several sessions' task- and turn-accuracy curves in one plot, one theme colour per session.

The curves are `lhe_tui.analysis.compare.SessionCurves` (the numbers behind `lhe-tui compare`); this module only
decides what to draw: task accuracy as a line, turn accuracy as dots in the same colour, and a faint line
at 0.5 (a task curve crosses it at the session's H_0.5).
"""

from __future__ import annotations

from dataclasses import dataclass

from lhe_tui.analysis.compare import SessionCurves
from lhe_tui.ui.plotting import ACCURACY_AXIS, Figure, PlotView, Series

# Theme variables, in the order sessions get them; more sessions than colours reuse them in turn.
PALETTE = ("primary", "warning", "success", "accent", "error", "secondary")
CURVES = ("both", "task", "turn")          # `t` cycles through these


def session_colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


@dataclass(frozen=True)
class CompareEntry:
    curves: SessionCurves
    legend: str            # short label: short id + history policy


def compare_figure(entries: list[CompareEntry], curves: str = "both") -> Figure:
    if not entries or not any(e.curves.n_turns for e in entries):
        return Figure(empty="compare: no turns stored in these sessions")
    longest = max(e.curves.n_turns for e in entries)
    # A faint line at 0.5: where a task curve crosses it is that session's H_0.5.
    series: list[Series] = [Series([1, max(2, longest)], [0.5, 0.5], color="muted")] if curves != "turn" else []
    for index, entry in enumerate(entries):
        c = entry.curves
        colour = session_colour(index)
        x = list(range(1, c.n_turns + 1))
        if curves in ("both", "turn"):
            # Under "both", turn accuracy is a scatter of small dots so the task lines stay readable.
            series.append(Series(x, c.turn_curve, label="" if curves == "both" else entry.legend, color=colour,
                                 kind="scatter" if curves == "both" else "line",
                                 marker="·" if curves == "both" else "braille"))
        if curves in ("both", "task"):
            series.append(Series(x, c.task_curve, label=entry.legend, color=colour))
    what = {"both": "task accuracy (lines), turn accuracy (dots)", "task": "task accuracy",
            "turn": "turn accuracy"}[curves]
    title = f"{what} · {len(entries)} session{'s' if len(entries) != 1 else ''}"
    if curves != "turn":
        title += " · H0.5 where a line crosses 0.5"
    return Figure(series=tuple(series), title=title, xlabel="turn", **ACCURACY_AXIS)


class ComparePlot(PlotView):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.entries: list[CompareEntry] = []
        self.curves = "both"

    def set_entries(self, entries: list[CompareEntry]) -> None:
        self.entries = list(entries)
        self.show(compare_figure(self.entries, self.curves))

    def set_curves(self, curves: str) -> None:
        if curves not in CURVES:
            raise ValueError(f"curves must be one of {CURVES}, got {curves!r}")
        self.curves = curves
        self.show(compare_figure(self.entries, self.curves))
