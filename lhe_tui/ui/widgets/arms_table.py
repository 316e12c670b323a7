"""The arms' turn tables of the watched sample, side by side and aligned by turn (issue 15).

One row per turn: the turn, the keys and the gold sum once, then per arm its answer (⚡ and the value its
history shows where one was injected), the result and the update check (turn accuracy). An arm's first error is drawn as a
band across its block, and a turn where the arms' answers differ gets `≠` and the warning colour on its turn
number. One widget for all arms keeps them in one scroll (aligned rows without syncing several tables).

Line API (`render_line`): only the visible lines are drawn, from the arms' SampleStates at draw time;
`sync` only decides whether anything the lines show has changed (then one refresh) and follows the newest
turn. The columns narrow with the width: keys go first, then the result words become glyphs.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual.color import Color, ColorParseError
from textual.geometry import Region, Size
from textual.strip import Strip

from lhe_tui.core.step_rules import DEFAULT_STEP_RULE, update_flag_at
from lhe_tui.core.events import TurnRecord
from lhe_tui.ui.feed import SampleState
from lhe_tui.ui.widgets._rows import GrowingRows
from lhe_tui.ui.widgets._style import component_style

HEADER_HEIGHT = 2       # the arms' names, then the column labels
KEYS_WIDTH = 16
PAD = 1                 # blank cells either side of every cell


@dataclass(frozen=True)
class ArmColumn:
    """One arm as the table shows it: its name, theme colour, the watched sample's state, whether keys act
    on it (the focused arm, or every arm)."""

    name: str
    colour: str
    state: SampleState | None
    targeted: bool = False
    step_rule: str = DEFAULT_STEP_RULE   # the arm's: how its `upd` (turn accuracy) column scores a turn


@dataclass(frozen=True)
class _Layout:
    turn: int
    keys: int           # 0: no keys column
    gold: int
    answers: tuple[int, ...]   # each arm's answer column (wider in an arm with injections: `⚡V` too)
    result: int         # 7: words (ok, wrong, 1st err), 1: glyphs
    step: int

    def arm_width(self, arm: int) -> int:
        return self.answers[arm] + self.result + self.step + 6 * PAD + 1   # + the separator

    @property
    def width(self) -> int:
        fixed = self.turn + self.gold + 4 * PAD + (self.keys + 2 * PAD if self.keys else 0)
        return fixed + sum(self.arm_width(i) for i in range(len(self.answers)))


def answer_text(record: TurnRecord) -> tuple[str, str]:
    """(the model's answer, what the history shows instead where injected: `⚡V`, else '')."""
    answer = "—" if record.model_answer is None else str(record.model_answer)
    injected = f"⚡{record.history_answer}" if record.injected and record.history_answer is not None else ""
    return answer, injected


def answers_differ(records: list[TurnRecord | None]) -> bool:
    """Two or more arms have finished this turn, with different answers (a missing answer counts as one)."""
    answers = {r.model_answer for r in records if r is not None}
    return len(answers) > 1


class ArmsTable(GrowingRows):
    header_height = HEADER_HEIGHT
    COMPONENT_CLASSES = {"arms-table--ok", "arms-table--wrong", "arms-table--format", "arms-table--first-error",
                         "arms-table--injected", "arms-table--muted", "arms-table--header", "arms-table--cursor",
                         "arms-table--inherited",
                         "arms-table--differ"}

    DEFAULT_CSS = """
    ArmsTable {
        height: 1fr;
        background: $surface;
        color: $foreground;
        &:focus {
            background-tint: $foreground 5%;
            & > .arms-table--cursor { background: $block-cursor-background; color: $block-cursor-foreground; }
        }
        & > .arms-table--header { text-style: bold; background: $panel; color: $foreground; }
        & > .arms-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
        }
    }
    ArmsTable > .arms-table--ok { color: $success; }
    ArmsTable > .arms-table--wrong { color: $error; }
    ArmsTable > .arms-table--format { color: $warning; }
    ArmsTable > .arms-table--first-error { background: $error; color: $background; text-style: bold; }
    ArmsTable > .arms-table--injected { color: $accent; text-style: bold; }
    ArmsTable > .arms-table--muted { color: $text-muted; }
    ArmsTable > .arms-table--inherited { text-style: dim; }
    ArmsTable > .arms-table--differ { color: $warning; text-style: bold; }
    """



    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.arms: list[ArmColumn] = []
        self.sample = 0
        self.rows = 0                  # turns 1..rows
        self.cursor = 0                # row index (turn - 1)
        self._follow = True
        self._key: tuple | None = None
        self._widths: dict[int, tuple[int, int, int, int, int]] = {}   # arm -> (generation, injections,
                                                                        #   scanned, answer, inj)
        self._fit_cache: tuple[tuple, _Layout] | None = None
        self._styles: dict[str, Style] = {}
        self._look: tuple | None = None

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._restyle())

    # ---- public -------------------------------------------------------------------------------------
    @property
    def following(self) -> bool:
        return self._follow

    @property
    def cursor_turn(self) -> int | None:
        return self.cursor + 1 if self.rows else None

    def sync(self, arms: list[ArmColumn], sample: int, *, force: bool = False) -> bool:
        """Show these arms' states of `sample`; True if anything the table shows changed."""
        key = (sample, tuple((a.name, a.colour, a.targeted, id(a.state), *self._state_key(a.state)) for a in arms))
        if not force and key == self._key:
            return False
        new_sample = sample != self.sample or len(arms) != len(self.arms)
        self._key = key
        self.arms = list(arms)
        self.sample = sample
        if new_sample:
            self._widths.clear()
            self._follow = True
        self.rows = max((a.state.records[-1].turn for a in arms if a.state and a.state.records), default=0)
        self._update_virtual_size()
        if self._follow:
            self.go_to_newest()
        elif self.cursor >= self.rows:
            self.cursor = max(0, self.rows - 1)
        self.refresh()
        return True

    @staticmethod
    def _state_key(state: SampleState | None) -> tuple:
        if state is None:
            return (None,)
        last = state.records[-1] if state.records else None
        return (len(state.records), state.generation, state.first_error, len(state.injections),
                state.current_turn, last.injected if last else None, state.status)

    def record(self, arm: int, turn: int) -> TurnRecord | None:
        state = self.arms[arm].state if 0 <= arm < len(self.arms) else None
        if state is None:
            return None
        row = state.row_of(turn)
        return state.records[row] if row is not None else None

    def row_text(self, turn: int) -> str:
        """The plain text of `turn`'s row as drawn now (tests)."""
        return "".join(segment.text for segment in self._draw_row(turn - 1, cursor=False))

    def header_text(self) -> str:
        return "\n".join("".join(s.text for s in line) for line in self._draw_header())

    def go_to_turn(self, turn: int) -> bool:
        if not 1 <= turn <= self.rows:
            return False
        self._follow = turn == self.rows
        self._move(turn - 1)
        if not self._follow:
            self.scroll_to(y=max(0, turn - 1 - self._page() // 2), animate=False)
        return True

    def go_to_newest(self) -> None:
        self._follow = True
        if self.rows:
            self.cursor = self.rows - 1
        self._scroll_to_newest()
        self.call_after_refresh(self._scroll_to_newest)

    # ---- keys -----------------------------------------------------------------------------------------
    def action_cursor_up(self) -> None:
        self._follow = False
        self._move(self.cursor - 1)

    def action_cursor_down(self) -> None:
        self._move(self.cursor + 1)
        self._follow = self.cursor >= self.rows - 1

    def action_page_up(self) -> None:
        self._follow = False
        self._move(self.cursor - self._page())

    def action_page_down(self) -> None:
        self._move(self.cursor + self._page())
        self._follow = self.cursor >= self.rows - 1

    def action_first_row(self) -> None:
        self._follow = False
        self._move(0)

    def action_newest_row(self) -> None:
        self.go_to_newest()
        self.refresh()

    def _row_count(self) -> int:
        return self.rows

    def _select(self, row: int) -> None:
        self._move(row)

    def _move(self, row: int) -> None:
        self.cursor = max(0, min(row, self.rows - 1))
        top, page = self.scroll_offset.y, self._page()
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + page:
            self.scroll_to(y=self.cursor - page + 1, animate=False)
        self.refresh()

    def _scroll_to_newest(self) -> None:
        if self._follow and self.scroll_offset.y != self.max_scroll_y:
            self.scroll_to(y=self.max_scroll_y, animate=False)

    def _update_virtual_size(self) -> None:
        self.virtual_size = Size(self._layout().width, self.rows + HEADER_HEIGHT)

    # ---- layout ---------------------------------------------------------------------------------------
    def _answer_widths(self) -> tuple[int, list[int]]:
        """(answer, each arm's widest injected answer) widths over the arms' rows of the sample, scanned as the
        rows come."""
        answer, suffixes = 6, []
        for index, arm in enumerate(self.arms):
            state = arm.state
            if state is None:
                suffixes.append(0)
                continue
            injections = len(state.injections)
            generation, seen, scanned, a, i = self._widths.get(index, (state.generation, injections, 0, 6, 0))
            if generation != state.generation or seen != injections or scanned > len(state.records):
                scanned, a, i = 0, 6, 0   # rows replaced or injected into: scan again (rare)
            for record in state.records[scanned:]:
                text, inj = answer_text(record)
                a = max(a, cell_len(text), cell_len(str(record.gold_sum)))
                i = max(i, cell_len(text) + 1 + cell_len(inj) if inj else 0)   # `-55 ⚡-50`
            self._widths[index] = (state.generation, injections, len(state.records), a, i)
            answer = max(answer, a)
            suffixes.append(i)
        return answer, suffixes

    def _layout(self) -> _Layout:
        """The columns for the current rows and width (computed once per sync and width, not per line)."""
        key = (self._key, self.size.width)
        if self._fit_cache is not None and self._fit_cache[0] == key:
            return self._fit_cache[1]
        layout = self._fit()
        self._fit_cache = (key, layout)
        return layout

    @property
    def natural_width(self) -> int:
        """The columns' width with nothing narrowed (keys and words), the vertical scrollbar included."""
        return self._fit(1 << 20).width + self.styles.scrollbar_size_vertical

    def _fit(self, width: int | None = None) -> _Layout:
        answer, suffixes = self._answer_widths()
        turn = max(4, len(str(self.rows)) + 2)
        width = width or self.scrollable_content_region.width or self.size.width or 160
        answers = tuple(max(answer, injected) for injected in suffixes)
        first = next((a.state.records[0] for a in self.arms if a.state is not None and a.state.records), None)
        keys_width = min(KEYS_WIDTH, max(4, cell_len(", ".join(first.keys)) if first else 4))  # K keys a turn
        for keys, result in ((keys_width, 7), (0, 7), (0, 1)):
            layout = _Layout(turn=turn, keys=keys, gold=answer, answers=answers, result=result,
                             step=4 if result > 1 else 1)
            if layout.width <= width:
                return layout
        return layout

    # ---- drawing --------------------------------------------------------------------------------------
    def _restyle(self) -> None:
        self._look = None
        self.refresh()

    def _s(self, name: str) -> Style:
        return self._styles.get(name) or Style()

    def _arm_style(self, colour: str, *, bold: bool = False) -> Style:
        try:
            colour_value = Color.parse(self.app.theme_variables[colour])
        except (KeyError, ColorParseError):
            return Style(bold=bold)
        return Style(color=colour_value.rich_color, bold=bold)

    def render_lines(self, crop: Region) -> list[Strip]:
        look = (self.app.theme, self.has_focus, self.size.width)
        if look != self._look:
            self._look = look
            self._styles = {name: component_style(self, name) for name in self.COMPONENT_CLASSES}
            self._styles["base"] = self.rich_style
            self._styles["header"] = self.get_component_rich_style("arms-table--header")
            self._styles["cursor"] = self.get_component_rich_style("arms-table--cursor")
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self._s("base")
        if y < HEADER_HEIGHT:
            segments = self._draw_header()[y]
        else:
            row = y - HEADER_HEIGHT + self.scroll_offset.y
            if row >= self.rows:
                return Strip.blank(width, base)
            segments = self._draw_row(row, cursor=row == self.cursor)
        strip = Strip(segments)
        scroll_x = self.scroll_offset.x
        if scroll_x or strip.cell_length != width:
            strip = strip.crop(scroll_x, scroll_x + width).adjust_cell_length(width, base)
        return strip

    def _cell(self, text: str, width: int, style: Style, *, right: bool = False) -> Segment:
        text = set_cell_size(text, width) if cell_len(text) > width else text
        blank = " " * (width - cell_len(text))
        body = blank + text if right else text + blank
        return Segment(" " * PAD + body + " " * PAD, style)

    def _draw_header(self) -> list[list[Segment]]:
        layout = self._layout()
        header = self._s("header")
        top: list[Segment] = []
        labels: list[Segment] = []
        lead = layout.turn + layout.gold + 4 * PAD + (layout.keys + 2 * PAD if layout.keys else 0)
        top.append(Segment(set_cell_size(f" sample s{self.sample}", lead), header))
        labels.append(self._cell("turn", layout.turn, header, right=True))
        if layout.keys:
            labels.append(self._cell("keys", layout.keys, header))
        labels.append(self._cell("gold", layout.gold, header, right=True))
        for index, arm in enumerate(self.arms):
            mark = "▶ " if arm.targeted else "  "
            name = set_cell_size(f"{mark}{arm.name}", layout.arm_width(index) - 1)
            top.append(Segment("│", header))
            top.append(Segment(name, header + self._arm_style(arm.colour, bold=arm.targeted)
                               + Style(underline=arm.targeted)))
            labels.append(Segment("│", header))
            labels.append(self._cell("answer", layout.answers[index], header, right=True))
            labels.append(self._cell("result" if layout.result > 1 else "r", layout.result, header))
            labels.append(self._cell("upd" if layout.step > 1 else "u", layout.step, header))
        width = max(self.size.width, layout.width)
        for line in (top, labels):
            used = sum(cell_len(s.text) for s in line)
            if used < width:
                line.append(Segment(" " * (width - used), header))
        return [top, labels]

    def _draw_row(self, row: int, *, cursor: bool) -> list[Segment]:
        layout = self._layout()
        turn = row + 1
        base = self._s("base") + (self._s("cursor") if cursor else Style())
        records = [self.record(i, turn) for i in range(len(self.arms))]
        any_record = next((r for r in records if r is not None), None)
        differ = answers_differ(records)
        out: list[Segment] = []
        marker = "≠" if differ else " "
        out.append(self._cell(f"{turn}{marker}", layout.turn, base + (self._s("arms-table--differ") if differ
                                                                     else Style()), right=True))
        if layout.keys:
            keys = ", ".join(any_record.keys) if any_record else ""
            if cell_len(keys) > layout.keys:
                keys = keys[:layout.keys - 1] + "…"
            out.append(self._cell(keys, layout.keys, base + self._s("arms-table--muted")))
        out.append(self._cell(str(any_record.gold_sum) if any_record else "", layout.gold, base, right=True))
        for index, (arm, record) in enumerate(zip(self.arms, records)):
            out.append(Segment("│", base + self._s("arms-table--muted")))
            cells = self._arm_cells(arm, record, turn, layout.answers[index], layout, base)
            if record is not None and record.inherited:   # a fork's turn played by its parent: dimmed
                dim = self._s("arms-table--inherited")
                cells = [Segment(seg.text, (seg.style or Style()) + dim) for seg in cells]
            out.extend(cells)
        used = sum(cell_len(s.text) for s in out)
        if used < self.size.width:
            out.append(Segment(" " * (self.size.width - used), base))
        return out

    def _arm_cells(self, arm: ArmColumn, record: TurnRecord | None, turn: int, width: int, layout: _Layout,
                   base: Style) -> list[Segment]:
        words = layout.result > 1
        if record is None:
            state = arm.state
            waiting = "…" if state is not None and state.current_turn == turn else ""
            return [self._cell(waiting, width, base + self._s("arms-table--muted"), right=True),
                    self._cell("", layout.result, base), self._cell("", layout.step, base)]
        first = arm.state is not None and arm.state.first_error == turn
        answer, injected = answer_text(record)
        if record.answer_status != "ok":
            result, style = (record.answer_status if words else "?"), self._s("arms-table--format")
        elif record.correct:
            result, style = ("ok" if words else "✓"), self._s("arms-table--ok")
        else:
            result, style = ("wrong" if words else "✗"), self._s("arms-table--wrong")
        update_ok = record.step_correct
        if arm.step_rule != DEFAULT_STEP_RULE and arm.state is not None:
            index = arm.state.row_of(record.turn)
            update_ok = update_ok if index is None else update_flag_at(arm.state.records, index, arm.step_rule)
        step = "✓" if update_ok else "✗"
        step_style = self._s("arms-table--ok") if update_ok else self._s("arms-table--wrong")
        if first:
            band = base + self._s("arms-table--first-error")
            result = "1st err" if words else "◆"
            style = step_style = Style()
            base = band
        answer_style = base + (Style() if record.correct or first else self._s("arms-table--wrong"))
        if injected:
            text = f"{answer} {injected}"
            pad = width - cell_len(text)
            cells = [Segment(" " * (PAD + max(0, pad)), base), Segment(answer + " ", answer_style),
                     Segment(injected, base + (Style() if first else self._s("arms-table--injected"))),
                     Segment(" " * PAD, base)]
            if pad < 0:   # (never: the width counts the suffix) cut to fit rather than push the columns
                cells = [self._cell(text, width, answer_style, right=True)]
        else:
            cells = [self._cell(answer, width, answer_style, right=True)]
        cells.append(self._cell(result, layout.result, base + style))
        cells.append(self._cell(step, layout.step, base + step_style))
        return cells
