"""Retries are shown: per turn in the turn table (`↻N` after the latency) and in total on the status line,
live and in replay, for a real OpenAI-SDK run against a fault-injecting local server."""

from __future__ import annotations

from lhe_tui.core.config import RunConfig
from lhe_tui.store.database import open_database
from lhe_tui.store.replay import SessionReplay
from lhe_tui.testing.fake_llm_server import FakeLLMServer, Fault
from lhe_tui.ui.app import LheApp, start_live_run

from ..test_providers import summing_responder
from .test_run_view import SIZE, plain, wait_until


async def test_retries_show_in_the_table_and_status_line(db_path):
    with FakeLLMServer(summing_responder()) as server:
        # the first request fails twice (Retry-After honoured: 50 ms each), the rest go through
        server.add_faults(Fault("status", status=429, retry_after=0.05), Fault("status", status=503, retry_after=0.05))
        config = RunConfig(provider="openai", model="m", base_url=server.openai_base_url, samples=1, turns=3,
                           max_retries=5)
        live = start_live_run(config, db_path)
        app = LheApp(db_path, live=live)
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            await wait_until(pilot, lambda: screen.model.status == "finished")
            screen.flush()
            await pilot.pause()
            assert plain(screen.table.get_row_at(0)[8]).endswith("↻2")
            assert "↻" not in plain(screen.table.get_row_at(1)[8])
            assert "2 retries" in str(screen.status_bar.content)
    replay = SessionReplay(open_database(db_path), live.session_id)
    app = LheApp(db_path, replay=replay, replay_speed=float("inf"))
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await wait_until(pilot, lambda: screen.model.turns_done == 3)
        screen.flush()
        await pilot.pause()
        assert plain(screen.table.get_row_at(0)[8]).endswith("↻2")
        assert "2 retries" in str(screen.status_bar.content)
