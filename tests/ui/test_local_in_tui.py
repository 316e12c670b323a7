"""`--provider local` in the TUI: the run view comes up at once, the run starts the llama.cpp server on its
own loop, and the server is stopped however the run ends (finished, stopped while starting, failed start).

The fast tests stand a FakeLLMServer (real OpenAI wire format) in for llama.cpp's server, spawned as a
child process exactly as the real one is; the last test uses the real server and the bundled SmolLM2.
"""

from __future__ import annotations

import asyncio
import sys
import textwrap

import pytest

from lhe_tui.providers import local_install
from lhe_tui.providers.local_install import INSTALL_HINT, find_bundled_model, missing_server_modules
from lhe_tui.providers.local_server import LocalModelServer, port_is_free
from lhe_tui.core.config import RunConfig
from lhe_tui.store.database import open_database
from lhe_tui.store.queries import list_sessions, load_session, load_turns
from lhe_tui.ui.app import LheApp, start_live_run
from lhe_tui.ui.live import NOT_STARTED

from ..test_local_model import pid_gone
from .test_run_view import SIZE, wait_until


def stand_in(monkeypatch, script: str) -> None:
    """LocalModelServer spawns `script` (formatted with the chosen port) instead of llama.cpp's server."""
    monkeypatch.setattr(local_install, "missing_server_modules", lambda: [])
    monkeypatch.setattr(LocalModelServer, "command",
                        lambda self: [sys.executable, "-c", textwrap.dedent(script).format(port=self.port)])


FAKE_SERVER = """
    import time
    time.sleep(1.0)   # a model takes a moment to load
    from lhe_tui.testing.fake_llm_server import FakeLLMServer, ScriptedReply
    FakeLLMServer(lambda request: ScriptedReply(text="<answer>0</answer>"), port={port}).start()
    time.sleep(600)
"""


@pytest.fixture
def gguf(tmp_path):
    path = tmp_path / "stand-in.gguf"
    path.write_bytes(b"GGUF")
    return path


def local(gguf, **kw) -> RunConfig:
    return RunConfig(**{"provider": "local", "model_path": str(gguf), "samples": 2, "turns": 3, "seed": 1, **kw})


async def test_local_run_starts_the_server_runs_and_stops_it(monkeypatch, gguf, db_path):
    stand_in(monkeypatch, FAKE_SERVER)
    live = start_live_run(local(gguf), db_path)
    server = live.server
    assert server is not None and server.process is None       # resolved, not started yet
    assert live.config.model == "stand-in"                     # the served name, stored with the session
    app = LheApp(db_path, live=live)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert "starting the local model server" in str(screen.status_bar.content)
        await app.workers.wait_for_complete()
        await wait_until(pilot, lambda: screen.model.status == "finished")
        assert screen.model.turns_done == 6
    assert pid_gone(server.pid) and port_is_free(server.port)
    db = open_database(db_path)
    session = load_session(db, live.session_id)
    assert (session["provider"], session["model"], session["status"]) == ("local", "stand-in", "finished")
    assert len(load_turns(db, live.session_id)) == 6


async def test_stop_while_the_server_starts_stores_nothing_and_leaves_no_process(monkeypatch, gguf, db_path):
    stand_in(monkeypatch, "import time; print('loading', flush=True); time.sleep(600)")
    live = start_live_run(local(gguf), db_path)
    app = LheApp(db_path, live=live)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: live.server.pid is not None)
        await pilot.press("x")
        await app.workers.wait_for_complete()
        await wait_until(pilot, lambda: app.screen.model.status == NOT_STARTED)
        assert "nothing was stored" in str(app.screen.status_bar.content)
    assert live.status == NOT_STARTED
    assert pid_gone(live.server.pid) and port_is_free(live.server.port)
    assert list_sessions(open_database(db_path)) == []


async def test_a_server_that_dies_at_start_is_a_clear_error_not_a_crash(monkeypatch, gguf, db_path):
    stand_in(monkeypatch, "import sys; print('ValueError: not a GGUF model', file=sys.stderr); sys.exit(2)")
    live = start_live_run(local(gguf), db_path)
    app = LheApp(db_path, live=live)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.screen.model.status == "failed")
        status = str(app.screen.status_bar.content)
        assert "exited with code 2 during start-up" in status and "not a GGUF model" in status
    assert pid_gone(live.server.pid)
    assert live.server.log_path.exists()   # kept for the user, named in the message
    live.server.log_path.unlink()
    assert list_sessions(open_database(db_path)) == []


SLOW_FAKE_SERVER = """
    import time
    from lhe_tui.testing.fake_llm_server import FakeLLMServer, ScriptedReply
    print("stand-in model loaded", flush=True)
    FakeLLMServer(lambda request: ScriptedReply(text="<answer>0</answer>"), latency=0.05, port={port}).start()
    time.sleep(600)
"""


async def test_a_server_that_dies_mid_run_ends_it_failed_at_once_with_the_fix(monkeypatch, gguf, db_path):
    import signal
    import time

    stand_in(monkeypatch, SLOW_FAKE_SERVER)
    live = start_live_run(local(gguf, turns=200), db_path)
    app = LheApp(db_path, live=live)
    notes: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        app.notify = lambda message, **kw: notes.append(str(message))   # what the user is told
        screen = app.screen
        await wait_until(pilot, lambda: screen.model.turns_done >= 3, timeout=20)
        killed_at = time.monotonic()
        live.server.process.send_signal(signal.SIGILL)
        await wait_until(pilot, lambda: screen.model.status == "failed", timeout=10)
        took = time.monotonic() - killed_at
    assert took < 15, took   # at once: not after retries (30 s and more)
    assert pid_gone(live.server.pid) and port_is_free(live.server.port)
    session = load_session(open_database(db_path), live.session_id)
    assert session["status"] == "failed"
    assert session["message"].startswith("the local model server died with SIGILL (illegal instruction): "
                                         "llama-cpp-python was built for instructions this CPU cannot run; "
                                         'reinstall with CMAKE_ARGS="-DGGML_NATIVE=OFF"')
    assert "stand-in model loaded" in session["message"]
    assert any("SIGILL (illegal instruction)" in note for note in notes), notes
    assert len(load_turns(open_database(db_path), live.session_id)) >= 3   # what was stored stays


def test_missing_extra_fails_before_the_app_starts(monkeypatch, gguf, db_path):
    monkeypatch.setattr(local_install, "missing_server_modules", lambda: ["llama_cpp"])
    with pytest.raises(Exception, match="needs llama-cpp-python's server"):
        start_live_run(local(gguf), db_path)
    assert not db_path.exists()


_missing = missing_server_modules()


@pytest.mark.local_model
@pytest.mark.skipif(bool(_missing), reason=f"[local] extra not installed (missing {_missing}); {INSTALL_HINT}")
@pytest.mark.skipif(find_bundled_model() is None, reason=f"bundled SmolLM2 GGUF not installed; {INSTALL_HINT}")
async def test_the_real_model_in_the_tui(db_path):
    live = start_live_run(RunConfig(provider="local", samples=1, turns=2, seed=1, mode="direct", max_tokens=16,
                                    temperature=0.0), db_path)
    app = LheApp(db_path, live=live)
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await wait_until(pilot, lambda: app.screen.model.status == "finished", timeout=30)
        assert app.screen.table.row_count == 2
    assert pid_gone(live.server.pid) and port_is_free(live.server.port)
    records = load_turns(open_database(db_path), live.session_id)
    assert [r.turn for r in records] == [1, 2] and all(r.raw_reply.strip() for r in records)


async def interrupted_local_session(db_path, gguf) -> str:
    """A local-model session stopped after its third finished turn (of 2 x 3), as a crash would leave it."""
    from lhe_tui.providers.local_provider import prepare_own_server
    from lhe_tui.core.events import TurnFinished
    from lhe_tui.runs.session import prepare_run

    async def run() -> str:
        server, config, provider = prepare_own_server(local(gguf))
        db = open_database(db_path)
        prepared = prepare_run(config, db, provider=provider, base_url=server.base_url, stream_deltas=False)
        finished = []

        def stop_after_three(event) -> None:
            if isinstance(event, TurnFinished):
                finished.append(event)
                if len(finished) == 3:
                    prepared.runner.stop()

        prepared.bus.subscribe(stop_after_three)
        async with server:
            await prepared.runner.run()
        await provider.aclose()
        db.conn.close()
        return prepared.session_id

    return await run()


def test_headless_resume_of_a_local_session_serves_the_model_again(monkeypatch, gguf, db_path, capsys):
    from lhe_tui.cli.main import main

    stand_in(monkeypatch, FAKE_SERVER)
    session_id = asyncio.run(interrupted_local_session(db_path, gguf))
    db = open_database(db_path)
    assert load_session(db, session_id)["status"] == "interrupted"
    done_before = len(load_turns(db, session_id))
    assert done_before < 6
    assert main(["resume", session_id, "--headless", "--db", str(db_path)]) == 0
    assert "starting the local model server" in capsys.readouterr().err
    assert load_session(db, session_id)["status"] == "finished"
    assert len(load_turns(db, session_id)) == 6


async def test_tui_resume_of_a_local_session_serves_the_model_again(monkeypatch, gguf, db_path):
    from lhe_tui.ui.app import resume_live_run

    stand_in(monkeypatch, FAKE_SERVER)
    session_id = await interrupted_local_session(db_path, gguf)
    live = resume_live_run(db_path, session_id)
    assert live.server is not None and live.resumed
    app = LheApp(db_path, live=live)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.screen.model.status == "finished")
    assert pid_gone(live.server.pid)
    assert len(load_turns(open_database(db_path), session_id)) == 6


def test_headless_probe_on_the_local_provider_serves_the_model(monkeypatch, gguf, db_path, capsys):
    from lhe_tui.cli.main import main

    stand_in(monkeypatch, FAKE_SERVER)
    assert main(["probe", "--headless", "--provider", "local", "--model-path", str(gguf), "--target-turn", "4",
                 "--rates", "0,1", "--samples", "2", "--db", str(db_path)]) == 0
    err = capsys.readouterr().err
    assert "ready at http://127.0.0.1:" in err
    (session,) = list_sessions(open_database(db_path))
    assert (session["kind"], session["provider"], session["model"]) == ("probe", "local", "stand-in")
    assert len(load_turns(open_database(db_path), session["id"])) == 4   # one turn (T) per sample, 2 rates x 2


def test_make_provider_never_sends_local_to_the_openai_api(monkeypatch):
    from lhe_tui.common.errors import ConfigError
    from lhe_tui.providers.factory import make_provider

    monkeypatch.setenv("OPENAI_BASE_URL", "https://api.openai.com/v1")
    with pytest.raises(ConfigError, match="--provider local has no server"):
        make_provider(RunConfig(provider="local"))
