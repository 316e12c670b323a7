"""Target-turn probe results: accuracy at turn T against the history's error rate, with the bootstrap 95% CI
drawn as an error bar at each rate. Several probe sessions overlay, one theme colour each."""

from __future__ import annotations

from dataclasses import dataclass

from lhe_tui.runs.probe import ProbeRow
from lhe_tui.ui.plotting import ACCURACY_AXIS, UNIT_TICKS, Figure, PlotView, Series
from lhe_tui.ui.widgets.compare_plot import session_colour


@dataclass(frozen=True)
class ProbeResult:
    session_id: str
    label: str                 # legend label: short id and T
    model: str                 # provider/model, "(sim)" when simulated
    status: str
    target_turn: int | None
    samples_per_rate: int | None
    rows: list[ProbeRow]


def probe_figure(results: list[ProbeResult]) -> Figure:
    if not any(r.rows for r in results):
        return Figure(empty="probe: no answers stored yet")
    series: list[Series] = []
    for index, result in enumerate(results):
        colour = session_colour(index)
        rows = [r for r in result.rows if r.accuracy is not None]
        if not rows:
            continue
        # Error bars first, so the accuracy line and its points are drawn over them.
        for n, row in enumerate(r for r in rows if r.ci_low is not None and r.ci_high is not None):
            series.append(Series([row.rate, row.rate], [row.ci_low, row.ci_high], color="muted",
                                 label="95% CI" if index == 0 and n == 0 else ""))
        x, y = [r.rate for r in rows], [r.accuracy for r in rows]
        label = result.label if len(results) > 1 else "accuracy at T"
        series.append(Series(x, y, label=label, color=colour))
        series.append(Series(x, y, color=colour, kind="scatter", marker="●"))
    turns = {r.target_turn for r in results}
    at = f"turn {turns.pop()}" if len(turns) == 1 and None not in turns else "the target turn"
    return Figure(series=tuple(series), title=f"accuracy at {at} vs history error rate",
                  xlabel="error rate in the history", xlim=(-0.05, 1.05), xticks=UNIT_TICKS,
                  **ACCURACY_AXIS)


class ProbePlot(PlotView):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.results: list[ProbeResult] = []

    def set_results(self, results: list[ProbeResult]) -> None:
        self.results = list(results)
        self.show(probe_figure(self.results))
