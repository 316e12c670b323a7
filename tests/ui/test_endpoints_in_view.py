"""Several servers of one model (issue 24): the live view's status bar shows each one's load or state."""

from __future__ import annotations

from lhe_tui.core.config import RunConfig
from lhe_tui.testing.fake_llm_server import FakeLLMServer
from lhe_tui.ui.app import LheApp, start_live_run

from ..test_providers import summing_responder
from .test_run_view import SIZE, wait_until


async def test_the_status_bar_shows_a_server_down_and_the_others_load(db_path):
    gone = FakeLLMServer().start()
    dead_url = gone.openai_base_url
    gone.stop()                         # nothing listens there now: refused, so marked down at once
    with FakeLLMServer(summing_responder(), latency=0.03) as a, FakeLLMServer(summing_responder(), latency=0.03) as b:
        urls = (a.openai_base_url, dead_url, b.openai_base_url)
        config = RunConfig(provider="openai", model="m", base_url=urls[0], endpoints=urls, samples=6, turns=200)
        live = start_live_run(config, db_path)
        app = LheApp(db_path, live=live)
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            await wait_until(pilot, lambda: " · ep 3 down 3 · " in str(screen.status_bar.content), timeout=30)
            assert screen.model.status == "running"
            live.stop()
            await wait_until(pilot, lambda: screen.model.status == "interrupted", timeout=30)
