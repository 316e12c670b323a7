"""`lhe-tui serve`: a real textual-serve process on a free loopback port; its page, then its websocket driven as
textual-serve's browser client does (resize, stdin), until the served lhe-tui app's screen arrives."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("textual_serve")
aiohttp = pytest.importorskip("aiohttp")

from lhe_tui.cli.main import main  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
START_S = 60.0
SCREEN_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A finished sim session, so the served app opens on the sessions list (not the demo run)."""
    db = tmp_path_factory.mktemp("store") / "lhe.db"
    subprocess.run([sys.executable, "-m", "lhe_tui", "run", "--headless", "--provider", "sim", "--turns", "5",
                    "--samples", "2", "--sim-delay", "0", "--db", str(db)], check=True, capture_output=True,
                   timeout=120, cwd=ROOT, env=ENV)
    with sqlite3.connect(db) as conn:
        session_id = conn.execute("SELECT id FROM sessions").fetchone()[0]
    return db, session_id


@pytest.fixture
def server(store):
    db, _ = store
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "lhe_tui", "serve", "--db", str(db), "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT, env=ENV,
                               start_new_session=True)   # its app processes go with it
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_S
        while True:
            try:
                with urllib.request.urlopen(base + "/", timeout=2.0) as response:
                    page = response.read().decode("utf-8")
                break
            except (urllib.error.URLError, OSError):
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"lhe-tui serve did not start within {START_S:.0f} s")
                time.sleep(0.2)
        yield base, port, page
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)


def test_page_points_at_the_websocket(server):
    _, port, page = server
    assert f'data-session-websocket-url="ws://127.0.0.1:{port}/ws"' in page
    assert "lhe-tui" in page


async def drive(port: int, steps: list[tuple[bytes, str | None]]) -> tuple[int, bytes]:
    """Connect as textual-serve's browser client does (resize, ping), then for each step wait until the app's
    output holds its text and type its keys (stdin). Returns how many steps were seen, and the output."""
    received = bytearray()
    seen = 0
    timeout = aiohttp.ClientTimeout(total=SCREEN_S + 10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.ws_connect(f"ws://127.0.0.1:{port}/ws?width=120&height=40") as ws:
            await ws.send_json(["resize", {"width": 120, "height": 40}])
            await ws.send_json(["ping", "1"])
            deadline = time.monotonic() + SCREEN_S
            pong = False
            start = 0            # a step's text must arrive after the previous step's keys
            while time.monotonic() < deadline and seen < len(steps):
                try:
                    message = await ws.receive(timeout=max(0.1, deadline - time.monotonic()))
                except asyncio.TimeoutError:
                    break
                if message.type == aiohttp.WSMsgType.BINARY:
                    received += message.data
                elif message.type == aiohttp.WSMsgType.TEXT:
                    pong = pong or message.data.startswith('["pong"')
                else:
                    break                                           # closed: the app exited
                text, keys = steps[seen]
                if pong and text in received[start:]:
                    seen += 1
                    start = len(received)
                    if keys:
                        await ws.send_json(["stdin", keys])
    return seen, bytes(received)


def test_websocket_drives_the_served_app(store, server):
    _, session_id = store
    _, port, _ = server
    # The sessions list shows each session by the end of its id (115417-5b3c), as the README says; Enter
    # opens the highlighted one in the replay view, whose status bar says REPLAY.
    steps = [(session_id[-11:].encode(), "\r"), (b"REPLAY", None)]
    seen, data = asyncio.run(drive(port, steps))
    assert seen == len(steps), (f"step {seen + 1} ({steps[seen][0]!r}) did not arrive within {SCREEN_S:.0f} s; "
                                f"got {len(data)} bytes: {data[-600:]!r}")


def test_non_loopback_host_warns_on_one_line(capsys, monkeypatch, store):
    from lhe_tui.cli import web

    served = []

    class FakeServer:
        def __init__(self, command, **kwargs):
            served.append((command, kwargs))

        def serve(self):
            pass

    monkeypatch.setattr("textual_serve.server.Server", FakeServer)
    db, _ = store
    port = free_port()
    assert main(["serve", "--db", str(db), "--host", "0.0.0.0", "--port", str(port)]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "warning" in err and "0.0.0.0" in err
    command, kwargs = served[0]
    assert command == web.serve_command(db) and "-m lhe_tui --db" in command
    assert kwargs["host"] == "0.0.0.0" and kwargs["port"] == port
    assert main(["serve", "--db", str(db), "--port", str(port)]) == 0      # loopback: no warning
    assert capsys.readouterr().err == ""


def test_port_in_use_and_bad_host_are_one_line(capsys, store):
    db, _ = store
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--db", str(db), "--port", str(port)]) != 0
    err = capsys.readouterr().err
    assert "cannot listen on 127.0.0.1" in err and err.count("\n") == 1
    assert main(["serve", "--db", str(db), "--host", "no-such-host.invalid"]) != 0
    err = capsys.readouterr().err
    assert "cannot use host" in err and err.count("\n") == 1


def test_missing_extra_names_it(capsys, monkeypatch, store):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "textual_serve" else real(name, *a))
    db, _ = store
    assert main(["serve", "--db", str(db)]) != 0
    err = capsys.readouterr().err
    assert "lhe-tui[serve]" in err and err.count("\n") == 1
