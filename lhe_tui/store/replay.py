"""Replay a stored session as the same events a live run emits (DESIGN §4: one screen, two sources).

`SessionReplay` lays a session out as *frames*, one per finished turn in the order the turns finished.
Each frame holds the events that turn produced live: `TurnStarted`, `TurnFinished`, then any `Injected`
made right after it and the sample's `SampleFinished` if it was its last turn. `RunStarted` comes
before the first frame and `RunFinished` after the last.

Opening reads only the light columns of the turns (sample, turn, flags, times; `load_turn_index`), so
the first frame of a 100,000-turn session shows at once. A frame's events are built when they are
asked for, from full turn records read by primary-key range: a few pages of frames are kept in a
small LRU cache (stepping and playing), and long ranges (a seek far ahead, `iter_events`) are read in
one pass per sample without touching the cache. What the replay shows is the session as it was when
it was opened: turns finished later are not in it, and an injection made later into a turn it holds
is not shown (the light columns keep each turn's `injected` and `history_answer` of that moment).

A cursor (`position`, the number of frames already emitted) lets a consumer play, step forward or
back, seek, and jump to a sample's first error. `ReplayPlayer` adds a clock: speed 1x (the recorded
pace, long gaps such as pauses shortened) up to 50x, or instant.

No UI imports here: the Textual screen and any plain consumer (tests, a headless display) use it alike.
"""

from __future__ import annotations

import contextlib
import math
import operator
from array import array
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, replace
from itertools import accumulate, islice, repeat
from typing import TYPE_CHECKING

from lhe_tui.errors import StoreError
from lhe_tui.runner.events import (Event, Injected, RunFinished, RunStarted, SampleFinished, TurnFinished,
                                   TurnRecord, TurnStarted)
from lhe_tui.store.queries import (last_turns, load_events, load_samples, load_session, load_turn_index,
                                   load_turn_range, turn_started_at)

if TYPE_CHECKING:
    from sqlite_utils import Database

SPEEDS: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, math.inf)
"""Replay speeds, slowest first; `math.inf` is instant."""

DEFAULT_MAX_GAP = 2.0
"""Seconds: a longer gap between two recorded turns (a pause, a retry storm) replays as this long."""

PAGE_FRAMES = 256
"""Frames read from the store at a time when stepping or playing."""

CACHE_PAGES = 16
"""Pages of built frames kept (least recently used dropped first)."""

_FINAL_SAMPLE_STATES = ("finished", "failed", "stopped")


@dataclass(frozen=True)
class Frame:
    sample: int
    turn: int
    correct: bool
    events: tuple[Event, ...]


@contextlib.contextmanager
def _read_snapshot(db: Database):
    """One read transaction around the opening reads, so a session being written is read consistently."""
    conn = db.conn
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


class SessionReplay:
    """A stored session laid out as frames of live-run events, with a position cursor."""

    def __init__(self, db: Database, session_id: str, *, max_gap: float = DEFAULT_MAX_GAP,
                 page_frames: int = PAGE_FRAMES, cache_pages: int = CACHE_PAGES) -> None:
        self.session_id = session_id
        self.db = db
        self.page_frames = max(1, page_frames)
        self.cache_pages = max(1, cache_pages)
        with _read_snapshot(db):
            self.session = load_session(db, session_id)
            samples = load_samples(db, session_id)
            index = load_turn_index(db, session_id)
            last = last_turns(db, session_id)
            first_started = turn_started_at(db, session_id, index[0][0], index[0][1]) if index else None
            injections = load_events(db, session_id, ("injected",))
        self.run_started = RunStarted(
            session_id=session_id, config=self.session["config"], dictionary=self.session["dictionary"],
            sample_keys=tuple(s["keys"] for s in samples), provider_label=self.session.get("provider_label") or "",
            simulated=bool(self.session.get("simulated")), resumed=False, kind=self.session.get("kind") or "run")
        self.run_finished = RunFinished(status=self.session.get("status") or "unknown",
                                        wall_time_s=float(self.session.get("wall_time_s") or 0.0),
                                        message=self.session.get("message") or "")
        # The frames, as columns (frame i is the i-th turn to finish).
        columns = list(zip(*index)) or [()] * 6
        self._sample = array("q", columns[0])
        self._turn = array("q", columns[1])
        self._correct = bytes(columns[2])
        self._injected = bytes(columns[3])
        self._history: tuple[int | None, ...] = columns[4]   # at opening time; an injection later changes it
        self.times = _frame_times(columns[5], first_started, max_gap)
        self._injected_after: dict[tuple[int, int], list[Injected]] = {}
        for row in injections:
            p = row["payload"]
            event = Injected(sample=int(p["sample"]), turn=int(p["turn"]), original=p.get("original"),
                             injected=int(p["injected"]), source=p.get("source") or "manual")
            self._injected_after.setdefault((event.sample, event.turn), []).append(event)
        finished = {int(s["sample"]): SampleFinished(sample=int(s["sample"]), status=s["status"],
                                                     message=s.get("message") or "")
                    for s in samples if s.get("status") in _FINAL_SAMPLE_STATES}
        # A sample's SampleFinished goes out with its last turn; samples that ended with no stored turn
        # (e.g. failed on turn 1) end with the run.
        self._finishes: dict[tuple[int, int], SampleFinished] = {
            (sample, last[sample]): finished.pop(sample) for sample in list(finished) if sample in last}
        self._ending: tuple[Event, ...] = (*(finished[s] for s in sorted(finished)), self.run_finished)
        self._by_sample: tuple[dict[int, array], dict[int, int]] | None = None   # built when first asked
        self._pages: OrderedDict[int, list[tuple[Event, ...]]] = OrderedDict()
        self.pages_read = 0        # pages read from the store (for tests and benchmarks)
        self.position = 0

    def _sample_index(self) -> tuple[dict[int, array], dict[int, int]]:
        """(each sample's frame indices in frame order, each sample's first wrong frame); one pass, once."""
        if self._by_sample is None:
            positions: dict[int, array] = {}
            first_error: dict[int, int] = {}
            correct = self._correct
            for i, sample in enumerate(self._sample):
                found = positions.get(sample)
                if found is None:
                    found = positions[sample] = array("q")
                found.append(i)
                if not correct[i] and sample not in first_error:
                    first_error[sample] = i
            self._by_sample = (positions, first_error)
        return self._by_sample

    # ---- layout ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._sample)

    @property
    def at_end(self) -> bool:
        return self.position >= len(self._sample)

    @property
    def duration(self) -> float:
        """Replay seconds at 1x from the first frame to the last."""
        return self.times[-1] if self.times else 0.0

    def frame(self, index: int) -> Frame:
        return Frame(sample=self._sample[index], turn=self._turn[index], correct=bool(self._correct[index]),
                     events=self.events_of(index))

    def events_of(self, index: int) -> tuple[Event, ...]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._page(index // self.page_frames)[index % self.page_frames]

    def iter_events(self, chunk: int = 8192) -> Iterator[Event]:
        """Every event of the session in live order, independent of the cursor."""
        yield self.run_started
        for start in range(0, len(self), chunk):
            for events in self._frames_events(start, min(len(self), start + chunk)):
                yield from events
        yield from self._ending

    # ---- cursor ---------------------------------------------------------------------------------
    def step(self, n: int = 1) -> list[Event]:
        """Advance up to n frames and return their events (plus RunFinished when the end is reached)."""
        if n <= 0 or self.at_end:
            return []
        end = min(len(self), self.position + n)
        events = [event for frame in self._frames_events(self.position, end) for event in frame]
        self.position = end
        if self.at_end:
            events.extend(self._ending)
        return events

    def seek(self, position: int) -> list[Event]:
        """Move the cursor and return the events that rebuild the state at it, from RunStarted on.

        The consumer resets its state and applies them; that is how stepping back works.
        """
        self.position = max(0, min(len(self), position))
        events: list[Event] = [self.run_started]
        for frame in self._frames_events(0, self.position):
            events.extend(frame)
        if self.at_end:
            events.extend(self._ending)
        return events

    def rewind(self, position: int) -> list[Event]:
        """Move the cursor back to `position`; returns the events to undo, newest first.

        The cheap way back for a consumer that can undo events (the TUI's model); `seek` is the other.
        """
        position = max(0, min(self.position, position))
        events: list[Event] = list(reversed(self._ending)) if self.at_end and self.position > position else []
        for frame in reversed(self._frames_events(position, self.position)):
            events.extend(reversed(frame))
        self.position = position
        return events

    def first_error_position(self, sample: int | None = None) -> int | None:
        """The cursor position just after the first wrong turn (of `sample`, or of any sample)."""
        first_error = self._sample_index()[1]
        if sample is None:
            index = min(first_error.values(), default=None)
        else:
            index = first_error.get(sample)
        return None if index is None else index + 1

    def sample_step(self, sample: int, direction: int) -> int | None:
        """The cursor position one turn of `sample` forward (direction > 0) or back from here.

        Forward: just after `sample`'s next frame. Back: just before its latest applied frame.
        """
        positions = self._sample_index()[0].get(sample)
        if not positions:
            return None
        i = bisect_left(positions, self.position)   # the sample's first frame not yet applied
        if direction > 0:
            return positions[i] + 1 if i < len(positions) else None
        return positions[i - 1] if i > 0 else None

    def position_of(self, sample: int, turn: int) -> int | None:
        """The cursor position just after `sample`'s `turn` finished."""
        positions = self._sample_index()[0].get(sample)
        if not positions:
            return None
        guess = turn - self._turn[positions[0]]   # a sample's turns normally finish in turn order
        if 0 <= guess < len(positions) and self._turn[positions[guess]] == turn:
            return positions[guess] + 1
        for index in positions:
            if self._turn[index] == turn:
                return index + 1
        return None

    # ---- building frames ------------------------------------------------------------------------
    def _frames_events(self, start: int, end: int) -> list[tuple[Event, ...]]:
        """The events of frames start..end-1: through the page cache when the range is short, else read
        in one pass (a long seek must not flush the cache, nor read page by page)."""
        if end <= start:
            return []
        size = self.page_frames
        first, last = start // size, (end - 1) // size
        if last - first + 1 <= self.cache_pages // 2 or all(p in self._pages for p in range(first, last + 1)):
            out: list[tuple[Event, ...]] = []
            for page in range(first, last + 1):
                frames = self._page(page)
                out.extend(frames[max(start - page * size, 0):end - page * size])
            return out
        return self._build(start, end)

    def _page(self, page: int) -> list[tuple[Event, ...]]:
        frames = self._pages.get(page)
        if frames is not None:
            self._pages.move_to_end(page)
            return frames
        frames = self._build(page * self.page_frames, min(len(self), (page + 1) * self.page_frames))
        self.pages_read += 1
        self._pages[page] = frames
        while len(self._pages) > self.cache_pages:
            self._pages.popitem(last=False)
        return frames

    def _build(self, start: int, end: int) -> list[tuple[Event, ...]]:
        """Read the turn records of frames start..end-1 (one primary-key range per sample) and build
        their events."""
        spans: dict[int, list[int]] = {}
        for i in range(start, end):
            sample, turn = self._sample[i], self._turn[i]
            span = spans.get(sample)
            if span is None:
                spans[sample] = [turn, turn]
            elif turn < span[0]:
                span[0] = turn
            elif turn > span[1]:
                span[1] = turn
        records: dict[tuple[int, int], TurnRecord] = {}
        for sample, (first, last) in spans.items():
            for record in load_turn_range(self.db, self.session_id, sample, first, last):
                records[(sample, record.turn)] = record
        return [self._frame_events(i, records) for i in range(start, end)]

    def _frame_events(self, i: int, records: dict[tuple[int, int], TurnRecord]) -> tuple[Event, ...]:
        key = (self._sample[i], self._turn[i])
        record = records.get(key)
        if record is None:
            raise StoreError(f"session {self.session_id}: sample {key[0]} turn {key[1]} is no longer in the "
                             "store (changed since the replay was opened); open it again")
        after = self._injected_after.get(key)
        if after:
            # Live, the record went out before the injection changed it: show it as it was.
            record = replace(record, injected=False, history_answer=after[0].original)
        else:
            history_answer = self._history[i]
            injected = bool(self._injected[i])
            if record.injected != injected or record.history_answer != history_answer:
                # Injected into after the replay was opened: show the turn as it was then.
                record = replace(record, injected=injected, history_answer=history_answer)
        finished = self._finishes.get(key)
        if after:
            events: tuple[Event, ...] = (TurnStarted(sample=key[0], turn=key[1], keys=record.keys),
                                         TurnFinished(record), *after)
        else:
            events = (TurnStarted(sample=key[0], turn=key[1], keys=record.keys), TurnFinished(record))
        return events + (finished,) if finished is not None else events


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


def _frame_times(finished: tuple[float | None, ...], first_started: float | None, max_gap: float) -> array:
    """Replay seconds at 1x for each frame: recorded finish times, gaps longer than max_gap shortened.
    The first frame lasts its own turn (finish - start)."""
    if not finished:
        return array("d")
    if None in finished:
        finished = tuple(at or 0.0 for at in finished)
    first = min(max(finished[0] - first_started, 0.0), max_gap) if first_started else 0.0
    gaps = map(operator.sub, islice(finished, 1, None), finished)
    clamped = map(min, map(max, gaps, repeat(0.0)), repeat(max_gap))
    return array("d", accumulate(clamped, initial=first))
