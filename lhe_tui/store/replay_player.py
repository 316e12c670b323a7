"""The replay's clock (moved out of lhe_tui.store.replay, which still exports it): `ReplayPlayer` plays a
`SessionReplay` at the recorded pace times a speed from SPEEDS (1x up to 50x, or instant), or steps and seeks
by hand. No UI imports here.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lhe_tui.core.events import Event
    from lhe_tui.store.replay import SessionReplay

SPEEDS: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, math.inf)
"""Replay speeds, slowest first; `math.inf` is instant."""


def faster(speed: float) -> float:
    """The next replay speed up the ladder (SPEEDS), or the top."""
    return next((s for s in SPEEDS if s > speed), SPEEDS[-1])


def slower(speed: float) -> float:
    return next((s for s in reversed(SPEEDS) if s < speed), SPEEDS[0])


class SpeedLadder:
    """`faster()` / `slower()` up and down SPEEDS, for a player with `speed` and `set_speed(speed)`."""

    speed: float

    def set_speed(self, speed: float) -> None:
        raise NotImplementedError

    def faster(self) -> float:
        self.set_speed(faster(self.speed))
        return self.speed

    def slower(self) -> float:
        self.set_speed(slower(self.speed))
        return self.speed


class ReplayPlayer(SpeedLadder):
    """A clock over a SessionReplay: call `tick(now)` regularly and apply the events it returns."""

    def __init__(self, replay: SessionReplay, *, speed: float = 1.0, playing: bool = True) -> None:
        self.replay = replay
        self.speed = speed
        self.playing = playing
        self._clock = replay.times[replay.position - 1] if replay.position else 0.0
        self._last: float | None = None

    @property
    def position(self) -> int:
        return self.replay.position

    @property
    def instant(self) -> bool:
        return math.isinf(self.speed)

    def tick(self, now: float) -> list[Event]:
        """Events due since the last tick at the current speed; nothing while paused."""
        last, self._last = self._last, now
        if not self.playing or self.replay.at_end:
            return []
        if self.instant:
            return self._advance(len(self.replay))
        if last is not None:
            self._clock += max(0.0, now - last) * self.speed
        due = 0
        replay = self.replay
        position, count, time_at = replay.position, len(replay), replay.time_at
        while position + due < count and time_at(position + due) <= self._clock:
            due += 1
        return self._advance(due)

    def _advance(self, n: int) -> list[Event]:
        events = self.replay.step(n)
        if self.replay.at_end:
            self.playing = False
        return events

    def toggle(self) -> bool:
        """Play/pause; playing again from the end starts over is left to the caller (seek(0))."""
        self.playing = not self.playing and not self.replay.at_end
        self._last = None
        return self.playing

    def set_speed(self, speed: float) -> None:
        self.speed = speed
        self._last = None

    def step(self, n: int = 1) -> list[Event]:
        """Manual step forward (pauses playback)."""
        self.playing = False
        events = self.replay.step(n)
        self._sync_clock()
        return events

    def goto(self, position: int) -> tuple[list[Event], bool]:
        """Manual move (pauses playback): (events, backward). Forward: the new frames' events, to apply.
        Backward: the passed frames' events newest first, to undo (see SessionReplay.rewind)."""
        if position >= self.replay.position:
            return self.step(position - self.replay.position), False
        self.playing = False
        events = self.replay.rewind(position)
        self._sync_clock()
        return events, True

    def seek(self, position: int) -> list[Event]:
        """Manual jump (pauses playback); returns the full rebuild list (see SessionReplay.seek)."""
        self.playing = False
        events = self.replay.seek(position)
        self._sync_clock()
        return events

    def _sync_clock(self) -> None:
        position = self.replay.position
        self._clock = self.replay.times[position - 1] if position else 0.0
        self._last = None
