"""One sample's finished turns for the run view, with bounded memory (issue 26).

`TurnRecords` reads like a list of `TurnRecord`s in turn order. It keeps compact columns for every turn
(the turn, gold and the model's answer: what the sum chart draws) and full records only for the newest
`keep` turns and the few turns changed in place (an injection). When it has a loader (the live view:
reading the run's own store), older records are dropped from memory and read back from the store a page
at a time when something asks for them (the turn table scrolled up, the reply pane on a selected row);
a few pages read back are kept. Without a loader it keeps every record, as a list would.

No Textual in this module.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import overload

from lhe_tui.core.events import TurnRecord

# (sample, first turn, last turn) -> that sample's stored records in the range, in turn order
RecordLoader = Callable[[int, int, int], list[TurnRecord]]

KEEP_NEWEST = 256      # full records kept per sample (the visible rows and the reply pane's)
PAGE_ROWS = 256        # rows read back from the store at a time
PAGES_KEPT = 4         # pages read back that stay in memory (scrolling back and forth reads none again)


_NONE = -(2 ** 63)
_LIMIT = 2 ** 63


class IntColumn:
    """Optional ints in an array: no int object kept alive per turn (they kept the freed records' memory
    arenas from going back). None and ints past 64 bits are kept aside."""

    def __init__(self) -> None:
        self._values = array("q")
        self._aside: dict[int, int | None] = {}

    def __len__(self) -> int:
        return len(self._values)

    def __getitem__(self, row: int) -> int | None:
        value = self._values[row]
        if value == _NONE:
            return self._aside.get(row + len(self._values) if row < 0 else row)
        return value

    def __setitem__(self, row: int, value: int | None) -> None:
        self._aside.pop(row, None)
        if value is None or not -_LIMIT < value < _LIMIT:
            self._aside[row] = value
            value = _NONE
        self._values[row] = value

    def append(self, value: int | None) -> None:
        self._values.append(0)
        self[len(self._values) - 1] = value

    def pop(self) -> None:
        self._aside.pop(len(self._values) - 1, None)
        self._values.pop()

    def tolist(self) -> list[int | None]:
        out: list[int | None] = self._values.tolist()
        for row, value in self._aside.items():
            out[row] = value
        return out


class TurnRecords(Sequence[TurnRecord]):
    """A sample's turn records, in turn order (see the module's docstring)."""

    def __init__(self, records: Iterable[TurnRecord] = (), *, sample: int = 0, loader: RecordLoader | None = None,
                 keep: int = KEEP_NEWEST) -> None:
        self.sample = sample
        self.loader = loader
        self.keep = max(1, keep)
        self._turns = array("q")
        self._gold = IntColumn()
        self._answers = IntColumn()
        self._held: list[TurnRecord] = []    # the full records of rows `_oldest_held` on (no slot per dropped row)
        self._oldest_held = 0                 # rows below this one are dropped unless pinned
        self._pinned: dict[int, TurnRecord] = {}   # rows changed in place: kept whatever their age
        self._pages: OrderedDict[int, list[TurnRecord]] = OrderedDict()
        self.extend(records)

    # ---- what stays bounded (for tests and the bench) --------------------------------------------------
    @property
    def held(self) -> int:
        """Full records in memory: the newest ones, the pinned ones and the pages read back."""
        return (len(self._held) + len(self._pinned)
                + sum(len(page) for page in self._pages.values()))

    # ---- compact columns ---------------------------------------------------------------------------------
    def columns(self, rows: Iterable[int] | None = None) -> tuple[list[int], list[int], list[int | None]]:
        """(turns, gold sums, the model's answers) of every row, or of `rows` only (a chart of a long run
        takes a few hundred evenly spaced ones), without reading any record."""
        if rows is None:
            return self._turns.tolist(), self._gold.tolist(), self._answers.tolist()  # type: ignore[return-value]
        rows = list(rows)
        turns, gold, answers = self._turns, self._gold, self._answers
        return [turns[r] for r in rows], [gold[r] for r in rows], [answers[r] for r in rows]  # type: ignore[misc]

    def turn_at(self, row: int) -> int:
        return self._turns[row]

    def row_of(self, turn: int) -> int | None:
        """The row of `turn` (rows are in turn order), None if it has none; reads no record."""
        turns = self._turns
        if not turns:
            return None
        row = turn - turns[0]
        if 0 <= row < len(turns) and turns[row] == turn:
            return row
        row = bisect_left(turns, turn)
        return row if row < len(turns) and turns[row] == turn else None

    # ---- list API --------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._turns)

    def __bool__(self) -> bool:
        return bool(self._turns)

    @overload
    def __getitem__(self, index: int) -> TurnRecord: ...
    @overload
    def __getitem__(self, index: slice) -> list[TurnRecord]: ...

    def __getitem__(self, index: int | slice) -> TurnRecord | list[TurnRecord]:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                return [self[i] for i in range(start, stop, step)]
            return self._rows(start, stop)
        row = index + len(self) if index < 0 else index
        if not 0 <= row < len(self):
            raise IndexError("turn record index out of range")
        if row >= self._oldest_held:
            return self._held[row - self._oldest_held]
        pinned = self._pinned.get(row)
        if pinned is not None:
            return pinned
        page = row // PAGE_ROWS
        rows = self._pages.get(page)
        if rows is None:
            start = page * PAGE_ROWS
            rows = self._read(start, min(len(self), start + PAGE_ROWS))
            self._pages[page] = rows
            while len(self._pages) > PAGES_KEPT:
                self._pages.popitem(last=False)
        else:
            self._pages.move_to_end(page)
        return rows[row - page * PAGE_ROWS]

    def __iter__(self) -> Iterator[TurnRecord]:
        for start in range(0, len(self), PAGE_ROWS):
            yield from self._rows(start, min(len(self), start + PAGE_ROWS))

    def __setitem__(self, index: int, record: TurnRecord) -> None:
        row = index + len(self) if index < 0 else index
        if not 0 <= row < len(self):
            raise IndexError("turn record index out of range")
        self._turns[row] = record.turn
        self._gold[row] = record.gold_sum
        self._answers[row] = record.model_answer
        if row >= self._oldest_held:
            self._held[row - self._oldest_held] = record
        else:
            self._pinned[row] = record   # the store may not have this version: never read it back
        page = self._pages.get(row // PAGE_ROWS)
        if page is not None:
            page[row % PAGE_ROWS] = record

    def append(self, record: TurnRecord) -> None:
        self._turns.append(record.turn)
        self._gold.append(record.gold_sum)
        self._answers.append(record.model_answer)
        self._held.append(record)
        if self.loader is not None and len(self._held) >= 2 * self.keep:
            self._drop_old()

    def extend(self, records: Iterable[TurnRecord]) -> None:
        for record in records:
            self.append(record)

    def pop(self) -> TurnRecord:
        if not self:
            raise IndexError("pop from empty turn records")
        record = self[-1]
        row = len(self) - 1
        self._turns.pop()
        self._gold.pop()
        self._answers.pop()
        if self._held:
            self._held.pop()
        self._pinned.pop(row, None)
        self._oldest_held = min(self._oldest_held, row)
        page = self._pages.get(row // PAGE_ROWS)
        if page is not None:
            del self._pages[row // PAGE_ROWS]
        return record

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, tuple, TurnRecords)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    def __repr__(self) -> str:
        return f"TurnRecords(sample={self.sample}, rows={len(self)}, held={self.held})"

    # ---- dropping and reading back -------------------------------------------------------------------------
    def _drop_old(self) -> None:
        """Drop the full records older than the newest `keep` (the store has them)."""
        end = len(self) - self.keep
        del self._held[:end - self._oldest_held]
        self._oldest_held = end

    def _rows(self, start: int, stop: int) -> list[TurnRecord]:
        if start >= stop:
            return []
        held_from = max(start, self._oldest_held)
        if stop <= held_from:
            return self._read(start, stop)
        older = self._read(start, held_from) if start < held_from else []
        return older + self._held[held_from - self._oldest_held:stop - self._oldest_held]

    def _read(self, start: int, stop: int) -> list[TurnRecord]:
        """Rows start..stop-1 as full records: held or pinned ones as they are, the rest from the store (a
        row the store cannot give back, e.g. a write not committed yet or a failed read, reads as a record
        made of the compact columns alone)."""
        stop = min(stop, len(self))
        if start >= stop:
            return []
        by_turn: dict[int, TurnRecord] = {}
        missing = [row for row in range(start, stop) if row < self._oldest_held and row not in self._pinned]
        if missing and self.loader is not None:
            try:
                loaded = self.loader(self.sample, self._turns[missing[0]], self._turns[missing[-1]])
            except Exception:   # noqa: BLE001 - a store that fails under the view: the compact columns stand in
                loaded = []
            by_turn = {record.turn: record for record in loaded}
        out: list[TurnRecord] = []
        for row in range(start, stop):
            record = (self._held[row - self._oldest_held] if row >= self._oldest_held else
                      self._pinned.get(row) or by_turn.get(self._turns[row]))
            out.append(record if record is not None else self._stand_in(row))
        return out

    def _stand_in(self, row: int) -> TurnRecord:
        answer, gold = self._answers[row], self._gold[row]
        return TurnRecord(sample=self.sample, turn=self._turns[row], keys=(), key_values=(), turn_sum=0,
                          gold_sum=gold or 0, seen_previous=0, expected_step=0, raw_reply="", reasoning="",
                          answer_status="ok" if answer is not None else "format", model_answer=answer,
                          correct=answer == gold, step_correct=answer == gold, history_answer=answer)
