"""Issue 17: `run --estimate` says how long the run takes at least under --rpm / --tpm (the binding limit
named), the same arithmetic as the limiter's token buckets, and says what it does not count."""

from __future__ import annotations

import asyncio

import pytest

from lhe_tui.cli.main import main
from lhe_tui.core.config import RunConfig
from lhe_tui.analysis.estimate import forecast
from lhe_tui.analysis.run_duration import fmt_duration, run_duration
from lhe_tui.runner.rate_limit import RateLimiter


@pytest.fixture(autouse=True)
def env(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("LHE_TUI_PRICES", raising=False)


def estimate(capsys, *flags: str) -> str:
    assert main(["run", "--estimate", *flags]) == 0
    return capsys.readouterr().out


def test_rpm_binds_requests_over_the_rate_after_the_first_minute():
    d = run_duration(1000, 5_000, rpm=100, tpm=None)
    assert d.binding == "rpm" and d.seconds == pytest.approx(900 * 60 / 100)   # the first 100 go at once
    assert run_duration(50, 0, rpm=100, tpm=None).seconds == 0                  # within one minute's allowance
    both = run_duration(1000, 2_000_000, rpm=100, tpm=100_000)
    assert both.binding == "tpm" and both.seconds == pytest.approx(1_900_000 * 60 / 100_000)
    assert both.bounds["rpm"] == pytest.approx(540)
    none = run_duration(1000, 5_000, rpm=None, tpm=None)
    assert none.binding is None and none.bounds == {}


def test_latency_counts_only_when_given_and_samples_in_flight_divide_it():
    d = run_duration(300, 0, rpm=None, tpm=None, latency_s=2.0, parallel=3)   # 3 samples x 100 turns
    assert d.binding == "latency" and d.seconds == pytest.approx(200)      # each sample: 100 turns x 2 s
    assert run_duration(300, 0, rpm=600, tpm=None, latency_s=2.0, parallel=3).binding == "latency"
    assert run_duration(300, 0, rpm=60, tpm=None, latency_s=2.0, parallel=3).binding == "rpm"


@pytest.mark.parametrize("rpm,tpm,amount", [(60, None, 10), (None, 1_000, 300), (30, 2_000, 50), (None, 200, 500)])
def test_the_bound_is_what_the_real_limiter_takes_on_a_fake_clock(rpm, tpm, amount):
    """Requests sent through lhe_tui.runner.rate_limit.RateLimiter one after another with no reply time: the
    last one goes exactly when run_duration says (a request above --tpm takes a whole minute's allowance)."""
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    limiter = RateLimiter(rpm, tpm, clock=lambda: now[0], sleep=sleep)
    requests = 200

    async def send_all() -> None:
        for _ in range(requests):
            await limiter.acquire(amount)

    asyncio.run(send_all())
    charged = requests * min(amount, tpm) if tpm else 0
    assert run_duration(requests, charged, rpm=rpm, tpm=tpm).seconds == pytest.approx(now[0], rel=1e-6, abs=1e-6)


def test_forecast_charges_the_tpm_bucket_each_request_capped_at_a_minute():
    config = RunConfig(provider="openai", model="m", turns=200, samples=2)
    free = forecast(config)
    assert free.limited_tokens == 0 and free.duration().binding is None
    limited = forecast(RunConfig(provider="openai", model="m", turns=200, samples=2, tpm=10**9, rpm=10**6))
    assert limited.limited_tokens == pytest.approx(limited.input_tokens, abs=2)   # no request above the cap
    tight = forecast(RunConfig(provider="openai", model="m", turns=200, samples=2, tpm=1_000))
    assert tight.limited_tokens < tight.input_tokens and tight.limited_tokens <= 1_000 * tight.requests
    assert tight.parallel == 2 and tight.duration().binding == "tpm"


def test_estimate_names_the_binding_limit_and_the_lower_bound(capsys):
    out = estimate(capsys, "--turns", "100", "--samples", "3", "--rpm", "60")
    # 300 requests at 60 a minute, the first 60 at once: 240 s
    assert "duration       at least 4 min (--rpm 60 binds: 300 requests at 60 a minute" in out
    assert "a lower bound from the limits: reply time and retries not counted" in out
    config = RunConfig(turns=100, samples=3, tpm=5_000, rpm=60)
    expected = forecast(config).duration()
    out = estimate(capsys, "--turns", "100", "--samples", "3", "--rpm", "60", "--tpm", "5000")
    assert f"at least {fmt_duration(expected.seconds)} (--tpm 5,000 binds" in out and "--rpm alone: 4 min" in out
    out = estimate(capsys, "--turns", "100", "--samples", "3", "--rpm", "60", "--estimate-latency", "30")
    assert "at least 50 min (reply time binds: 300 requests x 30 s, 3 samples at a time)" in out   # 100 x 30 s
    assert "--rpm alone: 4 min" in out and "retries not counted" in out


def test_no_limit_says_so(capsys):
    out = estimate(capsys, "--turns", "20")
    assert "no client-side limit (--rpm, --tpm)" in out and "at least" not in out


@pytest.mark.parametrize("value", ["0", "-1", "soon", "inf"])
def test_a_bad_latency_is_one_line(capsys, value):
    assert main(["run", "--estimate", "--estimate-latency", value]) != 0
    err = capsys.readouterr().err
    assert "--estimate-latency" in err and err.count("\n") == 1 and "Traceback" not in err


def test_durations_read_plainly():
    assert [fmt_duration(s) for s in (0, 59.4, 90, 3600, 3 * 3600 + 20 * 60, 49 * 3600)] == [
        "0 s", "59 s", "2 min", "1 h", "3 h 20 min", "2 d 1 h"]
