"""TurnTable (a Line API widget): what each row shows, the first-error band, the cursor and following, and
the promise that makes it cheap while a run streams in: adding rows draws only the new rows (the strips of
the older ones are kept), and a wider value widens its column without a per-row redraw."""

from __future__ import annotations

from rich.style import Style
from textual import events
from textual.app import App, ComposeResult
from textual.color import Color
from textual.strip import Strip

from lhe_tui.core.events import Injected, TurnRecord
from lhe_tui.ui.feed import SampleState
from lhe_tui.ui.widgets.turn_table import TurnTable

COLUMNS = ["turn", "keys", "answer", "gold", "diff", "result", "upd", "tok", "lat"]


def record(turn: int, *, answer: int | None = None, gold: int | None = None, status: str = "ok",
           retries: int = 0, injected_as: int | None = None, tokens: int | None = 5,
           latency: float = 0.25) -> TurnRecord:
    gold = turn * 10 if gold is None else gold
    answer = gold if answer is None and status == "ok" else answer
    return TurnRecord(sample=0, turn=turn, keys=("apple",), key_values=(10,), turn_sum=10, gold_sum=gold,
                      seen_previous=gold - 10, expected_step=gold, raw_reply="", reasoning="",
                      answer_status=status, model_answer=answer, correct=answer == gold,
                      step_correct=answer == gold,
                      history_answer=injected_as if injected_as is not None else answer,
                      injected=injected_as is not None, tokens_out=tokens, latency_s=latency, retries=retries)


def state_with(records: list[TurnRecord], index: int = 0) -> SampleState:
    state = SampleState(index=index, records=list(records))
    wrong = [r.turn for r in records if not r.correct]
    state.first_error = wrong[0] if wrong else None
    return state


class TableApp(App):
    def compose(self) -> ComposeResult:
        yield TurnTable(id="turns")


def plain_row(table: TurnTable, row: int) -> list[str]:
    return [cell.plain for cell in table.get_row_at(row)]


def line_text(table: TurnTable, y: int) -> str:
    return table.render_lines(table.size.region)[y].text


async def test_rows_show_every_column_with_a_header_line():
    records = [record(1), record(2, answer=25), record(3, status="format"), record(4, retries=2, latency=1.5)]
    app = TableApp()
    async with app.run_test(size=(100, 12)) as pilot:
        table = app.query_one(TurnTable)
        table.sync(state_with(records))
        await pilot.pause()
        assert table.row_count == 4 and table.sample == 0
        assert plain_row(table, 0) == ["1", "apple", "10", "10", "0", "ok", "✓", "5", "250ms"]
        assert plain_row(table, 1)[:7] == ["2 ◆", "apple", "25", "20", "+5", "1st err", "✗"]
        assert plain_row(table, 2)[2:6] == ["—", "30", "—", "format"]
        assert plain_row(table, 3)[8] == "1.5s ↻2"
        header = line_text(table, 0).split()
        assert header == COLUMNS
        assert line_text(table, 1).split() == ["1", "apple", "10", "10", "0", "ok", "✓", "5", "250ms"]
        # numbers are right-aligned under their header, text left-aligned
        header_line, first = line_text(table, 0), line_text(table, 1)
        assert first.index("apple") == header_line.index("keys")
        assert first.index("ok") == header_line.index("result")


async def test_first_error_band_and_outcome_colours_follow_the_theme():
    records = [record(1), record(2, answer=25), record(3, answer=99), record(4, status="format")]
    app = TableApp()
    async with app.run_test(size=(100, 12)) as pilot:
        table = app.query_one(TurnTable)
        table.sync(state_with(records))
        await pilot.pause()
        error = Color.parse(app.theme_variables["error"]).rgb
        band = table.get_row_at(1)
        assert all(cell.style.bgcolor.triplet == error for cell in band)     # the whole row is one band
        assert table.get_row_at(2)[5].style.color.triplet == error            # a later wrong: red text only
        assert table.get_row_at(2)[5].style.bgcolor is None
        assert table.get_row_at(0)[5].style.color.triplet == Color.parse(app.theme_variables["success"]).rgb
        assert table.get_row_at(3)[5].style.color.triplet == Color.parse(app.theme_variables["warning"]).rgb
        # the drawn line carries the band's background across the cells
        strip = table.render_lines(table.size.region)[2]
        assert any(seg.style and seg.style.bgcolor and seg.style.bgcolor.triplet == error for seg in strip)
        app.theme = "dracula"
        await pilot.pause(0.2)
        light_error = Color.parse(app.theme_variables["error"]).rgb
        assert light_error != error and table.get_row_at(1)[0].style.bgcolor.triplet == light_error
        strip = table.render_lines(table.size.region)[2]                  # drawn again, not the cached line
        assert any(seg.style and seg.style.bgcolor and seg.style.bgcolor.triplet == light_error for seg in strip)


async def test_cursor_follows_the_newest_row_until_the_user_moves_up():
    app = TableApp()
    async with app.run_test(size=(100, 12)) as pilot:
        table = app.query_one(TurnTable)
        table.focus()
        state = state_with([record(t) for t in range(1, 31)])
        table.sync(state)
        await pilot.pause()
        assert table.following and table.cursor_row == 29
        assert table.scroll_offset.y == table.max_scroll_y > 0
        # newest row on the last line, under the cursor's style
        lines = table.render_lines(table.size.region)
        assert lines[-1].text.split()[0] == "30" and lines[-2].text.split()[0] == "29"
        cursor_bg = table.get_component_rich_style("turn-table--cursor").bgcolor
        assert all(seg.style.bgcolor == cursor_bg for seg in lines[-1])
        assert all(seg.style.bgcolor != cursor_bg for seg in lines[-2])
        await pilot.press("up", "up")
        assert table.cursor_row == 27 and not table.following
        state.records.extend(record(t) for t in range(31, 36))
        table.sync(state)
        await pilot.pause()
        assert table.cursor_row == 27 and not table.following and table.row_count == 35
        await pilot.press("end")
        assert table.following and table.cursor_row == 34
        await pilot.press("home")
        assert table.cursor_row == 0 and table.scroll_offset.y == 0 and not table.following
        await pilot.press("pagedown")
        assert 0 < table.cursor_row < 34
        table.go_to_newest()
        await pilot.pause()
        assert table.following and table.scroll_offset.y == table.max_scroll_y
        assert table.go_to_turn(5) and table.cursor_row == 4 and not table.following
        assert table.cursor_turn() == 5
        await pilot.press("down")
        assert table.cursor_row == 5


async def test_a_click_moves_the_cursor_and_a_scroll_up_stops_following():
    app = TableApp()
    async with app.run_test(size=(100, 12)) as pilot:
        table = app.query_one(TurnTable)
        table.sync(state_with([record(t) for t in range(1, 6)]))
        await pilot.pause()
        await pilot.click(TurnTable, offset=(3, 2))          # line 2: the second row
        assert table.cursor_row == 1 and not table.following
        await pilot.click(TurnTable, offset=(3, 5))          # the last row: following again
        assert table.cursor_row == 4 and table.following
        table.sync(state_with([record(t) for t in range(1, 40)]))
        await pilot.pause()
        y_before = table.scroll_offset.y
        table.post_message(events.MouseScrollUp(table, 3, 3, 0, -1, 0, False, False, False))
        await pilot.pause()
        assert not table.following and table.scroll_offset.y < y_before


async def test_appending_rows_keeps_the_older_rows_strips_and_draws_only_new_lines():
    app = TableApp()
    async with app.run_test(size=(100, 12)) as pilot:
        table = app.query_one(TurnTable)
        state = state_with([record(t) for t in range(1, 6)])
        table.sync(state)
        await pilot.pause()
        table.render_lines(table.size.region)
        cached = dict(table._row_cache)
        assert set(cached) == {0, 1, 2, 3}                 # row 4 is under the cursor: drawn apart

        drawn: list[int] = []
        original = table._draw_row

        def counting(cells, *, cursor):
            drawn.append(int(cells[0].plain.split()[0]))
            return original(cells, cursor=cursor)

        table._draw_row = counting
        state.records.append(record(6))
        table.sync(state)
        await pilot.pause()
        table.render_lines(table.size.region)
        assert sorted(drawn) == [5, 6]                       # the old cursor row and the new row
        assert all(table._row_cache[row] is strip for row, strip in cached.items())
        assert isinstance(table._row_cache[4], Strip)


async def test_a_wider_value_widens_its_column_and_narrower_ones_do_not_redraw():
    app = TableApp()
    async with app.run_test(size=(120, 12)) as pilot:
        table = app.query_one(TurnTable)
        state = state_with([record(1, gold=5), record(2, gold=9)])
        table.sync(state)
        await pilot.pause()
        header = line_text(table, 0)
        gold_end = header.index("gold") + len("gold")
        state.records.append(record(3, gold=-123456))
        table.sync(state)
        await pilot.pause()
        header = line_text(table, 0)
        row = line_text(table, 3)
        assert "-123456" in row
        assert header.index("gold") == row.rindex("-123456")          # the column grew to fit it
        assert header.index("diff") > gold_end
        widths = list(table._widths)
        table.render_lines(table.size.region)
        cached = dict(table._row_cache)
        state.records.append(record(4, gold=7))
        table.sync(state)
        await pilot.pause()
        assert table._widths == widths
        assert all(table._row_cache[row] is strip for row, strip in cached.items() if row != 2)


async def test_values_toggle_injections_and_a_replay_stepping_back():
    app = TableApp()
    async with app.run_test(size=(100, 12)) as pilot:
        table = app.query_one(TurnTable)
        state = state_with([record(t) for t in range(1, 8)])
        table.sync(state)
        await pilot.pause()
        assert plain_row(table, 0)[1] == "apple"
        assert table.toggle_values()
        assert plain_row(table, 0)[1] == "apple+10"
        # an injection marks its row (the record now carries the injected history answer)
        state.records[2] = record(3, injected_as=99)
        state.injections[3] = Injected(sample=0, turn=3, original=30, injected=99)
        table.sync(state)
        assert plain_row(table, 2)[2] == "30 ⚡99"
        # a replay stepping back drops the newest rows
        del state.records[5:]
        table.sync(state)
        await pilot.pause()
        assert table.row_count == 5 and table.cursor_row == 4
        table.sync(None)
        assert table.row_count == 0 and table.sample is None


def test_cells_keep_plain_and_style():
    table = TurnTable()
    table._styles = {"turn-table--wrong": Style(color="red")}
    cells = table.cells(record(1, answer=3), first_error=None)
    assert [c.plain for c in cells][:6] == ["1", "apple", "3", "10", "-7", "wrong"]
    assert cells[5].style == Style(color="red")
