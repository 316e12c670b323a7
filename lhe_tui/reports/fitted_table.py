"""Tables fitted to the terminal's width: columns that keep their place by priority, cut ones named in a caption."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

from rich.cells import cell_len

PIPE_WIDTH = 200


def output_width(stream: Any = None) -> int:
    """The columns a report may use: $COLUMNS when set, else the terminal's width, else PIPE_WIDTH."""
    columns = os.environ.get("COLUMNS", "")
    if columns.strip().isdigit() and int(columns) > 0:
        return int(columns)
    stream = sys.stdout if stream is None else stream
    try:
        if stream.isatty():
            return os.get_terminal_size(stream.fileno()).columns or 80
    except (AttributeError, OSError, ValueError):
        pass
    return PIPE_WIDTH


@dataclass(frozen=True)
class Column:
    """A report column. `keep`: the lower, the longer it stays when the table must narrow (0 never goes);
    `fold`: the narrowest it may wrap its text to instead (None: never wraps)."""

    name: str
    keep: int = 5
    right: bool = False
    fold: int | None = None


BORDER = 3   # a rich box column's padding and rule: " x |"


def natural_widths(columns: list[Column], rows: list[tuple[str, ...]]) -> list[int]:
    """Each column's width unwrapped: its widest cell line or its name."""
    return [max([cell_len(c.name)] + [max((cell_len(line) for line in str(row[i]).splitlines()), default=0)
                                      for row in rows]) for i, c in enumerate(columns)]


def fit_columns(columns: list[Column], rows: list[tuple[str, ...]], width: int) -> tuple[list[int], dict[int, int]]:
    """Which columns (indices, in order) a table `width` wide can show, and the widths the folding ones get.
    Folding columns narrow first (down to their `fold`), then columns go, the highest `keep` first."""
    natural = natural_widths(columns, rows)
    least = [n if c.fold is None else min(n, max(c.fold, cell_len(c.name))) for c, n in zip(columns, natural)]
    kept = list(range(len(columns)))

    def total(sizes: list[int]) -> int:
        return sum(sizes[i] for i in kept) + BORDER * len(kept) + 1

    while total(least) > width:      # columns go until the rest fit, the folding ones folded
        droppable = [i for i in kept if columns[i].keep > 0]
        if not droppable:
            break
        kept.remove(max(droppable, key=lambda i: (columns[i].keep, i)))
    sizes = list(natural)
    over = total(sizes) - width
    while over > 0:                  # then the widest folding column narrows, one cell at a time
        foldable = [i for i in kept if sizes[i] > least[i]]
        if not foldable:
            break
        widest = max(foldable, key=lambda i: sizes[i])
        sizes[widest] -= 1
        over -= 1
    return kept, {i: sizes[i] for i in kept if sizes[i] < natural[i]}


def fitted_table(title: str, columns: list[Column], rows: list[tuple[str, ...]], *, width: int | None = None,
                 show_header: bool = True, styles: dict[str, str] | None = None) -> Table:
    """A rich Table of `rows` no wider than `width` (output_width()): folding columns wrap, columns the
    width cannot hold are left out and the caption names them."""
    width = output_width() if width is None else width
    kept, widths = fit_columns(columns, rows, width)
    from rich.table import (
        Table,  # (imported where used: `sessions` draws no rich table)
    )

    table = Table(title=title, title_justify="left", show_header=show_header, caption_justify="left")
    for i in kept:
        c = columns[i]
        table.add_column(c.name, justify="right" if c.right else "left", no_wrap=c.fold is None,
                         overflow="fold", max_width=widths.get(i), style=(styles or {}).get(c.name))
    for row in rows:
        table.add_row(*(row[i] for i in kept))
    table.caption = left_out_caption(columns, kept, width)
    return table


def left_out_caption(columns: list[Column], kept: list[int], width: int) -> str | None:
    dropped = [columns[i].name for i in range(len(columns)) if i not in kept]
    if not dropped:
        return None
    return f"left out to fit {width} columns: {', '.join(dropped)} (a wider terminal or COLUMNS=… shows them)"


def fitted_text(title: str, columns: list[Column], rows: list[tuple[str, ...]], *, width: int | None = None) -> str:
    """`fitted_table` drawn as plain text (cli.plain_table): the same columns, fitting and caption, for lists
    too long for rich to lay out quickly."""
    from lhe_tui.reports.plain_table import plain_table

    width = output_width() if width is None else width
    kept, folded = fit_columns(columns, rows, width)
    natural = natural_widths(columns, rows)
    sizes = [folded.get(i, natural[i]) for i in kept]
    over = sum(sizes) + BORDER * len(sizes) + 1 - width
    while over > 0 and max(sizes) > 1:    # the columns that never go still too wide: the widest folds
        sizes[sizes.index(max(sizes))] -= 1
        over -= 1
    return plain_table(title, [columns[i].name for i in kept], [columns[i].right for i in kept],
                       [tuple(row[i] for i in kept) for row in rows], sizes,
                       left_out_caption(columns, kept, width))


def print_table(table: Table, console: Console | None = None) -> None:
    from rich.console import Console

    (console or Console(soft_wrap=False, width=output_width())).print(table)
