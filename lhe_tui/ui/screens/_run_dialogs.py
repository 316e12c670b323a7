"""The run view's keys that take the session elsewhere: `F` forks it, `r` shows what was sent, `P` saves its figure."""

from __future__ import annotations

import functools
import sqlite3


class RunDialogs:
    """Mixed into the RunScreen: reads its `model`, `live`, `player` and `table` (the cursor's turn)."""

    def action_fork(self) -> None:
        """`F`: fork this session at the cursor's turn (a dialog), then run the fork live in place of this view."""
        from lhe_tui.ui.screens.fork import ForkDefaults, ForkScreen, refuse_or_hold

        model = self.model
        if self.live is not None and model.running:
            return   # on_key said why
        problem = getattr(self.app, "store_problem", None)
        session_id = model.session_id or (self.player.replay.session_id if self.player is not None else "")
        turn = self.table.cursor_turn()
        running = [screen for screen in self.app.live_runs() if screen is not self]  # type: ignore[attr-defined]
        if problem is not None:
            why = problem
        elif running:   # checked now: the fork would be stored, then refused a start
            why = "a run is already going: stop it first (x in its view), then fork"
        elif model.kind != "run":
            why = f"a {model.kind} session cannot be forked: only runs"
        elif not session_id or turn is None:
            why = "no turn under the cursor yet: nothing to fork"
        else:
            why = None
        if refuse_or_hold(self, why):
            return
        defaults = ForkDefaults.of_run(model.config, parent_id=session_id, turn=turn, sample=model.watched,
                                       n_samples=len(model.samples), turns=model.n_turns)
        dialog = ForkScreen(defaults, self.app.db_path)  # type: ignore[attr-defined]

        def created(fork_id: str | None) -> None:
            if fork_id is not None:
                # After the dialog has gone: the fork's live view takes this view's place.
                self.app.call_later(self.app.start_fork, fork_id, self, dialog.description)  # type: ignore[attr-defined]

        self.app.push_screen(dialog, created)

    def action_save_figure(self) -> None:
        """`P`: the watched session's decay figure (a probe's probe figure) as SVG beside the store, in a
        thread (the bootstrap and matplotlib take a second on a large run); toasts the path or the one-line
        error (the `figures` extra missing, nothing stored yet)."""
        session_id = (self.model.session_id or (self.live.session_id if self.live is not None else "")
                      or (self.player.replay.session_id if self.player is not None else ""))
        if not session_id:
            self.notify("no session yet: nothing to draw", severity="warning", timeout=4)
            return
        self.notify(f"drawing the figure of {session_id}…", title="figure", timeout=2)
        self.run_worker(functools.partial(self._write_figure, session_id), thread=True, group="figure",
                        exclusive=True, exit_on_error=False)

    def _write_figure(self, session_id: str) -> None:
        from lhe_tui.common.errors import LheError
        from lhe_tui.reports.figures import write_session_figure

        try:
            path = write_session_figure(self.app.db_path, session_id)  # type: ignore[attr-defined]
        except (LheError, sqlite3.Error) as exc:
            self.app.call_from_thread(self.notify, str(exc), title="figure not written", severity="error",
                                      timeout=10, markup=False)
            return
        self.app.call_from_thread(self.notify, f"wrote {path}", title="figure", timeout=8, markup=False)

    def action_show_request(self) -> None:
        """`r`: the exact request of the turn under the cursor (the newest while following), rebuilt from the
        store as resume rebuilds a history."""
        from lhe_tui.ui.screens.request import RequestScreen

        record = self.table.cursor_record()
        session_id = self.model.session_id
        if record is None or not session_id:
            self.notify("no turn yet: nothing was sent", severity="warning", timeout=3)
            return
        if self.model.kind == "probe":
            self.notify("a probe's history is synthetic: `lhe-tui show ID` gives its results", severity="warning")
            return
        self.app.push_screen(RequestScreen(self.app.db_path, session_id, record.sample, record.turn))  # type: ignore[attr-defined]
