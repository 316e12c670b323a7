"""Issue 17: the new-run form forecasts the run as you type (tokens, cost with and without caching or "no
price", the least duration under the rate limits), recomputed once a pause after the last change."""

from __future__ import annotations

import pytest
from textual.widgets import Input, Select, Static

from lhe_tui.core.config import RunConfig
from lhe_tui.core.prices import parse_prices
from lhe_tui.analysis.estimate import forecast
from lhe_tui.ui.app import LheApp
from lhe_tui.ui.screens.new_run import ESTIMATE_DELAY, NewRunScreen

SIZE = (100, 30)
PRICES = """
[models.claude-test]
input = 3.0
cached_input = 0.3
cache_write = 3.75
output = 15.0
"""


@pytest.fixture(autouse=True)
def prices(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    path = tmp_path / "prices.toml"
    path.write_text(PRICES)
    monkeypatch.setenv("LHE_TUI_PRICES", str(path))
    return parse_prices(PRICES, str(path))


async def open_form(pilot) -> NewRunScreen:
    await pilot.press("n")
    await settle(pilot)
    assert isinstance(pilot.app.screen, NewRunScreen)
    return pilot.app.screen


async def settle(pilot) -> None:
    await pilot.pause(ESTIMATE_DELAY + 0.1)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def estimate(form: NewRunScreen) -> str:
    return str(form.query_one("#estimate", Static).render())


async def test_the_estimate_follows_turns_and_samples(db_path):
    app = LheApp(db_path, new_run_defaults=RunConfig(samples=2, turns=20, sim_delay=0.0))
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot)
        first = estimate(form)
        expected = forecast(RunConfig(samples=2, turns=20, sim_delay=0.0))
        assert f"tokens ≈ {expected.input_tokens:,} in + {expected.output_tokens:,} out (40 requests, 8/reply)" in first
        assert "no price for model 'sim-1'" in first and "no client-side limit" in first

        turns = form.query_one("#turns", Input)
        turns.focus()
        turns.value = ""
        for key in "300":                       # typed key by key: one forecast after the pause, not three
            await pilot.press(key)
        before = form.estimates
        await settle(pilot)
        assert form.estimates == before + 1
        bigger = forecast(RunConfig(samples=2, turns=300))
        assert f"{bigger.input_tokens:,} in +" in estimate(form) and "(600 requests" in estimate(form)

        form.query_one("#samples", Input).value = "5"
        await settle(pilot)
        assert "(1,500 requests" in estimate(form)
        assert f"{forecast(RunConfig(samples=5, turns=300)).input_tokens:,} in +" in estimate(form)

        form.query_one("#rpm", Input).value = "100"
        await settle(pilot)
        assert "time: at least 14 min, rpm binds (reply time not counted)" in estimate(form)   # (1500-100)/100 min
        assert form.read_config().rpm == 100                   # the field is the run's --rpm too


async def test_cost_with_and_without_caching_for_a_priced_model(db_path, prices):
    # 150 turns: the prompt passes Anthropic's 1,024-token minimum near turn 80, so caching saves something
    app = LheApp(db_path, new_run_defaults=RunConfig(samples=1, turns=150, sim_delay=0.0))
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot)
        form.query_one("#provider", Select).value = "anthropic"
        form.query_one("#model", Input).value = "claude-test"
        await settle(pilot)
        expected = forecast(RunConfig(provider="anthropic", model="claude-test", samples=1, turns=150), prices=prices)
        from lhe_tui.core.prices import fmt_cost

        assert expected.cost_cached < expected.cost_uncached
        assert (f"cost: {fmt_cost(expected.cost_uncached)} without caching, {fmt_cost(expected.cost_cached)} with"
                in estimate(form))
        form.query_one("#model", Input).value = "unknown-model"
        await settle(pilot)
        assert "no price for model 'unknown-model'" in estimate(form)


async def test_bad_fields_say_so_in_one_line_and_huge_runs_are_not_computed(db_path):
    app = LheApp(db_path, new_run_defaults=RunConfig(samples=2, turns=20, sim_delay=0.0))
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot)
        form.query_one("#tpm", Input).value = "lots"
        await settle(pilot)
        text = estimate(form)
        assert "estimate: none while the form has an error (tpm must be a whole number or empty" in text
        assert "\n" not in text
        form.query_one("#tpm", Input).value = ""
        form.query_one("#turns", Input).value = "1000000"
        form.query_one("#samples", Input).value = "100"
        before = form.estimates
        await settle(pilot)
        assert "100,000,000 requests is too many to forecast as you type" in estimate(form)
        assert form.estimates == before                     # nothing heavy was started
