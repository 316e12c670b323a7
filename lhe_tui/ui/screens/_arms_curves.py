"""The arms view's decay curves: recomputed from the arms' flags (2 Hz), in a worker thread for large runs."""

from __future__ import annotations

from typing import Any

from textual.worker import Worker, WorkerState

from lhe_tui.analysis.decay_curves import DecayData, compute_decay
from lhe_tui.ui.background import lower_this_threads_priority
from lhe_tui.ui.plotting import MOST_POINTS
from lhe_tui.ui.screens._arms_pane import ArmPane
from lhe_tui.ui.widgets.arms_plot import ArmCurve, ArmsDecayPlot

INLINE_METRICS_TURNS = 2_000  # above this many turns in all arms, the curves are computed in a thread


class ArmsCurves:
    """Mixed into the arms Screen, which has `panes`, `plot`, `_metrics_busy` and `_force_redraw()`, and calls
    `refresh_metrics` on a timer and `_curves_computed` when its "arms-metrics" worker changes state."""

    panes: list[ArmPane]
    plot: ArmsDecayPlot
    _metrics_busy: bool
    _force_redraw: Any
    run_worker: Any
    has_class: Any

    def refresh_metrics(self) -> None:
        stale = [p for p in self.panes if p.model.flags_version != p.metrics_version]
        if self._metrics_busy or not stale:
            self._draw_plot()
            return
        jobs = []
        for pane in stale:
            pane.metrics_version = pane.model.flags_version
            correct, update = pane.model.flags()
            jobs.append((pane, correct, update, dict(status=pane.model.statuses(), turns=pane.model.n_turns or None,
                                                  k=pane.model.k, answered=pane.model.answered)))
        size = sum(len(c) for _pane, correct, _update, _kw in jobs for c in correct)
        if size < INLINE_METRICS_TURNS:
            for pane, correct, update, kw in jobs:
                pane.decay = compute_decay(correct, update, with_ci=False, points=MOST_POINTS, **kw)
            self._draw_plot()
            return
        self._metrics_busy = True

        def compute() -> list[tuple[ArmPane, DecayData]]:
            lower_this_threads_priority()
            return [(pane, compute_decay(correct, update, with_ci=False, points=MOST_POINTS, **kw))
                    for pane, correct, update, kw in jobs]

        self.run_worker(compute, name="arms metrics", group="arms-metrics", thread=True, exit_on_error=False)

    def _draw_plot(self, *, force: bool = False) -> None:
        self.plot.set_arms([ArmCurve(p.name, p.colour, p.decay, p.injected_turns(), p.model.n_turns,
                                     p.model.fork_turn)
                            for p in self.panes], compact=self.has_class("-narrow"),
                           force=force)

    def _curves_computed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state == WorkerState.SUCCESS:
            self._metrics_busy = False
            for pane, data in worker.result:
                pane.decay = data
            self._draw_plot()
            self._force_redraw()
        elif event.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            self._metrics_busy = False
