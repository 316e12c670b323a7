"""A table drawn as plain text in the box rich draws by default (HEAVY_HEAD), for lists too long for rich.

rich lays out and measures every cell through its render pipeline: 776 sessions took ~0.6 s of CPU, most
of `lhe-tui sessions` on a large store (issue 22). The widths here are given (report.fit_columns chose
them); this module only wraps cells to those widths and draws the lines.
"""

from __future__ import annotations

import textwrap

from rich.cells import cell_len


def wrap_cell(text: str, width: int) -> list[str]:
    """A cell's lines at `width` cells: its own lines, each word-wrapped, words too long folded."""
    lines: list[str] = []
    for line in text.splitlines() or [""]:
        if cell_len(line) <= width:
            lines.append(line)
        else:
            lines.extend(textwrap.wrap(line, width, break_long_words=True, break_on_hyphens=False) or [""])
    return lines


def _pad(text: str, width: int, right: bool) -> str:
    space = " " * max(0, width - cell_len(text))
    return space + text if right else text + space


def plain_table(title: str, headers: list[str], right: list[bool], rows: list[tuple[str, ...]],
                widths: list[int], caption: str | None = None) -> str:
    """`rows` under `headers` in columns `widths` cells wide (`right`: right-justified), a title above and the
    caption below (wrapped to the table's width), as rich's default table looks; a cell too wide for its
    column folds (rich crops a column that may not wrap: the id would lose its end)."""

    def rule(left: str, fill: str, cross: str, end: str) -> str:
        return left + cross.join(fill * (w + 2) for w in widths) + end

    def line(cells: tuple[str, ...] | list[str], bar: str) -> list[str]:
        wrapped = [wrap_cell(str(c), w) for c, w in zip(cells, widths)]
        height = max(len(w) for w in wrapped)
        return [bar + bar.join(" " + _pad(w[n] if n < len(w) else "", width, r) + " "
                               for w, width, r in zip(wrapped, widths, right)) + bar
                for n in range(height)]

    out = [title] if title else []
    out.append(rule("┏", "━", "┳", "┓"))
    out.extend(line(headers, "┃"))
    out.append(rule("┡", "━", "╇", "┩"))
    for row in rows:
        out.extend(line(row, "│"))
    out.append(rule("└", "─", "┴", "┘"))
    if caption:
        out.extend(textwrap.wrap(caption, sum(widths) + 3 * len(widths) + 1))
    return "\n".join(out) + "\n"
