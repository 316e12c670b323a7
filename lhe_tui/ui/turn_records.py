"""One sample's finished turns for the run view, with bounded memory (issue 26).

`TurnRecords` reads like a list of `TurnRecord`s in turn order. It keeps full records only for the newest
`keep` turns and the few turns changed in place (an injection), and for the sum chart (gold and the model's
answer over the turns) a thinned sample of evenly spaced rows, no more than `2 x chart_points` of them at any
length (`ChartSample`). The turns are kept as the first turn and a count while they follow one another (an
array only once a turn is skipped). When it has a loader (the live view: reading the run's own store), older
records are dropped from memory and read back from the store a page at a time when something asks for them
(the turn table scrolled up, the reply pane on a selected row); a few pages read back are kept. Without a
loader it keeps every record, as a list would. Nothing else it keeps grows with the turns.

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
CHART_POINTS = 1024    # the sum chart draws at most this many rows (ui.plotting.MOST_POINTS); twice as many kept
UNREAD = "unread"      # the answer status of a row the store could not give back and the chart did not keep


_NONE = -(2 ** 63)      # in an int column: None, or an int past 64 bits (kept aside)
_LIMIT = 2 ** 63


class IntColumn:
    """Optional ints in an array: 8 bytes each, no int object kept alive per entry. None and ints past 64 bits
    are kept aside, by index."""

    def __init__(self) -> None:
        self._values = array("q")
        self._aside: dict[int, int | None] = {}

    def __len__(self) -> int:
        return len(self._values)

    def __getitem__(self, index: int) -> int | None:
        value = self._values[index]
        return self._aside.get(index % len(self._values)) if value == _NONE else value

    def __setitem__(self, index: int, value: int | None) -> None:
        index %= len(self._values)
        self._aside.pop(index, None)
        if value is None or not -_LIMIT < value < _LIMIT:
            self._aside[index] = value
            value = _NONE
        self._values[index] = value

    def append(self, value: int | None) -> None:
        self._values.append(0)
        self[-1] = value

    def pop(self) -> None:
        self._aside.pop(len(self._values) - 1, None)
        self._values.pop()

    def keep_every_other(self) -> None:
        """Entries 0, 2, 4... only (renumbered 0, 1, 2...)."""
        self._values = self._values[::2]
        self._aside = {index // 2: value for index, value in self._aside.items() if index % 2 == 0}


class ChartSample:
    """Gold and the model's answer at every `stride`-th row: rows come in order, and when `2 * most` are kept
    every other one is dropped and the stride doubles. So it holds between `most` and `2 * most` evenly spaced
    rows of any number (all of them up to `2 * most`), in O(most) memory: three arrays of int64."""

    def __init__(self, most: int = CHART_POINTS) -> None:
        self.most = max(1, most)
        self.stride = 1
        self.rows = array("q")
        self.gold = IntColumn()
        self.answers = IntColumn()

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, row: int, gold: int, answer: int | None) -> None:
        if row % self.stride:
            return
        self.rows.append(row)
        self.gold.append(gold)
        self.answers.append(answer)
        if len(self.rows) >= 2 * self.most:   # rows are multiples of the stride: every other one, of twice it
            self.stride *= 2
            self.rows = self.rows[::2]
            self.gold.keep_every_other()
            self.answers.keep_every_other()

    def find(self, row: int) -> int | None:
        at = bisect_left(self.rows, row)
        return at if at < len(self.rows) and self.rows[at] == row else None

    def value(self, at: int) -> tuple[int, int | None]:
        """(gold, answer) of the `at`-th row kept."""
        return self.gold[at] or 0, self.answers[at]

    def set(self, row: int, gold: int, answer: int | None) -> None:
        at = self.find(row)
        if at is not None:
            self.gold[at] = gold
            self.answers[at] = answer

    def drop_last(self, row: int) -> None:
        """`row`, the last one, is gone."""
        if self.rows and self.rows[-1] == row:
            self.rows.pop()
            self.gold.pop()
            self.answers.pop()


class TurnRecords(Sequence[TurnRecord]):
    """A sample's turn records, in turn order (see the module's docstring)."""

    def __init__(self, records: Iterable[TurnRecord] = (), *, sample: int = 0, loader: RecordLoader | None = None,
                 keep: int = KEEP_NEWEST, chart_points: int = CHART_POINTS) -> None:
        self.sample = sample
        self.loader = loader
        self.keep = max(1, keep)
        self._count = 0
        self._first_turn = 0
        self._turns: array | None = None      # every row's turn, only once the turns stop following one another
        self._chart = ChartSample(chart_points)
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

    # ---- the chart's rows and the turns ---------------------------------------------------------------------
    def chart_columns(self, most: int = CHART_POINTS) -> tuple[list[int], list[int], list[int | None]]:
        """(turns, gold sums, the model's answers) at no more than `most` evenly spaced rows, the last row
        always among them, without reading any record back."""
        chart = self._chart
        if not self._count:
            return [], [], []
        step = -(-len(chart) // max(1, most - 1)) if len(chart) >= most else 1
        picked = range(0, len(chart), step)
        rows = [chart.rows[i] for i in picked]
        values = [chart.value(i) for i in picked]
        last = self._count - 1
        if not rows or rows[-1] != last:
            newest = self[last]   # held: the newest records always are
            rows.append(last)
            values.append((newest.gold_sum, newest.model_answer))
        return [self.turn_at(r) for r in rows], [g for g, _ in values], [a for _, a in values]

    def turn_at(self, row: int) -> int:
        if row < 0:
            row += self._count
        if not 0 <= row < self._count:
            raise IndexError("turn record index out of range")
        return self._turns[row] if self._turns is not None else self._first_turn + row

    def row_of(self, turn: int) -> int | None:
        """The row of `turn` (rows are in turn order), None if it has none; reads no record."""
        if not self._count:
            return None
        turns = self._turns
        if turns is None:
            row = turn - self._first_turn
            return row if 0 <= row < self._count else None
        row = turn - turns[0]
        if 0 <= row < len(turns) and turns[row] == turn:
            return row
        row = bisect_left(turns, turn)
        return row if row < len(turns) and turns[row] == turn else None

    # ---- list API --------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

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
        if record.turn != self.turn_at(row):
            raise ValueError(f"row {row} holds turn {self.turn_at(row)}, not {record.turn}")
        self._chart.set(row, record.gold_sum, record.model_answer)
        if row >= self._oldest_held:
            self._held[row - self._oldest_held] = record
        else:
            self._pinned[row] = record   # the store may not have this version: never read it back
        page = self._pages.get(row // PAGE_ROWS)
        if page is not None:
            page[row % PAGE_ROWS] = record

    def append(self, record: TurnRecord) -> None:
        row, turn = self._count, record.turn
        if self._turns is None:
            if not row:
                self._first_turn = turn
            elif turn != self._first_turn + row:   # a turn skipped: keep every row's turn from now on
                self._turns = array("q", range(self._first_turn, self._first_turn + row))
        if self._turns is not None:
            self._turns.append(turn)
        self._count += 1
        self._chart.add(row, record.gold_sum, record.model_answer)
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
        self._count -= 1
        if self._turns is not None:
            self._turns.pop()
        self._chart.drop_last(row)
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
                loaded = self.loader(self.sample, self.turn_at(missing[0]), self.turn_at(missing[-1]))
            except Exception:   # noqa: BLE001 - a store that fails under the view: the chart's sample stands in
                loaded = []
            by_turn = {record.turn: record for record in loaded}
        out: list[TurnRecord] = []
        for row in range(start, stop):
            record = (self._held[row - self._oldest_held] if row >= self._oldest_held else
                      self._pinned.get(row) or by_turn.get(self.turn_at(row)))
            out.append(record if record is not None else self._stand_in(row))
        return out

    def _stand_in(self, row: int) -> TurnRecord:
        """A row the store could not give back: its gold and answer if the chart kept them, else `unread`."""
        at = self._chart.find(row)
        gold, answer = self._chart.value(at) if at is not None else (0, None)
        status = UNREAD if at is None else "ok" if answer is not None else "format"
        right = at is not None and answer == gold
        return TurnRecord(sample=self.sample, turn=self.turn_at(row), keys=(), key_values=(), turn_sum=0,
                          gold_sum=gold, seen_previous=0, expected_step=0, raw_reply="", reasoning="",
                          answer_status=status, model_answer=answer, correct=right, step_correct=right,
                          history_answer=answer)
