"""The watched sample's running sum, the model's answer against gold, over turns; the first error marked."""

from __future__ import annotations

import time

from lhe_tui.ui.feed import SampleState
from lhe_tui.ui.plotting import MOST_POINTS, Figure, Mark, PlotView, Series
from lhe_tui.ui.turn_records import TurnRecords
from lhe_tui.ui.widgets.decay_plot import fork_marks, injection_marks

NEW_TURNS_EVERY_S = 0.5


def sum_figure(state: SampleState | None, fork_turn: int | None = None) -> Figure:
    """`fork_turn`: a fork's last inherited turn, marked (the fork's edit there too)."""
    if state is None or not state.records:
        return Figure(empty="running sum: no turns yet")
    records = state.records
    # The plot shows a few hundred points at most: a long run's chart takes that many evenly spaced turns
    # (the last one always), not a list of every turn each time it is drawn (issue 26).
    if not isinstance(records, TurnRecords):   # a list (tests): the same rows as the run model's would be
        records = TurnRecords(records, sample=state.index)
    turns, gold, answers = records.chart_columns(MOST_POINTS)   # the rows it keeps: no record read back
    answered = [(t, a) for t, a in zip(turns, answers) if a is not None]
    series = []
    if answered:
        series.append(Series([t for t, _ in answered], [a for _, a in answered], label="model", color="primary"))
    # Gold last, on top: where the model agrees the line is gold; where it drifts, both show.
    series.append(Series(turns, gold, label="gold", color="success"))
    marks: list[Mark] = []
    title = f"s{state.index} running sum: model vs gold"
    if state.first_error is not None:
        marks.append(Mark(state.first_error, color="error", label=f"first error t{state.first_error}"))
    marks.extend(injection_marks(sorted(t for t in state.injections if t != fork_turn)))
    marks.extend(fork_marks(fork_turn, turns[-1]))
    return Figure(series=tuple(series), marks=tuple(marks), title=title, xlabel="turn", y_integer=True)


class SumChart(PlotView):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._key: tuple | None = None
        self._shown_at = 0.0

    def sync(self, state: SampleState | None, *, force: bool = False, fork_turn: int | None = None) -> bool:
        key = None if state is None else (state.index, len(state.records), state.generation, len(state.injections),
                                          fork_turn)
        if key == self._key and not force:
            return False
        now = time.monotonic()
        if (not force and key is not None and self._key is not None and key[0] == self._key[0]
                and key[2:] == self._key[2:] and now - self._shown_at < NEW_TURNS_EVERY_S):
            return False   # only new turns of the same sample: at most twice a second
        self._shown_at = now
        self._key = key
        self.show(sum_figure(state, fork_turn))
        return True
