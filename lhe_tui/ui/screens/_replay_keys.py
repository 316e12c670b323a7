"""The replay keys the run view and the arms view share: step a turn, restart, and the speed ladder."""

from __future__ import annotations

from typing import Any


class ReplayKeys:
    """Mixed into a Screen that has `player` (None when live), `flush()`, `_step(direction)` and
    `_rebuild(events)` (the view rebuilt from what a seek returned)."""

    player: Any

    def flush(self) -> None:
        raise NotImplementedError

    def _step(self, direction: int) -> None:
        raise NotImplementedError

    def _rebuild(self, events: Any) -> None:
        raise NotImplementedError

    def restart(self) -> None:
        """Start the replay over, playing."""
        if self.player is not None:
            self._rebuild(self.player.seek(0))
            if not self.player.playing:
                self.player.toggle()
            self.flush()

    def action_restart(self) -> None:
        self.restart()

    def action_step_forward(self) -> None:
        self._step(+1)

    def action_step_back(self) -> None:
        self._step(-1)

    def action_faster(self) -> None:
        if self.player is not None:
            self.player.faster()
            self.flush()

    def action_slower(self) -> None:
        if self.player is not None:
            self.player.slower()
            self.flush()
