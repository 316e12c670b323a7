"""The run view's playback keys (pause/play, stop, step, restart, first error); a failed store read stops a replay."""

from __future__ import annotations

import functools
import sqlite3

from lhe_tui.common.errors import StoreError


def reads_store(method):
    """A replay reads the store as it plays: a read that fails (a page damaged since it opened) stops the
    replay and says so in place, instead of ending the app with a traceback."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (StoreError, sqlite3.Error) as exc:
            self.replay_failed(exc)
            return None
    return wrapper


class RunPlayback:
    """Mixed into the RunScreen: drives its `live` run or its replay `player`, and `flush`es what moved."""

    @reads_store
    def action_play_pause(self) -> None:
        if self.live is not None:
            if not self.model.running:
                self.notify("the run is over", severity="warning")
            elif self.live.paused or self.model.status == "paused":
                self.live.resume()
            else:
                self.live.pause()
            return
        assert self.player is not None
        if self.player.replay.at_end and not self.player.playing:
            self._rebuild(self.player.seek(0))
        self.player.toggle()
        self.flush()

    def action_stop(self) -> None:
        if self.live is None or not self.model.running:
            return
        self.live.stop()
        self.notify("stopping: turns in flight are dropped, the session ends interrupted", title="stop")

    @reads_store
    def action_first_error(self) -> None:
        index = self.model.watched
        state = self.model.sample(index)
        if self.player is not None:
            position = self.player.replay.first_error_position(index)
            if position is None:
                self.notify(f"s{index} has no wrong answer in this session", severity="warning")
                return
            if position != self.player.position:   # forwards, or back when the replay is past it
                events, backward = self.player.goto(position)
                if backward:
                    self.model.undo_all(events)
                else:
                    self.model.apply_all(events)
                self._moved = True
                self.flush()
            state = self.model.sample(index)
        if state is None or state.first_error is None:
            self.notify(f"s{index} has no wrong answer yet", severity="warning")
            return
        self.table.sync(state)
        self.table.go_to_turn(state.first_error)

    @reads_store
    def _step(self, direction: int) -> None:
        assert self.player is not None
        target = self.player.replay.sample_step(self.model.watched, direction)
        if target is None:
            self.notify("no more turns of this sample that way", severity="warning", timeout=2)
            return
        events, backward = self.player.goto(target)
        if backward:
            self.model.undo_all(events)
            self._moved = True
        else:
            for event in events:
                self.feed.push(event)
        self.flush()
        self.table.go_to_newest()

    @reads_store
    def action_restart(self) -> None:
        """Start the replay over, playing (a store that fails to read stops the replay: `reads_store`)."""
        self.restart()

    def replay_failed(self, error: BaseException) -> None:
        """The store failed under the replay: it stops where it is, and the screen says why (once)."""
        if self.player is not None:
            self.player.playing = False
        message = self.app.describe_error(error)  # type: ignore[attr-defined]
        if message != getattr(self, "_store_failure", None):
            self._store_failure = message
            self.sub_title = f"replay stopped: {message}"
            self.notify(message, title="replay stopped", severity="error", timeout=30, markup=False)
