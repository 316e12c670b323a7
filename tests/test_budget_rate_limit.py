"""Issue 17: --max-cost / --max-tokens-total stop a run before a request would pass the budget (and resume with a
new one); --rpm / --tpm hold requests back client-side (token buckets, a fake clock here)."""

import asyncio
import json
import sqlite3

import pytest

from lhe_tui.cli.main import main
from lhe_tui.core.config import RunConfig
from lhe_tui.core.events import EventBus, RunFinished, Throttled, TurnFinished
from lhe_tui.core.prices import ModelPrice
from lhe_tui.providers.base import GenerationSettings, Provider, Reply
from lhe_tui.providers.factory import make_provider
from lhe_tui.runner.budget import Budget, Estimate
from lhe_tui.runner.rate_limit import RateLimiter, message_tokens
from lhe_tui.runner.runner import Runner
from lhe_tui.runs.session import build_task
from lhe_tui.testing.fake_llm_server import FakeLLMServer, ScriptedReply, approx_tokens, content_text

# $10,000 per million input tokens: 100 tokens cost $1; output is free.
PRICES = """
as_of = "2030-01-01"

[models.test-model]
input = 10000.0
output = 0.0
"""


def growing(body):
    """Like a real conversation: 100 input tokens per user turn in the request (turn t: 100 t), 10 out."""
    users = sum(1 for m in body["messages"] if m["role"] == "user")
    return ScriptedReply(text="<answer>0</answer>", prompt_tokens=100 * users, completion_tokens=10)


@pytest.fixture(autouse=True)
def env(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("LHE_TUI_PRICES", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")


@pytest.fixture
def price_file(tmp_path):
    path = tmp_path / "prices.toml"
    path.write_text(PRICES)
    return path


def session_row(db):
    with sqlite3.connect(db) as conn:
        status, message, config = conn.execute("SELECT status, message, config_json FROM sessions").fetchone()
        turns = conn.execute("SELECT COUNT(*) FROM turns").fetchone()[0]
    return status, message, json.loads(config), turns


def test_max_cost_stops_at_the_right_turn_and_resume_with_more_finishes(capsys, tmp_path, price_file):
    db = tmp_path / "lhe.db"
    with FakeLLMServer(growing) as server:
        base = ["--db", str(db), "--prices", str(price_file)]
        code = main(["run", "--headless", "--provider", "openai", "--model", "test-model", "--base-url",
                     server.openai_base_url, "--turns", "6", "--seed", "3", "--max-cost", "8", *base])
        err = capsys.readouterr().err
        assert code == 130 and "lhe-tui: stopped: budget of $8.00 reached after $6.00" in err, err
        # turns cost $1, $2, $3 (spent $6); turn 4 would cost about $3.1 more: past $8, so it is not sent
        status, message, config, turns = session_row(db)
        assert (status, turns) == ("interrupted", 3)
        assert len(server.requests) == 3
        assert message.startswith("budget of $8.00 reached after $6.00")
        assert "lhe-tui resume " in message and "--max-cost 16" in message
        assert config["max_cost"] == 8.0
        capsys.readouterr()
        code = main(["resume", "latest", "--headless", "--max-cost", "100", *base])
        assert code == 0, capsys.readouterr().err
    status, message, config, turns = session_row(db)
    assert (status, turns, config["max_cost"]) == ("finished", 6, 100.0)


def test_max_tokens_total_counts_input_and_output(capsys, tmp_path):
    db = tmp_path / "lhe.db"
    with FakeLLMServer(growing) as server:
        code = main(["run", "--headless", "--provider", "openai", "--model", "unpriced", "--base-url",
                     server.openai_base_url, "--turns", "5", "--max-tokens-total", "900", "--db", str(db)])
    assert code == 130
    status, message, _, turns = session_row(db)
    # 110 + 210 + 310 = 630 tokens; turn 4 is estimated at 310 + 10 + its new message's characters / 4: past 900
    assert (status, turns) == ("interrupted", 3)
    assert message.startswith("budget of 900 tokens reached after 630")


def test_max_cost_on_a_model_with_no_price_is_one_line_before_the_run(capsys, tmp_path):
    db = tmp_path / "lhe.db"
    code = main(["run", "--headless", "--turns", "2", "--max-cost", "1", "--db", str(db)])
    err = capsys.readouterr().err
    assert code != 0 and len(err.strip().splitlines()) == 1
    assert "--max-cost needs a price for model 'sim-1'" in err
    assert not db.exists()


@pytest.mark.parametrize("flag,value", [("--max-cost", "0"), ("--max-cost", "x"), ("--max-tokens-total", "-3"),
                                        ("--rpm", "0"), ("--tpm", "1.5")])
def test_bad_limits_are_one_line(capsys, tmp_path, flag, value):
    code = main(["run", "--headless", "--turns", "2", flag, value, "--db", str(tmp_path / "x.db")])
    err = capsys.readouterr().err
    assert code != 0 and len(err.strip().splitlines()) == 1 and flag in err


def test_budget_reserves_requests_in_flight():
    budget = Budget(2.0, None, ModelPrice(input=1_000_000, output=0))   # $1 per token
    one = Estimate(1, 0, 1.0)
    assert budget.admit(one, "S") and budget.admit(one, "S")
    assert not budget.admit(one, "S")           # two in flight already take the $2
    assert budget.stopped.startswith("budget of $2.00 reached after $0.0000")
    assert not budget.admit(Estimate(0, 0, 0.0), "S")   # once stopped, every sample stops


def test_the_token_budget_reserves_requests_in_flight():
    budget = Budget(None, 100, None)
    assert budget.admit(Estimate(40, 0, 0.0), "S") and budget.admit(Estimate(30, 20, 0.0), "S")
    assert not budget.admit(Estimate(11, 0, 0.0), "S")      # 90 tokens in flight: 11 more would pass 100
    assert budget.stopped.startswith("budget of 100 tokens reached after 0")


class InFlight(Provider):
    """Answers after every sample's first request has been sent (they are all in flight at once), reporting the
    request's input as the budget estimates it (characters / 4) and no output: the budget's estimates are then
    exact, so what the run spends may never pass --max-tokens-total."""

    name = "in-flight"

    def __init__(self) -> None:
        super().__init__("in-flight-1", GenerationSettings())
        self.in_flight: list[int] = []   # the input tokens of each request in flight
        self.most = 0                    # input tokens in flight at once, at most
        self.sent = 0

    async def complete(self, messages, meta, on_delta=None):
        tokens = message_tokens(messages)
        self.sent += 1
        self.in_flight.append(tokens)
        self.most = max(self.most, sum(self.in_flight))
        for _ in range(3):               # every other sample's request goes out meanwhile
            await asyncio.sleep(0)
        self.in_flight.remove(tokens)
        return Reply(text="<answer>0</answer>", tokens_in=tokens, tokens_out=0)


def test_concurrent_samples_never_pass_max_tokens_total():
    sizing = RunConfig(provider="sim", samples=4, turns=1, seed=2, concurrency=4).validate()
    asyncio.run(Runner(sizing, build_task(sizing), sized := InFlight(), "sizing", EventBus()).run())
    assert sized.sent == 4 and sized.most > 0    # without a budget, the four first requests are in flight at once
    limit = sized.most * 5 // 8                 # room for two of them (each is a quarter of that), not three
    config = RunConfig(provider="sim", samples=4, turns=3, seed=2, concurrency=4, max_tokens_total=limit).validate()
    provider = InFlight()
    bus = EventBus()
    finished: list = []
    bus.subscribe(lambda e: isinstance(e, TurnFinished) and finished.append(e.record))
    status = asyncio.run(Runner(config, build_task(config), provider, "S", bus).run())
    assert status == "interrupted" and provider.sent == 2 and len(finished) == 2
    assert provider.most <= limit                               # never more in flight than the budget
    assert sum(r.tokens_in + r.tokens_out for r in finished) <= limit


# ---- rate limits ---------------------------------------------------------------------------------------

class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_rpm_bucket_holds_the_request_past_a_minutes_allowance():
    clock = FakeClock()
    limiter = RateLimiter(rpm=2, clock=clock, sleep=clock.sleep)
    holds = []

    async def go():
        for _ in range(4):
            await limiter.acquire(1, lambda delay, limit: holds.append((round(delay, 6), limit)))

    asyncio.run(go())
    assert clock.slept == [30.0, 30.0] and holds == [(30.0, "rpm"), (30.0, "rpm")]


def test_tpm_bucket_counts_input_tokens_and_lets_an_oversized_request_through_alone():
    clock = FakeClock()
    limiter = RateLimiter(tpm=600, clock=clock, sleep=clock.sleep)
    asyncio.run(limiter.acquire(500))
    assert asyncio.run(limiter.acquire(500)) == pytest.approx(40.0)   # 400 missing at 10 per second
    clock.now += 60
    assert asyncio.run(limiter.acquire(5000)) == 0.0                  # a full bucket: it goes, emptying it
    assert asyncio.run(limiter.acquire(1)) == pytest.approx(0.1)
    assert message_tokens([{"role": "user", "content": "abcdefgh"},
                           {"role": "user", "content": [{"type": "text", "text": "abcd"}]}]) == 3


def test_the_runner_waits_for_the_limiter_and_says_so():
    config = RunConfig(turns=3, samples=2, concurrency=2, sim_delay=0.0, rpm=2)
    clock = FakeClock()
    bus = EventBus()
    events = []
    bus.subscribe(events.append)
    runner = Runner(config, build_task(config), make_provider(config), "S", bus,
                    limiter=RateLimiter(config.rpm, clock=clock, sleep=clock.sleep))
    assert asyncio.run(runner.run()) == "finished"
    throttled = [e for e in events if isinstance(e, Throttled)]
    assert sum(isinstance(e, TurnFinished) for e in events) == 6
    assert throttled and all(e.limit == "rpm" for e in throttled)
    assert clock.now == pytest.approx(120.0)    # 6 requests at 2 a minute, 2 of them at once at the start
    assert isinstance(events[-1], RunFinished)


def test_status_bar_says_the_limiter_holds_requests():
    from lhe_tui.core.events import RunStarted
    from lhe_tui.ui.feed import RunModel

    model = RunModel()
    model.apply(RunStarted(session_id="S", config=RunConfig().to_dict(), dictionary={"a": 1}, sample_keys=(("a",),),
                           provider_label="sim", simulated=True))
    model.apply(Throttled(sample=0, turn=2, delay_s=30.0, limit="tpm"))
    assert model.held() == "held by the rate limiter (--tpm) 30.0s"


def test_the_tui_resume_takes_the_new_budget_too(capsys, tmp_path, price_file, monkeypatch):
    from lhe_tui.ui.app import resume_live_run

    db = tmp_path / "lhe.db"
    monkeypatch.setenv("LHE_TUI_PRICES", str(price_file))
    with FakeLLMServer(growing) as server:
        main(["run", "--headless", "--provider", "openai", "--model", "test-model", "--base-url",
              server.openai_base_url, "--turns", "6", "--max-cost", "3", "--db", str(db)])
    live = resume_live_run(db, session_row_id(db), {"max_cost": 50.0, "tpm": 1000})
    assert (live.job.resume_state.config.max_cost, live.job.resume_state.config.tpm) == (50.0, 1000)


def session_row_id(db):
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT id FROM sessions").fetchone()[0]


def by_characters(body):
    """Input tokens as the runner estimates them (characters / 4), so its estimates hold."""
    tokens = sum(approx_tokens(content_text(m["content"])) for m in body["messages"])
    return ScriptedReply(text="<answer>0</answer>", prompt_tokens=tokens, completion_tokens=10)


def test_every_sample_stops_once_the_budget_is_reached(capsys, tmp_path, price_file):
    """Three samples at once: the requests in flight are reserved, so the session stays within the budget and
    the message gives what it spent in the end."""
    db = tmp_path / "lhe.db"
    with FakeLLMServer(by_characters) as server:
        code = main(["run", "--headless", "--provider", "openai", "--model", "test-model", "--base-url",
                     server.openai_base_url, "--turns", "10", "--samples", "3", "--concurrency", "3",
                     "--max-cost", "40", "--db", str(db), "--prices", str(price_file)])
    assert code == 130
    with sqlite3.connect(db) as conn:
        statuses = {row[0] for row in conn.execute("SELECT status FROM samples")}
        spent = conn.execute("SELECT SUM(tokens_in) FROM turns").fetchone()[0] / 100   # $1 per 100 input tokens
        turns, message = (conn.execute("SELECT COUNT(*) FROM turns").fetchone()[0],
                          conn.execute("SELECT message FROM sessions").fetchone()[0])
    assert statuses == {"stopped"} and 0 < turns < 30 and 30 < spent <= 40
    assert message.startswith(f"budget of $40.00 reached after ${spent:.2f}")
