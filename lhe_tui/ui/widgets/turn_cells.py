"""A turn's row in the turn table: the cells (what each column says, in which colour), cheap to build and measure."""

from __future__ import annotations

from rich.cells import cell_len, set_cell_size
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style

from lhe_tui.core.events import TurnRecord
from lhe_tui.ui.turn_records import UNREAD

COLUMNS = (("turn", "turn"), ("keys", "keys"), ("answer", "answer"), ("gold", "gold"), ("diff", "diff"),
           ("result", "result"), ("upd", "upd"), ("tok", "tok"), ("lat", "lat"))
KEYS_WIDTH = 24


class Cell:
    """A one-line table cell that is cheap to build and to measure (a long run has tens of thousands).

    `parts` are (text, style) pairs; `style` (if any) also covers the padding, so a marked row reads as one
    band. `plain` is the text, for tests and searching.
    """

    __slots__ = ("parts", "style", "right", "width")

    def __init__(self, text: str, style: Style | None = None, *, right: bool = False,
                 parts: tuple[tuple[str, Style | None], ...] | None = None) -> None:
        self.parts = parts if parts is not None else ((text, None),)
        self.style = style
        self.right = right
        self.width = sum(cell_len(t) for t, _ in self.parts)

    @property
    def plain(self) -> str:
        return "".join(t for t, _ in self.parts)

    def __str__(self) -> str:
        return self.plain

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(self.width, self.width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        room = options.max_width
        style = self.style
        if self.width > room:
            yield Segment(set_cell_size(self.plain, room), style)
            return
        pad = Segment(" " * (room - self.width), style)
        if self.right:
            yield pad
        for text, part_style in self.parts:
            yield Segment(text, style + part_style if style and part_style else part_style or style)
        if not self.right:
            yield pad


def format_latency(seconds: float) -> str:
    return f"{seconds * 1000:.0f}ms" if seconds < 1 else f"{seconds:.1f}s"


def turn_cells(r: TurnRecord, first_error: int | None, styles: dict[str, Style], *, show_values: bool,
               update_ok: bool) -> list[Cell]:
    """The row of `r`; a fork's inherited turn (played by its parent) is dimmed over its own colours.
    `styles` are the table's cell styles by component class, `update_ok` whether the update into `r` is right
    (turn accuracy) under the run's step rule."""
    cells = _cells(r, first_error, styles, show_values=show_values, update_ok=update_ok)
    if r.inherited:
        dim = styles.get("turn-table--inherited")
        if dim:
            for cell in cells:
                cell.style = cell.style + dim if cell.style else dim
    return cells


def _cells(r: TurnRecord, first_error: int | None, s: dict[str, Style], *, show_values: bool,
           update_ok: bool) -> list[Cell]:
    first = r.turn == first_error
    if r.answer_status != "ok":
        result, result_style = r.answer_status, s.get("turn-table--format")
    elif r.correct:
        result, result_style = "ok", s.get("turn-table--ok")
    else:
        result, result_style = "wrong", s.get("turn-table--wrong")
    if first:
        result = "1st err"
    if show_values:
        keys = ", ".join(f"{k}{v:+d}" for k, v in zip(r.keys, r.key_values))
    else:
        keys = ", ".join(r.keys)
    if len(keys) > KEYS_WIDTH:
        keys = keys[:KEYS_WIDTH - 1] + "…"
    answer = "—" if r.model_answer is None else str(r.model_answer)
    gold = "—" if r.answer_status == UNREAD else str(r.gold_sum)   # a row the store could not give back
    if r.model_answer is None:
        diff = "—"
    else:
        diff = "0" if r.model_answer == r.gold_sum else f"{r.model_answer - r.gold_sum:+d}"
    muted = s.get("turn-table--muted")
    wrong, ok = s.get("turn-table--wrong"), s.get("turn-table--ok")
    if first:
        # One style for the whole row, over the per-cell colours, so it reads as one marked line.
        band = s.get("turn-table--first-error")
        return [Cell(f"{r.turn} ◆", band, right=True), Cell(keys, band), Cell(answer, band, right=True),
                Cell(gold, band, right=True), Cell(diff, band, right=True), Cell(result, band),
                Cell("✓" if update_ok else "✗", band),
                Cell("-" if r.tokens_out is None else str(r.tokens_out), band, right=True),
                _latency_cell(r, band, s.get("turn-table--format"))]
    if r.injected and r.history_answer is not None:
        answer_cell = Cell("", right=True, parts=((answer, None),
                                                  (f" ⚡{r.history_answer}", s.get("turn-table--injected"))))
    else:
        answer_cell = Cell(answer, right=True)
    return [
        Cell(str(r.turn), right=True),
        Cell(keys, None if show_values else muted),
        answer_cell,
        Cell(gold, right=True),
        Cell(diff, muted if diff == "0" else wrong, right=True),
        Cell(result, result_style),
        Cell("✓" if update_ok else "✗", ok if update_ok else wrong),
        Cell("-" if r.tokens_out is None else str(r.tokens_out), muted, right=True),
        _latency_cell(r, muted, s.get("turn-table--format")),
    ]


def _latency_cell(r: TurnRecord, style: Style | None, marks_style: Style | None) -> Cell:
    """Latency, and `↻N` when the turn needed N retries (429, 5xx, resets, timeouts) to get its reply, `∅N`
    when an empty reply was asked for again N times (paper protocol)."""
    if not r.retries and not r.empty_retries:
        return Cell(format_latency(r.latency_s), style, right=True)
    marks = (f" ↻{r.retries}" if r.retries else "") + (f" ∅{r.empty_retries}" if r.empty_retries else "")
    return Cell("", style, right=True, parts=((format_latency(r.latency_s), None),
                                              (marks, marks_style)))
