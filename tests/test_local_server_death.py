"""Our llama.cpp server dying mid-run (issue 12): the run stops at once, failed, with one line that names
the signal and the fix, keeps every stored turn, and resumes once the cause is gone.

A FakeLLMServer (real OpenAI wire format) stands in for llama.cpp's server, spawned as a child process
exactly as the real one is, and is killed with a real signal; test_local_model.py kills the real one.
"""

from __future__ import annotations

import signal
import sqlite3
import sys
import textwrap
import threading
import time

import pytest

from lhe_tui.cli.main import main
from lhe_tui.common.errors import ProviderError
from lhe_tui.providers import local_install, local_server
from lhe_tui.providers.base import GenerationSettings, RequestMeta
from lhe_tui.providers.local_provider import LocalChatProvider
from lhe_tui.providers.local_server import LocalModelServer, port_is_free
from lhe_tui.providers.local_server_death import exit_description

from .test_local_model import pid_gone

SLOW_FAKE_SERVER = """
    import time
    from lhe_tui.testing.fake_llm_server import FakeLLMServer, ScriptedReply
    print("stand-in model loaded", flush=True)
    FakeLLMServer(lambda request: ScriptedReply(text="<answer>0</answer>"), latency=0.02, port={port}).start()
    time.sleep(600)
"""


def stand_in(monkeypatch, script: str = SLOW_FAKE_SERVER) -> None:
    monkeypatch.setattr(local_install, "missing_server_modules", lambda: [])
    monkeypatch.setattr(LocalModelServer, "command",
                        lambda self: [sys.executable, "-c", textwrap.dedent(script).format(port=self.port)])


def stored_turns(db: str) -> int:
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT COUNT(*) FROM turns").fetchone()[0]
    except sqlite3.OperationalError:   # not created yet
        return 0


def kill_when(db: str, sig: int, at_turns: int, killed: dict) -> threading.Thread:
    """Kill the live local server with `sig` once `at_turns` turns are stored; note when and whom."""
    def run() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            servers = [s for s in local_server._live if s.process is not None]
            if servers and stored_turns(db) >= at_turns:
                killed["pid"], killed["port"] = servers[0].pid, servers[0].port
                killed["at"] = time.monotonic()
                servers[0].process.send_signal(sig)
                return
            time.sleep(0.02)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def gguf(tmp_path):
    path = tmp_path / "stand-in.gguf"
    path.write_bytes(b"GGUF")
    return path


def test_sigill_mid_run_fails_at_once_with_the_fix_and_resumes(monkeypatch, capsys, tmp_path, gguf):
    stand_in(monkeypatch)
    db = str(tmp_path / "lhe.db")
    killed: dict = {}
    killer = kill_when(db, signal.SIGILL, 5, killed)
    code = main(["run", "--headless", "--provider", "local", "--model-path", str(gguf), "--samples", "2",
                 "--turns", "40", "--seed", "3", "--db", db])
    took = time.monotonic() - killed["at"]
    killer.join()
    out, err = capsys.readouterr()
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("lhe-tui: error:")]
    assert len(errors) == 1, err
    line = errors[0]
    assert line.startswith("lhe-tui: error: the local model server died with SIGILL (illegal instruction): "
                           "llama-cpp-python was built for instructions this CPU cannot run; reinstall with "
                           'CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --force-reinstall --no-cache-dir '
                           "llama-cpp-python"), line
    assert "stand-in model loaded" in line          # the log's tail, and where the whole log is
    assert "retry" not in err                        # no retries against a dead server
    assert took < 15, took   # from the kill to the exit, summary included: not after retries (30 s and more)
    assert pid_gone(killed["pid"]) and port_is_free(killed["port"])
    with sqlite3.connect(db) as conn:
        (sid, status, message), = conn.execute("SELECT id, status, message FROM sessions")
        kept = conn.execute("SELECT COUNT(*) FROM turns").fetchone()[0]
        sample_status = {row[0] for row in conn.execute("SELECT status FROM samples")}
    assert status == "failed" and message == line.removeprefix("lhe-tui: error: ")
    assert sample_status == {"failed"}
    assert 5 <= kept < 80

    # Once fixed (here: the stand-in no longer dies), the same session resumes to the end.
    code = main(["resume", sid, "--headless", "--db", db])
    assert code == 0, capsys.readouterr().err
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT status FROM sessions").fetchone()[0] == "finished"
        assert conn.execute("SELECT COUNT(*) FROM turns").fetchone()[0] == 80


def test_any_signal_is_named(monkeypatch, capsys, tmp_path, gguf):
    stand_in(monkeypatch)
    db = str(tmp_path / "lhe.db")
    killed: dict = {}
    killer = kill_when(db, signal.SIGKILL, 2, killed)
    code = main(["run", "--headless", "--provider", "local", "--model-path", str(gguf), "--turns", "400",
                 "--db", db])
    took = time.monotonic() - killed["at"]
    killer.join()
    err = capsys.readouterr().err
    assert code == 1 and took < 15   # not after retries (30 s and more)
    assert "lhe-tui: error: the local model server died with SIGKILL (killed): something killed it" in err


@pytest.mark.parametrize(("code", "text"), [
    (-signal.SIGILL, "died with SIGILL (illegal instruction): llama-cpp-python was built for instructions"),
    (-signal.SIGSEGV, "died with SIGSEGV (segmentation fault)"),
    (-signal.SIGUSR1, "died with SIGUSR1 (user defined signal 1)"),
    (3, "exited with code 3"),
])
def test_exit_descriptions(code, text):
    assert exit_description(code).startswith(text)


async def test_refused_connection_to_our_gone_server_is_not_retried():
    """A local server that is gone: the turn fails at once (not transient), and says why."""
    port = local_server.free_port()
    provider = LocalChatProvider("m", GenerationSettings(mode="direct", timeout=60.0),
                                 base_url=f"http://127.0.0.1:{port}/v1")
    started = time.monotonic()
    with pytest.raises(ProviderError) as info:
        await provider.complete([{"role": "user", "content": "x"}], RequestMeta(0, 1, 0))
    await provider.aclose()
    assert time.monotonic() - started < 30   # not the 60 s timeout
    assert not info.value.transient
    assert "connection refused" in str(info.value) and "is the server running?" in str(info.value)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_another_process_tells_the_signal_from_the_zombie():
    """The TUI's run process did not start the server, yet names the signal (the UI process reaps it later)."""
    import subprocess

    from lhe_tui.providers.local_server_death import ServerRef

    child = subprocess.Popen(["sleep", "30"])
    try:
        ref = ServerRef(child.pid)
        assert not ref.died()
        child.send_signal(signal.SIGILL)
        assert ref.died(wait=2.0)
        assert ref.death_message().startswith("the local model server died with SIGILL (illegal instruction)")
    finally:
        child.kill()
        child.wait()
    assert ref.died() and ref.death_message().startswith("the local model server died; ")   # reaped: no status
