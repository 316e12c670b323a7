"""Issue 21 in the TUI: an empty reply asked for again shows `∅N` in the turn table and a count on the status
line, a failed request a `failed` row and its reason, live and in replay; a run whose first request gets a
401 says "no data" on the status line, and the sessions list says it too."""

from __future__ import annotations

import asyncio
import os

from lhe_tui.core.config import RunConfig
from lhe_tui.store.database import open_database
from lhe_tui.store.replay import SessionReplay
from lhe_tui.testing.fake_llm_server import FakeLLMServer, Fault
from lhe_tui.ui.app import LheApp, start_live_run
from lhe_tui.ui.widgets.reply_view import describe_result

from ..test_failed_replies import Script
from .test_run_view import SIZE, plain, wait_until


def openai_config(server, **options) -> RunConfig:
    return RunConfig(provider="openai", model="m", base_url=server.openai_base_url, samples=1, **options)


async def test_empty_retries_and_failed_turns_show_live_and_in_replay(db_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    ref: list = []
    with FakeLLMServer(Script(ref, empty={2: 1}, faults={3: [Fault("status", status=500)]})) as server:
        ref.append(server)
        live = start_live_run(openai_config(server, turns=5, max_retries=0), db_path)
        app = LheApp(db_path, live=live)
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            await wait_until(pilot, lambda: screen.model.status == "finished")
            screen.flush()
            await pilot.pause()
            assert plain(screen.table.get_row_at(1)[8]).endswith("∅1")
            assert screen.model.samples[0].records[3].answer_status == "failed"
            assert plain(screen.table.get_row_at(3)[2]) == "—"          # no answer
            assert plain(screen.table.get_row_at(4)[5]) == "ok"         # and the sample went on
            assert "1 empty re-asked" in str(screen.status_bar.content)
            assert "no data" not in str(screen.status_bar.content)
    assert os.path.exists(db_path)
    replay = SessionReplay(open_database(db_path), live.session_id)
    app = LheApp(db_path, replay=replay, replay_speed=float("inf"))
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await wait_until(pilot, lambda: screen.model.turns_done == 5)
        screen.flush()
        await pilot.pause()
        assert plain(screen.table.get_row_at(1)[8]).endswith("∅1")
        record = screen.model.samples[0].records[3]
        assert record.answer_status == "failed"
        words, _ = describe_result(type("S", (), {"record": record})())
        assert words.startswith("no reply, the provider failed: ") and "HTTP 500" in words


async def test_a_run_refused_at_its_first_request_says_no_data(db_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    ref: list = []
    with FakeLLMServer(Script(ref)) as server:
        ref.append(server)
        server.add_faults(Fault("status", status=401))
        live = start_live_run(openai_config(server, turns=4), db_path)
        app = LheApp(db_path, live=live)
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            await wait_until(pilot, lambda: screen.model.status == "failed")
            screen.flush()
            await pilot.pause()
            await wait_until(pilot, lambda: "no data" in str(screen.status_bar.content))
            assert "p=" not in str(screen.status_bar.content)


async def test_the_sessions_list_says_no_data_for_a_run_with_no_answer(db_path, monkeypatch, capsys):
    from textual.widgets import DataTable, Static

    from lhe_tui.cli.main import main
    from lhe_tui.ui.screens.sessions import SessionsScreen

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    ref: list = []
    with FakeLLMServer(Script(ref)) as server:
        ref.append(server)
        server.add_faults(Fault("status", status=401))
        assert await asyncio.to_thread(main, ["run", "--headless", "--provider", "openai", "--model", "m",
                                              "--base-url", server.openai_base_url, "--turns", "3", "--db",
                                              str(db_path)]) == 1
    app = LheApp(db_path, replay_autoplay=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SessionsScreen)
        cells = [plain(c) for c in screen.query_one(DataTable).get_row_at(0)]
        assert cells[2] == "no data" and cells[3] == "no data" and "0.0%" not in cells
        detail = str(screen.query_one("#session-detail", Static).content)
        assert "task acc no data" in detail and "turn acc no data" in detail
