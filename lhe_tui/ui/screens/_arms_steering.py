"""The arms view's keys that steer live arms: which arms they act on (tab, shift+tab, a), pause, stop, inject."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from lhe_tui.ui.screens._arms_pane import ArmPane

if TYPE_CHECKING:
    from lhe_tui.ui.screens.inject import InjectRequest


class ArmsSteering:
    """Mixed into the arms Screen, which has `panes`, `watched`, `focused_arm`, `all_arms` and `_force_redraw()`."""

    panes: list[ArmPane]
    watched: int
    focused_arm: int
    all_arms: bool
    _force_redraw: Any
    notify: Any
    app: Any

    def targets(self) -> list[ArmPane]:
        return list(self.panes) if self.all_arms else [self.panes[self.focused_arm]]

    def _names(self, panes: Iterable[ArmPane]) -> str:
        return ", ".join(p.name for p in panes)

    def _refocus(self, arm: int) -> None:
        self.focused_arm = arm % len(self.panes)
        self.all_arms = False
        self._force_redraw()

    def action_next_arm(self) -> None:
        self._refocus(self.focused_arm + (0 if self.all_arms else 1))

    def action_prev_arm(self) -> None:
        self._refocus(self.focused_arm - (0 if self.all_arms else 1))

    def action_all_arms(self) -> None:
        self.all_arms = not self.all_arms
        self.notify("keys act on every arm (a again: only the focused one)" if self.all_arms else
                    f"keys act on arm {self.panes[self.focused_arm].name}", timeout=3)
        self._force_redraw()

    def _pause_or_resume_targets(self) -> None:
        """Space in a live view: pause the targeted running arms, or resume them if all are paused."""
        panes = [p for p in self.targets() if p.running]
        if not panes:
            self.notify(f"nothing to pause: {self._names(self.targets())} "
                        f"{'has' if len(self.targets()) == 1 else 'have'} ended", severity="warning")
            return
        # All arms: pause every one unless every one is paused already (then resume them all).
        pause = any(not (p.live.paused or p.model.status == "paused") for p in panes)  # type: ignore[union-attr]
        for pane in panes:
            assert pane.live is not None
            pane.live.pause() if pause else pane.live.resume()

    def action_stop(self) -> None:
        panes = [p for p in self.targets() if p.running]
        if not panes:
            return
        for pane in panes:
            assert pane.live is not None
            pane.live.stop()
        self.notify(f"stopping {self._names(panes)}: turns in flight are dropped, "
                    f"{'the session ends' if len(panes) == 1 else 'the sessions end'} interrupted", title="stop")

    def _injectable(self) -> list[ArmPane]:
        panes = []
        for pane in self.targets():
            state = pane.model.sample(self.watched)
            if pane.running and state is not None and state.records:
                panes.append(pane)
        if not panes:
            self.notify(f"nothing to inject into: s{self.watched} has no finished turn in "
                        f"{self._names(self.targets())}, or the run is over", severity="warning")
        return panes

    def action_inject(self) -> None:
        for pane in self._injectable():
            pane.live.inject(self.watched)  # type: ignore[union-attr]

    def action_inject_dialog(self) -> None:
        from lhe_tui.ui.screens.inject import InjectScreen

        if not any(p.running for p in self.targets()):
            return
        about = (f"Into {self._names(self.targets())}: the latest finished turn of s{self.watched} (or of every "
                 "sample). The runs go on meanwhile.")
        self.app.push_screen(InjectScreen(about), self._inject_requested)

    def _inject_requested(self, request: InjectRequest | None) -> None:
        if request is None:
            return
        if request.all_samples:
            for pane in [p for p in self.targets() if p.running]:
                pane.live.inject_all(offset=request.offset, value=request.value)  # type: ignore[union-attr]
            return
        for pane in self._injectable():
            pane.live.inject(self.watched, offset=request.offset, value=request.value)  # type: ignore[union-attr]
