"""The turn table's rows as cells, the newest kept built and older ones built again when drawn (a bounded cache)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lhe_tui.ui.widgets.turn_cells import Cell

KEPT_ROW_CELLS = 512    # rows whose cells stay built (the newest); older rows' cells are built when drawn


class CellRows:
    """The table's rows as cells: the newest `keep` rows kept built, older ones built again from the
    sample's records (`build(row)`) when drawn or read, a few hundred of them kept. A long run's table
    then holds what it shows, not 9 cells for each of 10,000 turns (issue 26)."""

    def __init__(self, build: Callable[[int], list[Cell]], keep: int = KEPT_ROW_CELLS) -> None:
        self._build = build
        self._keep = keep
        self._rows: list[list[Cell] | None] = []
        self._oldest = 0                  # rows below this one are not kept (unless in `_built`)
        self._built: OrderedDict[int, list[Cell]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._rows)

    def __bool__(self) -> bool:
        return bool(self._rows)

    def __getitem__(self, row: int) -> list[Cell]:
        cells = self._rows[row]
        if cells is not None:
            return cells
        row = row + len(self._rows) if row < 0 else row
        cells = self._built.get(row)
        if cells is None:
            cells = self._built[row] = self._build(row)
            while len(self._built) > self._keep:
                self._built.popitem(last=False)
        else:
            self._built.move_to_end(row)
        return cells

    def __setitem__(self, row: int, cells: list[Cell]) -> None:
        if row >= self._oldest:
            self._rows[row] = cells
        else:
            self._built[row] = cells

    def extend(self, rows: list[list[Cell]]) -> None:
        self._rows.extend(rows)
        end = len(self._rows) - self._keep
        if end - self._oldest >= self._keep:
            for row in range(self._oldest, end):
                self._rows[row] = None
            self._oldest = end

    def truncate(self, count: int) -> None:
        del self._rows[count:]
        self._oldest = min(self._oldest, count)
        for row in [row for row in self._built if row >= count]:
            del self._built[row]

    @property
    def kept(self) -> int:
        """Rows whose cells are in memory (for tests)."""
        return len(self._rows) - self._oldest + len(self._built)

