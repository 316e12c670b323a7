"""Retries, permanent errors, readers while writing, and no secrets at rest."""

import asyncio
import sqlite3
import subprocess
import sys
import time

import pytest

from lhe_tui.cli.main import main
from lhe_tui.providers.openai_chat import OpenAIChatProvider
from lhe_tui.providers.anthropic_messages import AnthropicProvider
from lhe_tui.providers.factory import generation_settings
from lhe_tui.core.config import RunConfig
from lhe_tui.core.events import EventBus, RetryScheduled, TurnFinished
from lhe_tui.runner.retry import Backoff
from lhe_tui.runner.runner import Runner
from lhe_tui.runs.session import build_task
from lhe_tui.testing.fake_llm_server import FakeLLMServer, Fault

from tests.test_providers import summing_responder

SECRET = "sk-dummy-SECRET-0123456789abcdef"


def make(provider_name, server, config):
    settings = generation_settings(config)
    if provider_name.startswith("openai"):
        return OpenAIChatProvider("m", settings, api_key=SECRET, base_url=server.openai_base_url,
                                  client="sdk" if provider_name == "openai-sdk" else "direct")
    return AnthropicProvider("m", settings, api_key=SECRET, base_url=server.anthropic_base_url)


@pytest.mark.parametrize("provider_name", ["openai", "openai-sdk", "anthropic"])
def test_transient_failures_are_retried_counted_and_scored(provider_name):
    config = RunConfig(provider="openai", model="m", turns=3, samples=1, max_retries=5).validate()
    with FakeLLMServer(summing_responder()) as server:
        server.add_faults(Fault("status", status=429, retry_after=0.05), Fault("status", status=502),
                          Fault("cut", after_chunks=1), Fault("reset"))
        bus, events = EventBus(), []
        bus.subscribe(events.append)
        provider = make(provider_name, server, config)
        runner = Runner(config, build_task(config), provider, "t", bus, backoff=Backoff(base_s=0.01, cap_s=0.05))
        status = asyncio.run(runner.run())
    records = [e.record for e in events if isinstance(e, TurnFinished)]
    retries = [e for e in events if isinstance(e, RetryScheduled)]
    assert status == "finished"
    assert records[0].retries == 4 and records[1].retries == 0
    assert all(r.correct for r in records)
    assert len(retries) == 4 and retries[0].delay_s == pytest.approx(0.05)  # Retry-After honoured


def test_backoff_is_capped_exponential_with_jitter():
    import random

    backoff, rng = Backoff(base_s=1, cap_s=8), random.Random(0)
    delays = [backoff.delay(a, rng) for a in range(1, 8)]
    assert all(0.5 <= delays[0] <= 1 and 4 <= delays[-1] <= 8 for _ in [0])
    assert max(delays) <= 8
    assert backoff.delay(1, rng, retry_after=12) == 12


def cli_env(server_url):
    return {"OPENAI_API_KEY": SECRET, "OPENAI_BASE_URL": server_url}


def test_permanent_error_stops_with_one_line_and_keeps_stored_turns(tmp_path, capsys, monkeypatch):
    db = tmp_path / "lhe.db"
    with FakeLLMServer(summing_responder()) as server:
        monkeypatch.setenv("OPENAI_API_KEY", SECRET)
        base = ["run", "--headless", "--provider", "openai", "--model", "m", "--base-url", server.openai_base_url,
                "--turns", "5", "--samples", "1", "--db", str(db)]
        assert main(base[:-2] + ["--turns", "3", "--db", str(db)]) == 0  # a good session first
        server.add_faults(Fault("status", status=401))  # then the next one is refused
        code = main(base)
    out, err = capsys.readouterr()
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("lhe-tui: error:") and "401" in last and "Traceback" not in err
    with sqlite3.connect(db) as conn:
        statuses = [r[0] for r in conn.execute("SELECT status FROM sessions ORDER BY rowid")]
        assert statuses == ["finished", "failed"]
        assert conn.execute("SELECT COUNT(*) FROM turns").fetchone()[0] == 3


def test_no_secret_reaches_database_exports_or_logs(tmp_path, capsys, monkeypatch):
    db = tmp_path / "lhe.db"
    with FakeLLMServer(summing_responder()) as server:
        monkeypatch.setenv("OPENAI_API_KEY", SECRET)
        server.add_faults(Fault("status", status=500))
        assert main(["run", "--headless", "--provider", "openai", "--model", "m", "--base-url",
                     server.openai_base_url, "--turns", "4", "--samples", "2", "--retries", "2",
                     "--db", str(db)]) == 0
        assert server.requests[0].headers["authorization"] == f"Bearer {SECRET}"  # it was really sent
    sid = sqlite3.connect(db).execute("SELECT id FROM sessions").fetchone()[0]
    for fmt in ("json", "csv"):
        assert main(["export", sid, "--format", fmt, "--db", str(db)]) == 0
    assert main(["show", sid, "--db", str(db)]) == 0
    out, err = capsys.readouterr()
    blobs = [out, err] + [p.read_bytes().decode("latin-1") for p in tmp_path.rglob("*") if p.is_file()]
    for blob in blobs:
        assert SECRET not in blob
        assert "Bearer" not in blob


def test_readers_see_a_session_while_another_process_writes(tmp_path):
    db = tmp_path / "lhe.db"
    writer = subprocess.Popen([sys.executable, "-m", "lhe_tui", "run", "--headless", "--turns", "400", "--samples",
                               "4", "--sim-delay", "0.001", "--db", str(db)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        seen, errors = set(), []
        deadline = time.time() + 60
        while writer.poll() is None and time.time() < deadline:
            if db.exists():
                result = subprocess.run([sys.executable, "-m", "lhe_tui", "sessions", "--db", str(db)],
                                        capture_output=True, text=True, timeout=60)
                if result.returncode != 0:
                    errors.append(result.stderr)
                elif "running" in result.stdout:
                    seen.add("running")
                    sid = sqlite3.connect(db).execute("SELECT id FROM sessions").fetchone()[0]
                    show = subprocess.run([sys.executable, "-m", "lhe_tui", "show", sid, "--db", str(db)],
                                          capture_output=True, text=True, timeout=60)
                    if show.returncode != 0:
                        errors.append(show.stderr)
                    else:
                        seen.add("show")
            time.sleep(0.1)
    finally:
        writer.wait(timeout=120)
    assert not errors, errors
    assert "locked" not in writer.stderr.read()
    assert {"running", "show"} <= seen
    assert writer.returncode == 0
