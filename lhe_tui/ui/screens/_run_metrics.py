"""The run view's metrics (decay curves, p, H_0.5): twice a second at most, after the first frame, threaded if large."""

from __future__ import annotations

import time

from textual.widgets import Footer
from textual.worker import Worker, WorkerState

from lhe_tui.analysis.decay_curves import DecayData, compute_decay
from lhe_tui.ui.background import lower_this_threads_priority
from lhe_tui.ui.plotting import MOST_POINTS
from lhe_tui.ui.screens._run_layout import shown

INLINE_METRICS_TURNS = 2_000    # above this many stored turns, metrics are computed in a thread (a 32-sample
                                # bootstrap takes 50-110 ms: inline, that is lag on the UI loop)
FIRST_FRAME_WAIT_S = 1.0   # the metrics wait for the first frame, but never longer than this


class RunMetrics:
    """Mixed into the RunScreen (before Screen, whose `_compositor_refresh` it extends): fills `decay` from the
    metrics worker; `metrics_worker_changed` takes that worker's state changes."""

    def _compositor_refresh(self) -> None:
        """Textual's paint of this screen. The first one written to the terminal with the footer's keys
        in it (they are composed a few refreshes after the screen) completes the first frame."""
        super()._compositor_refresh()
        app = self.app
        if self._first_frame and app.screen is self and getattr(app, "_running", True) \
                and not getattr(app, "_batch_count", 0) and self.query_one(Footer).children:
            self._first_frame = False
            self.call_later(self._after_first_frame)

    def _after_first_frame(self) -> None:
        """The metrics (and numpy, 0.2-0.3 s to import the first time) wait for the first frame (issue 6)."""
        self._first_frame = False
        self.refresh_metrics()

    def refresh_metrics(self) -> None:
        if self._first_frame:
            if time.monotonic() - self._mounted_at < FIRST_FRAME_WAIT_S:
                return   # after the first frame (_compositor_refresh)
            self._after_first_frame()   # never seen painting (a Textual change?): go on without it
            return
        with_ci = shown(self.decay_plot)
        key = (self.model.flags_version, with_ci)
        if self._metrics_busy or key == self._metrics_key:
            return
        if self._metrics_key is not None and key[0] == self._metrics_key[0] and not with_ci:
            return  # only the plot went away: nothing new to compute
        self._metrics_key = key
        correct, update = self.model.flags()
        ragged = dict(status=self.model.statuses(), turns=self.model.n_turns or None, k=self.model.k,
                      answered=self.model.answered)
        if self.model.turns_done + sum(len(c) for c in correct) < INLINE_METRICS_TURNS:
            self._set_decay(compute_decay(correct, update, with_ci=with_ci, points=MOST_POINTS, **ragged))
            return
        self._metrics_busy = True
        def compute() -> DecayData:
            lower_this_threads_priority()
            return compute_decay(correct, update, with_ci=with_ci, points=MOST_POINTS, **ragged)

        self.run_worker(compute, name="metrics", group="metrics", thread=True, exit_on_error=False)

    def _set_decay(self, data: DecayData) -> None:
        self.decay = data
        if shown(self.decay_plot):
            self.decay_plot.set_data(data)
        self.status_bar.sync(self.model, data.summary, self._source_info())

    def metrics_worker_changed(self, worker: Worker, state: WorkerState) -> None:
        """The metrics thread has answered (or failed: the next tick tries again)."""
        if state == WorkerState.SUCCESS:
            self._metrics_busy = False
            self._set_decay(worker.result)
        elif state in (WorkerState.ERROR, WorkerState.CANCELLED):
            self._metrics_busy = False
