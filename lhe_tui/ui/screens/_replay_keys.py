"""The replay keys the run view and the arms view share: step a turn, and the speed ladder."""

from __future__ import annotations

from typing import Any


class ReplayKeys:
    """Mixed into a Screen that has `player` (None when live), `flush()` and `_step(direction)`."""

    player: Any

    def flush(self) -> None:
        raise NotImplementedError

    def _step(self, direction: int) -> None:
        raise NotImplementedError

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
