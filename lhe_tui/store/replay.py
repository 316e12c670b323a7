"""Replay a stored session as the same events a live run emits (DESIGN §4: one screen, two sources).

`SessionReplay` lays a session out as *frames*, one per finished turn in the order the turns finished.
Each frame holds the events that turn produced live: `TurnStarted`, `TurnFinished`, then any `Injected`
made right after it and the sample's `SampleFinished` if it was its last turn. `RunStarted` comes
before the first frame and `RunFinished` after the last.

Opening reads the session, its samples (not their keys) and injections, the number of frames (from each
sample's first and last turn, not a count of every turn: issue 26, opening must not cost the session's
size) and the first page of the turn index (the light columns of the turns in finish order: sample,
turn, flags, times), so the first frame of a 1,000,000-turn session shows at once (reading the whole
index took 0.25-0.35 s at 100,000 turns, issue 6; counting them 0.1 s at 1,000,000). The number is exact
for a session as lhe-tui stores it; one with gaps in a sample's turns (repaired by hand) has fewer frames,
found when the index read comes short. Further pages of the index are read as the cursor or the clock
needs them (keyset reads on the `turns_by_finish` index, growing to INDEX_MAX_PAGE rows), and all at once
only for what needs the whole session: a seek to the end, instant speed, a first error or a sample's next turn not found in
what is read yet. A frame's events are built when they are asked for, from full turn records read by
primary-key range: a few pages of frames are kept in a small LRU cache (stepping and playing), and
long ranges (a seek far ahead, `iter_events`) are read in one pass per sample without touching the
cache. What the replay shows is the session as it was when it was opened: turns stored later are not
in it (the index is read up to the turns table's highest rowid at opening), and an injection made
later into a turn it holds is not shown (its event, stored later, gives the turn's answer before it).

A cursor (`position`, the number of frames already emitted) lets a consumer play, step forward or
back, seek, and jump to a sample's first error. `ReplayPlayer` (lhe_tui.store.replay_player)
adds a clock: speed 1x (the recorded pace, long gaps such as pauses shortened) up to 50x, or
instant.

No UI imports here: the Textual screen and any plain consumer (tests, a headless display) use it alike.
"""

from __future__ import annotations

import contextlib
import math
import operator
from array import array
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import accumulate, chain, repeat
from typing import TYPE_CHECKING

from lhe_tui.common.errors import StoreError
from lhe_tui.core.events import (
    Event,
    Injected,
    RunFinished,
    RunStarted,
    SampleFinished,
    TurnFinished,
    TurnRecord,
    TurnStarted,
)
from lhe_tui.core.lineage import Lineage
from lhe_tui.store.queries import (
    count_turns_by_span,
    last_turn,
    load_events,
    load_samples,
    load_session,
    load_turn_index_page,
    load_turn_range,
    max_event_id,
    turn_started_at,
)

__all__ = ["Frame", "SessionReplay", "StoredSampleKeys"]

if TYPE_CHECKING:
    from sqlite_utils import Database

DEFAULT_MAX_GAP = 2.0
"""Seconds: a longer gap between two recorded turns (a pause, a retry storm) replays as this long."""

PAGE_FRAMES = 256
"""Frames read from the store at a time when stepping or playing."""

CACHE_PAGES = 16
"""Pages of built frames kept (least recently used dropped first)."""

INDEX_FIRST_PAGE = 1024
INDEX_MAX_PAGE = 8192
"""Rows of the turn index read at opening, and at most per later read (each read doubles, up to this;
~15 ms on the UI loop), unless a jump needs more at once."""

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


class StoredSampleKeys(Sequence[tuple[str, ...]]):
    """A replay's `RunStarted.sample_keys`: every sample's keys, read from the store when first asked for. The
    replay's screen uses only their number; reading a 1,000,000-turn session's keys at the start cost ~65 MB
    and 0.075 s (issue 26)."""

    def __init__(self, db: Database, session_id: str, count: int) -> None:
        self._db, self._session_id, self._count = db, session_id, count
        self._keys: tuple[tuple[str, ...], ...] | None = None

    def _read(self) -> tuple[tuple[str, ...], ...]:
        if self._keys is None:
            self._keys = tuple(s["keys"] for s in load_samples(self._db, self._session_id))
        return self._keys

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index):  # type: ignore[no-untyped-def, override]
        return self._read()[index]

    def __iter__(self) -> Iterator[tuple[str, ...]]:
        return iter(self._read())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return len(other) == self._count and tuple(self._read()) == tuple(other)
        return NotImplemented

    __hash__ = None   # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"StoredSampleKeys({self._session_id!r}, {self._count} samples)"


class SessionReplay:
    """A stored session laid out as frames of live-run events, with a position cursor."""

    def __init__(self, db: Database, session_id: str, *, max_gap: float = DEFAULT_MAX_GAP,
                 page_frames: int = PAGE_FRAMES, cache_pages: int = CACHE_PAGES,
                 index_pages: tuple[int, int] = (INDEX_FIRST_PAGE, INDEX_MAX_PAGE)) -> None:
        self.session_id = session_id
        self.db = db
        self.page_frames = max(1, page_frames)
        self.cache_pages = max(1, cache_pages)
        self.max_gap = max_gap
        with _read_snapshot(db):
            self.session = load_session(db, session_id)
            samples = load_samples(db, session_id, keys=False)
            # How many frames: exact for a session as lhe-tui stores it (no gap in a sample's turns), else an
            # over-count that the index corrects when its read comes short (see _read_index).
            self._count, self._max_rowid = count_turns_by_span(db, session_id)
            self._max_event_id = max_event_id(db)
            injections = load_events(db, session_id, ("injected",))
            finished = {int(s["sample"]): SampleFinished(sample=int(s["sample"]), status=s["status"],
                                                         message=s.get("message") or "")
                        for s in samples if s.get("status") in _FINAL_SAMPLE_STATES}
            last = {sample: last_turn(db, session_id, sample) for sample in finished}
            self.run_started = RunStarted(
                session_id=session_id, config=self.session["config"], dictionary=self.session["dictionary"],
                sample_keys=StoredSampleKeys(db, session_id, len(samples)),  # type: ignore[arg-type]
                provider_label=self.session.get("provider_label") or "",
                simulated=bool(self.session.get("simulated")), resumed=False,
                kind=self.session.get("kind") or "run", lineage=Lineage.from_row(self.session))
            self.run_finished = RunFinished(status=self.session.get("status") or "unknown",
                                            wall_time_s=float(self.session.get("wall_time_s") or 0.0),
                                            message=self.session.get("message") or "")
            self._injected_after: dict[tuple[int, int], list[Injected]] = {}
            for row in injections:
                event = _injected_event(row)
                self._injected_after.setdefault((event.sample, event.turn), []).append(event)
            # A sample's SampleFinished goes out with its last turn; samples that ended with no stored turn
            # (e.g. failed on turn 1) end with the run.
            self._finishes: dict[tuple[int, int], SampleFinished] = {
                (sample, last[sample]): finished.pop(sample) for sample in list(finished)
                if last[sample] is not None}
            self._ending: tuple[Event, ...] = (*(finished[s] for s in sorted(finished)), self.run_finished)
            # The frames, as columns (frame i is the i-th turn to finish), read page by page (_read_index).
            self._sample = array("q")
            self._turn = array("q")
            self._correct = bytearray()
            self._injected = bytearray()
            self._history: list[int | None] = []   # at opening time; an injection later changes it
            self.times = array("d")                 # replay seconds at 1x of each frame read so far
            self._positions: dict[int, array] = {}  # each sample's frame indices, in frame order
            self._first_error: dict[int, int] = {}  # each sample's first wrong frame
            self._last_row: tuple | None = None
            self._last_finished = 0.0
            self._index_page, self._index_max = max(1, index_pages[0]), max(1, index_pages[1])
            self.index_reads = 0       # reads of the turn index (for tests and benchmarks)
            self._read_index()
        self._pages: OrderedDict[int, list[tuple[Event, ...]]] = OrderedDict()
        self.pages_read = 0        # pages of turn records read from the store (for tests and benchmarks)
        self.position = 0

    # ---- the turn index, read as needed ---------------------------------------------------------
    @property
    def index_complete(self) -> bool:
        return len(self._sample) >= self._count

    def _read_index(self, want: int = 0) -> bool:
        """Read the next page of the turn index (at least `want` rows if there are); False if all is in."""
        loaded = len(self._sample)
        if loaded >= self._count:
            return False
        limit = min(max(self._index_page, want), self._count - loaded)
        rows = load_turn_index_page(self.db, self.session_id, after=self._last_row, skip=loaded, limit=limit,
                                    max_rowid=self._max_rowid)
        self.index_reads += 1
        self._index_page = min(self._index_page * 2, self._index_max)
        if len(rows) < limit:   # rows gone since the opening (not something the app does): end there
            self._count = loaded + len(rows)
        if not rows:
            return False
        self._last_row = rows[-1]
        samples, turns, correct, injected, history, finished = zip(*rows)
        if 1 in injected:
            injected, history = self._before_later_injections(samples, turns, injected, history)
        self._sample.extend(samples)
        self._turn.extend(turns)
        self._correct += bytes(correct)
        self._injected += bytes(injected)
        self._history.extend(history)
        if None in finished:
            finished = tuple(at or 0.0 for at in finished)
        if loaded == 0:
            started = turn_started_at(self.db, self.session_id, samples[0], turns[0])
            start = min(max(finished[0] - started, 0.0), self.max_gap) if started else 0.0
            previous, rest = finished[0], finished[1:]
        else:
            start = self.times.pop()       # accumulate gives it again, as its initial value
            previous, rest = self._last_finished, finished
        self._last_finished = finished[-1]
        gaps = map(operator.sub, rest, chain((previous,), rest))
        clamped = map(min, map(max, gaps, repeat(0.0)), repeat(self.max_gap))
        self.times.extend(accumulate(clamped, initial=start))
        positions, first_error = self._positions, self._first_error
        for i, (sample, ok) in enumerate(zip(samples, correct), loaded):
            found = positions.get(sample)
            if found is None:
                found = positions[sample] = array("q")
            found.append(i)
            if not ok and sample not in first_error:
                first_error[sample] = i
        return True

    def _before_later_injections(self, samples, turns, injected, history) -> tuple[list, list]:
        """Turns injected into after the opening (their event is newer than the opening) as they were then:
        not injected, the history showing the answer the event says it replaced."""
        injected, history = list(injected), list(history)
        later = [i for i, flag in enumerate(injected)
                 if flag and (samples[i], turns[i]) not in self._injected_after]
        if later:
            originals: dict[tuple[int, int], int | None] = {}
            for row in load_events(self.db, self.session_id, ("injected",), after_id=self._max_event_id):
                event = _injected_event(row)
                originals.setdefault((event.sample, event.turn), event.original)
            for i in later:
                key = (samples[i], turns[i])
                if key in originals:
                    injected[i], history[i] = 0, originals[key]
        return injected, history

    def _ensure(self, frames: int) -> None:
        """The index read up to at least `frames` frames (or all of it)."""
        while len(self._sample) < frames and self._read_index(frames - len(self._sample)):
            pass

    def time_at(self, index: int) -> float:
        """Replay seconds at 1x of frame `index` (the index read that far if needed); infinity past the end."""
        if index >= len(self.times):
            self._ensure(index + 1)
            if index >= len(self.times):
                return math.inf
        return self.times[index]

    def _ensure_end(self, end: int) -> int:
        """`end` (a frame bound), the index read up to it; fewer when the session turns out to have fewer frames
        (the count at opening is exact only for sessions with no gap in a sample's turns)."""
        self._ensure(end)
        return min(end, len(self))

    # ---- layout ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._count

    @property
    def at_end(self) -> bool:
        return self.position >= self._count

    @property
    def duration(self) -> float:
        """Replay seconds at 1x from the first frame to the last (reads the whole index)."""
        self._ensure(len(self))
        return self.times[len(self) - 1] if len(self) else 0.0

    def frame(self, index: int) -> Frame:
        if index < 0:
            index += self._ensure_end(len(self))
        self._ensure(index + 1)
        return Frame(sample=self._sample[index], turn=self._turn[index], correct=bool(self._correct[index]),
                     events=self.events_of(index))

    def events_of(self, index: int) -> tuple[Event, ...]:
        if index < 0:
            index += self._ensure_end(len(self))
        if not 0 <= index < self._ensure_end(index + 1):
            raise IndexError(index)
        return self._page(index // self.page_frames)[index % self.page_frames]

    def iter_events(self, chunk: int = 8192) -> Iterator[Event]:
        """Every event of the session in live order, independent of the cursor."""
        yield self.run_started
        start = 0
        while start < len(self):
            for events in self._frames_events(start, min(len(self), start + chunk)):
                yield from events
            start += chunk
        yield from self._ending

    # ---- cursor ---------------------------------------------------------------------------------
    def step(self, n: int = 1) -> list[Event]:
        """Advance up to n frames and return their events (plus RunFinished when the end is reached)."""
        if n <= 0 or self.at_end:
            return []
        end = min(len(self), self.position + n)
        self._ensure(end + 1)            # one frame further: whether `end` is the last (see _ensure_end)
        end = min(end, len(self))
        events = [event for frame in self._frames_events(self.position, end) for event in frame]
        self.position = end
        if self.at_end:
            events.extend(self._ending)
        return events

    def seek(self, position: int) -> list[Event]:
        """Move the cursor and return the events that rebuild the state at it, from RunStarted on.

        The consumer resets its state and applies them; that is how stepping back works.
        """
        position = max(0, min(len(self), position))
        self._ensure(position + 1)       # as in step: at_end is right once the cursor is at the last frame
        self.position = min(position, len(self))
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
        """The cursor position just after the first wrong turn (of `sample`, or of any sample). Reads the
        index until it is found (frames come in order, so the first one found of any sample is the first)."""
        while True:
            first_error = self._first_error
            index = min(first_error.values(), default=None) if sample is None else first_error.get(sample)
            if index is not None or not self._read_index():
                return None if index is None else index + 1

    def sample_step(self, sample: int, direction: int) -> int | None:
        """The cursor position one turn of `sample` forward (direction > 0) or back from here.

        Forward: just after `sample`'s next frame. Back: just before its latest applied frame.
        """
        self._ensure(self.position)
        while True:
            positions = self._positions.get(sample)
            i = bisect_left(positions, self.position) if positions else 0   # its first frame not yet applied
            if direction <= 0 or (positions and i < len(positions)) or not self._read_index():
                break
        if not positions:
            return None
        if direction > 0:
            return positions[i] + 1 if i < len(positions) else None
        return positions[i - 1] if i > 0 else None

    def position_of(self, sample: int, turn: int) -> int | None:
        """The cursor position just after `sample`'s `turn` finished (reads the index until it is found)."""
        while True:
            found = self._position_read(sample, turn)
            if found is not None or not self._read_index():
                return found

    def _position_read(self, sample: int, turn: int) -> int | None:
        positions = self._positions.get(sample)
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
        end = self._ensure_end(end)
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
        end = self._ensure_end(end)
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


def _injected_event(row: dict) -> Injected:
    p = row["payload"]
    return Injected(sample=int(p["sample"]), turn=int(p["turn"]), original=p.get("original"),
                    injected=int(p["injected"]), source=p.get("source") or "manual")
