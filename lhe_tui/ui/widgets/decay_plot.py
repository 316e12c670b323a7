"""Accuracy decay across samples: the paper's two curves, task and turn accuracy, over turns (answer accuracy,
answer = gold, on a key), the task curve's bootstrap CI, the theory curve p^t from p before the first error,
and H_0.5 marked. Same metric functions as the CLI."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from lhe_tui.ui.feed import RunModel
from lhe_tui.ui.plotting import ACCURACY_AXIS, Band, Figure, Mark, PlotView, Series

if TYPE_CHECKING:
    from lhe_tui.analysis.decay_curves import DecayData


def counts_label(counts: Sequence[int]) -> str:
    """How many samples the points count: `n=8`, or `n 8→5` (first point, last point) when it changes."""
    if not counts:
        return ""
    first, last = counts[0], counts[-1]
    return f"n={first}" if min(counts) == max(counts) else f"n {first}→{last}"


def injection_marks(turns: Sequence[int]) -> tuple[Mark, ...]:
    """A vertical mark at each injected turn, labelled once (the sum chart and the decay plot share it)."""
    return tuple(Mark(turn, color="accent", label="" if n else "injected") for n, turn in enumerate(turns))


def fork_marks(fork_turn: int | None, last_turn: int) -> tuple[Mark, ...]:
    """A fork's fork point (its last inherited turn), when the plot reaches it (both charts share it)."""
    if fork_turn is None or fork_turn > last_turn:
        return ()
    return (Mark(fork_turn, color="secondary", label=f"fork @{fork_turn}"),)


def decay_figure(data: DecayData | None, injected: Sequence[int] = (), fork_turn: int | None = None,
                 answer: bool = False) -> Figure:
    """`injected`: turns where any sample's history was corrupted, marked on the plot; `fork_turn`: a fork's
    last inherited turn (the fork's own edit there is an injection: the fork mark stands for it); `answer`:
    also answer accuracy (answer = gold, the reference code's index accuracy; the run view's `A` key)."""
    if data is None or not data.task:
        return Figure(empty="accuracy decay: no turns yet")
    s = data.summary
    x = data.turns   # a range, or the few turns a long run's curves were computed at (issue 26)
    series = [Series(x, data.turn, label="turn", color="accent")]
    if answer:
        series.append(Series(x, data.answer, label="answer", color="warning"))
    series.append(Series(x, data.task, label="task", color="primary"))
    if data.theory:
        series.append(Series(x, data.theory, label="p^t", color="muted"))
    bands = ()
    if data.task_low is not None and data.task_high is not None:
        bands = (Band(x, data.task_low, data.task_high),)
    marks = ((Mark(s.horizon_measured, color="error", label=f"H0.5={s.horizon_measured}"),)
             if s.horizon_measured is not None else ())
    marks += injection_marks([t for t in injected if t <= data.last_turn and t != fork_turn])
    marks += fork_marks(fork_turn, data.last_turn)
    parts = [f"{s.n_samples} sample{'s' if s.n_samples != 1 else ''}"]
    if data.counts and (min(data.counts) != s.n_samples or max(data.counts) != s.n_samples):
        parts.append(counts_label(data.counts))   # some points count fewer samples (ragged)
    if s.p_before_first_error is not None:   # the theory curve's p
        p_step = s.p_step_before_first_error
        parts.append(f"p<1st err {s.p_before_first_error:.4f}" + (f" ({p_step:.4f}/step derived)" if s.in_steps
                                                                   and p_step is not None else ""))
    if s.horizon_measured is None:
        parts.append(f"H0.5>{s.n_turns}")
    elif s.in_steps:
        parts.append(f"H0.5={s.horizon_measured} turns={s.horizon_measured_steps} steps")
    return Figure(series=tuple(series), bands=bands, marks=marks, title="accuracy decay · " + " · ".join(parts),
                  xlabel="turn", **ACCURACY_AXIS)


class DecayPlot(PlotView):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.data: DecayData | None = None
        self.injected: tuple[int, ...] = ()
        self.injections_version = -1      # the run model's, when `injected` was last taken from it
        self.fork_turn: int | None = None  # a fork's fork point (the run model's, from RunStarted.lineage)
        self.answer = False                # also answer accuracy (`A` in the run view)

    def set_data(self, data: DecayData | None, injected: Sequence[int] | None = None) -> None:
        self.data = data
        if injected is not None:
            self.injected = tuple(injected)
        self.show(decay_figure(data, self.injected, self.fork_turn, self.answer))

    def toggle_answer(self) -> bool:
        """Show or hide answer accuracy; returns whether it is shown now."""
        self.answer = not self.answer
        self.set_data(self.data)
        return self.answer

    def sync(self, data: DecayData | None, model: RunModel, *, force: bool = False) -> None:
        """On `force` (or a new fork point), redraw `data`; otherwise only follow the model's injected turns,
        when any came."""
        if force or model.fork_turn != self.fork_turn:
            self.fork_turn = model.fork_turn
            self.set_data(data, model.injected_turns())
        elif self.injections_version != model.injections_version:
            injected = model.injected_turns()
            if tuple(injected) != self.injected:
                self.set_data(self.data, injected)
        self.injections_version = model.injections_version
