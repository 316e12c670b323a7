"""Replay a stored session as the same events a live run emits (DESIGN §4: one screen, two sources).

`SessionReplay` reads a session once and lays it out as *frames*, one per finished turn in the order
the turns finished. Each frame holds the events that turn produced live: `TurnStarted`, `TurnFinished`,
then any `Injected` made right after it and the sample's `SampleFinished` if it was its last turn.
`RunStarted` comes before the first frame and `RunFinished` after the last.

A cursor (`position`, the number of frames already emitted) lets a consumer play, step forward or
back, seek, and jump to a sample's first error. `ReplayPlayer` adds a clock: speed 1x (the recorded
pace, long gaps such as pauses shortened) up to 50x, or instant.

No UI imports here: the Textual screen and any plain consumer (tests, a headless display) use it alike.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

from sqlite_utils import Database

from lhe_tui.runner.events import (Event, Injected, RunFinished, RunStarted, SampleFinished, TurnFinished,
                                   TurnRecord, TurnStarted)
from lhe_tui.store.queries import load_events, load_samples, load_session, load_turns

SPEEDS: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, math.inf)
"""Replay speeds, slowest first; `math.inf` is instant."""

DEFAULT_MAX_GAP = 2.0
"""Seconds: a longer gap between two recorded turns (a pause, a retry storm) replays as this long."""

_FINAL_SAMPLE_STATES = ("finished", "failed", "stopped")


@dataclass(frozen=True)
class Frame:
    sample: int
    turn: int
    correct: bool
    events: tuple[Event, ...]


class SessionReplay:
    """A stored session laid out as frames of live-run events, with a position cursor."""

    def __init__(self, db: Database, session_id: str, *, max_gap: float = DEFAULT_MAX_GAP) -> None:
        self.session_id = session_id
        self.session = load_session(db, session_id)
        samples = load_samples(db, session_id)
        records = load_turns(db, session_id)
        injections = load_events(db, session_id, ("injected",))
        self.run_started = RunStarted(
            session_id=session_id, config=self.session["config"], dictionary=self.session["dictionary"],
            sample_keys=tuple(s["keys"] for s in samples), provider_label=self.session.get("provider_label") or "",
            simulated=bool(self.session.get("simulated")), resumed=False, kind=self.session.get("kind") or "run")
        self.run_finished = RunFinished(status=self.session.get("status") or "unknown",
                                        wall_time_s=float(self.session.get("wall_time_s") or 0.0),
                                        message=self.session.get("message") or "")
        self.frames, leftover = _build_frames(records, samples, injections)
        self._ending: tuple[Event, ...] = (*leftover, self.run_finished)
        self.times = _frame_times(self.frames, records, max_gap)
        self.position = 0

    # ---- layout ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.frames)

    @property
    def at_end(self) -> bool:
        return self.position >= len(self.frames)

    @property
    def duration(self) -> float:
        """Replay seconds at 1x from the first frame to the last."""
        return self.times[-1] if self.times else 0.0

    def events_of(self, index: int) -> tuple[Event, ...]:
        return self.frames[index].events

    def iter_events(self) -> Iterator[Event]:
        """Every event of the session in live order, independent of the cursor."""
        yield self.run_started
        for frame in self.frames:
            yield from frame.events
        yield from self._ending

    # ---- cursor ---------------------------------------------------------------------------------
    def step(self, n: int = 1) -> list[Event]:
        """Advance up to n frames and return their events (plus RunFinished when the end is reached)."""
        if n <= 0 or self.at_end:
            return []
        end = min(len(self.frames), self.position + n)
        events = [event for frame in self.frames[self.position:end] for event in frame.events]
        self.position = end
        if self.at_end:
            events.extend(self._ending)
        return events

    def seek(self, position: int) -> list[Event]:
        """Move the cursor and return the events that rebuild the state at it, from RunStarted on.

        The consumer resets its state and applies them; that is how stepping back works.
        """
        self.position = max(0, min(len(self.frames), position))
        events: list[Event] = [self.run_started]
        for frame in self.frames[:self.position]:
            events.extend(frame.events)
        if self.at_end:
            events.extend(self._ending)
        return events

    def rewind(self, position: int) -> list[Event]:
        """Move the cursor back to `position`; returns the events to undo, newest first.

        The cheap way back for a consumer that can undo events (the TUI's model); `seek` is the other.
        """
        position = max(0, min(self.position, position))
        events: list[Event] = list(reversed(self._ending)) if self.at_end and self.position > position else []
        for frame in reversed(self.frames[position:self.position]):
            events.extend(reversed(frame.events))
        self.position = position
        return events

    def first_error_position(self, sample: int | None = None) -> int | None:
        """The cursor position just after the first wrong turn (of `sample`, or of any sample)."""
        for index, frame in enumerate(self.frames):
            if not frame.correct and (sample is None or frame.sample == sample):
                return index + 1
        return None

    def sample_step(self, sample: int, direction: int) -> int | None:
        """The cursor position one turn of `sample` forward (direction > 0) or back from here.

        Forward: just after `sample`'s next frame. Back: just before its latest applied frame.
        """
        if direction > 0:
            for index in range(self.position, len(self.frames)):
                if self.frames[index].sample == sample:
                    return index + 1
            return None
        for index in range(self.position - 1, -1, -1):
            if self.frames[index].sample == sample:
                return index
        return None

    def position_of(self, sample: int, turn: int) -> int | None:
        """The cursor position just after `sample`'s `turn` finished."""
        for index, frame in enumerate(self.frames):
            if frame.sample == sample and frame.turn == turn:
                return index + 1
        return None


class ReplayPlayer:
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
        times = self.replay.times
        position = self.replay.position
        while position + due < len(times) and times[position + due] <= self._clock:
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

    def faster(self) -> float:
        self.set_speed(next((s for s in SPEEDS if s > self.speed), SPEEDS[-1]))
        return self.speed

    def slower(self) -> float:
        self.set_speed(next((s for s in reversed(SPEEDS) if s < self.speed), SPEEDS[0]))
        return self.speed

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


def _build_frames(records: list[TurnRecord], samples: list[dict],
                  injections: list[dict]) -> tuple[list[Frame], list[SampleFinished]]:
    """Frames in finished order, and the SampleFinished events of samples that have no stored turn."""
    injected_after: dict[tuple[int, int], list[Injected]] = {}
    for row in injections:
        p = row["payload"]
        event = Injected(sample=int(p["sample"]), turn=int(p["turn"]), original=p.get("original"),
                         injected=int(p["injected"]), source=p.get("source") or "manual")
        injected_after.setdefault((event.sample, event.turn), []).append(event)
    last_turn: dict[int, int] = {}
    for record in records:
        last_turn[record.sample] = max(last_turn.get(record.sample, 0), record.turn)
    finished = {int(s["sample"]): SampleFinished(sample=int(s["sample"]), status=s["status"],
                                                 message=s.get("message") or "")
                for s in samples if s.get("status") in _FINAL_SAMPLE_STATES}

    frames: list[Frame] = []
    for record in sorted(records, key=lambda r: (r.finished_at or 0.0, r.sample, r.turn)):
        key = (record.sample, record.turn)
        after = injected_after.get(key, [])
        if after:
            # Live, the record went out before the injection changed it: show it as it was.
            record = replace(record, injected=False, history_answer=after[0].original)
        events: list[Event] = [TurnStarted(sample=record.sample, turn=record.turn, keys=record.keys),
                               TurnFinished(record), *after]
        if record.turn == last_turn[record.sample] and record.sample in finished:
            events.append(finished.pop(record.sample))
        frames.append(Frame(sample=record.sample, turn=record.turn, correct=record.correct, events=tuple(events)))
    # Samples that ended with no stored turn (e.g. failed on turn 1) end with the run.
    return frames, [finished[s] for s in sorted(finished)]


def _frame_times(frames: list[Frame], records: list[TurnRecord], max_gap: float) -> list[float]:
    """Replay seconds at 1x for each frame: recorded finish times, gaps longer than max_gap shortened."""
    finish = {(r.sample, r.turn): (r.finished_at or 0.0, r.started_at or 0.0) for r in records}
    times: list[float] = []
    clock = 0.0
    previous: float | None = None
    for frame in frames:
        finished_at, started_at = finish[(frame.sample, frame.turn)]
        if previous is None:
            gap = finished_at - started_at if started_at else 0.0
        else:
            gap = finished_at - previous
        clock += min(max(gap, 0.0), max_gap)
        previous = finished_at
        times.append(clock)
    return times
