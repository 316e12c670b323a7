"""`lhe-tui serve`: a real server on a free loopback port, driven by a real WebSocket client (aiohttp's) as
textual-serve's browser client drives it (resize, ping, stdin): its page, its token, its Origin check, its
cap on app processes, and what a served app may run against (issue 22: the key-leak sequence reaches no
listener). Nothing leaves the loopback interface."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("textual_serve")
aiohttp = pytest.importorskip("aiohttp")

from lhe_tui.cli.main import main  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "LHE_TUI_SERVE_TOKEN",
             "LHE_TUI_SERVED_BASE_URLS", "TEXTUAL_DRIVER", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
    ENV.pop(name, None)
START_S = 60.0
SCREEN_S = 60.0
GONE_S = 30.0
"""Wide bounds that only tell a hang from an answer."""
TOKEN = "test-token-0123456789-abcdef"
FAKE_KEY = "sk-test-not-a-real-key-4f9c2a"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc): the app processes serve started."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def wait_for(condition, what: str, timeout: float = GONE_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.1)


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


class Served:
    def __init__(self, process: subprocess.Popen, port: int, page: str, headers: dict[str, str], token: str) -> None:
        self.process = process
        self.port = port
        self.page = page
        self.headers = headers
        self.token = token
        self.base = f"http://127.0.0.1:{port}"
        self.ws = f"ws://127.0.0.1:{port}/ws"

    def apps(self) -> list[int]:
        return children_of(self.process.pid)


@contextlib.contextmanager
def serving(db: Path, *flags: str, env: dict[str, str] | None = None, token: str | None = TOKEN,
            log: Path | None = None) -> Iterator[Served]:
    """A real `lhe-tui serve` on a free loopback port, its log (stdout, one record a line) in `log`."""
    port = free_port()
    argv = [sys.executable, "-m", "lhe_tui", "serve", "--db", str(db), "--port", str(port), *flags]
    out = open(log, "wb") if log is not None else subprocess.DEVNULL
    process = subprocess.Popen(argv + (["--token", token] if token else []), stdout=out,
                               stderr=subprocess.PIPE, cwd=ROOT, env={**(env or ENV), "COLUMNS": "1000"},
                               start_new_session=True)   # its app processes go with it
    try:
        if token is None:          # the printed URL carries the token
            line = process.stderr.readline().decode("utf-8")
            match = re.search(r"(http://\S+/\?token=(\S+))", line)
            assert match, f"serve printed no URL with a token: {line!r}"
            token = match.group(2)
        url = f"http://127.0.0.1:{port}/?token={token}"
        deadline = time.monotonic() + START_S
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2.0) as response:
                    page = response.read().decode("utf-8")
                    served = Served(process, port, page, dict(response.headers), token)
                break
            except (urllib.error.URLError, OSError):
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"lhe-tui serve did not start within {START_S:.0f} s")
                time.sleep(0.2)
        yield served
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
        process.stderr.close()
        if log is not None:
            out.close()


@pytest.fixture
def server(store):
    with serving(store[0]) as served:
        yield served


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10.0) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


# ---- the page -------------------------------------------------------------------------------------------
def test_page_points_at_the_websocket_with_its_token(server):
    assert f'data-session-websocket-url="ws://127.0.0.1:{server.port}/ws/{TOKEN}"' in server.page
    assert "lhe-tui" in server.page
    assert server.headers["Referrer-Policy"] == "no-referrer"      # the page's URL holds the token
    assert server.headers["Cache-Control"] == "no-store"


def test_page_fetches_nothing_from_a_third_party(server):
    """Every address the page loads is on the served origin (textual-serve's template loads Google Fonts),
    each one is there (the fonts too), and the stylesheets it loads load nothing further."""
    page = server.page
    assert "googleapis" not in page and "gstatic" not in page
    loaded = re.findall(r'(?:src|href)\s*=\s*"([^"]+)"', page) + re.findall(r'url\(\s*"?([^")]+)"?\s*\)', page)
    assert any(url.endswith(".ttf") for url in loaded), loaded
    assert any(url.endswith("textual.js") for url in loaded), loaded
    for url in loaded:
        assert url.startswith(f"{server.base}/static/"), url
        with urllib.request.urlopen(url, timeout=10.0) as response:
            body = response.read()
        assert response.status == 200 and body, url
        if url.endswith(".css"):
            text = body.decode("utf-8")
            assert "@import" not in text and not re.search(r"url\(\s*['\"]?(https?:)?//", text), url
    assert "@font-face" in page and "Roboto Mono" in page


def test_page_needs_the_token(server):
    assert http_status(f"{server.base}/") == 403
    assert http_status(f"{server.base}/?token=") == 403
    assert http_status(f"{server.base}/?token={TOKEN[:-1]}") == 403
    assert http_status(f"{server.base}/?token={TOKEN}x") == 403
    assert http_status(f"{server.base}/?token={TOKEN}") == 200


def test_printed_url_has_a_random_token_that_opens_the_page(store):
    with serving(store[0], token=None) as served:
        assert len(served.token) >= 32 and served.token != TOKEN
        assert http_status(f"{served.base}/") == 403
        assert f"/ws/{served.token}" in served.page


def test_log_leaves_the_token_out(store, tmp_path):
    log = tmp_path / "serve.log"
    with serving(store[0], log=log) as served:
        assert asyncio.run(handshake_status(f"{served.ws}/{TOKEN}", "http://evil.example")) == 403
        assert http_status(f"{served.base}/?token={TOKEN}") == 200
    text = log.read_text(encoding="utf-8")
    assert "GET /?token=<token>" in text and "/ws/<token>" in text      # the requests are logged...
    assert TOKEN not in text                                            # ...without the token


# ---- the socket -----------------------------------------------------------------------------------------
async def handshake_status(url: str, origin: str | None) -> int:
    """101 when the socket opens (then closed at once), else the handshake's HTTP status."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=SCREEN_S)) as session:
        try:
            async with session.ws_connect(url, origin=origin) as ws:
                await ws.close()
                return 101
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status


def test_socket_refused_without_token_or_from_a_foreign_origin(server):
    own = server.base
    cases = {
        "no token": (f"{server.ws}?width=80&height=24", own),
        "wrong token": (f"{server.ws}/{TOKEN[:-1]}x", own),
        "wrong token in the query": (f"{server.ws}?token=nope", None),
        "empty token": (f"{server.ws}?token=", None),
        "foreign origin": (f"{server.ws}/{TOKEN}", "http://evil.example"),
        "another port of this host": (f"{server.ws}/{TOKEN}", f"http://127.0.0.1:{server.port + 1}"),
        "https twin": (f"{server.ws}/{TOKEN}", f"https://127.0.0.1:{server.port}"),
        "null origin": (f"{server.ws}/{TOKEN}", "null"),
    }
    statuses = {name: asyncio.run(handshake_status(url, origin)) for name, (url, origin) in cases.items()}
    assert statuses == {name: 403 for name in cases}
    assert server.apps() == []                       # no process started for any of them


async def drive(url: str, steps: list[tuple[bytes, str | None]], origin: str | None = None, *,
                until=lambda: True, hold_s: float = 0.0) -> tuple[int, bytes]:
    """Connect as textual-serve's browser client does (resize, ping), then for each step wait until the app's
    output holds its text and type its keys (stdin); then keep the socket (and so the app) open until
    `until()` or `hold_s` seconds. Returns how many steps were seen, and the output."""
    received = bytearray()
    seen = 0
    timeout = aiohttp.ClientTimeout(total=SCREEN_S * 2)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.ws_connect(url, origin=origin) as ws:
            await ws.send_json(["resize", {"width": 120, "height": 40}])
            await ws.send_json(["ping", "1"])
            deadline = time.monotonic() + SCREEN_S
            pong = False
            start = 0            # a step's text must arrive after the previous step's keys
            while time.monotonic() < deadline:
                if seen == len(steps) and until():
                    break
                try:
                    message = await ws.receive(timeout=min(0.2, max(0.01, deadline - time.monotonic())))
                except asyncio.TimeoutError:
                    continue
                if message.type == aiohttp.WSMsgType.BINARY:
                    received += message.data
                elif message.type == aiohttp.WSMsgType.TEXT:
                    pong = pong or message.data.startswith('["pong"')
                else:
                    break                                           # closed: the app exited
                if seen == len(steps):
                    continue
                text, keys = steps[seen]
                if pong and text in received[start:]:
                    seen += 1
                    start = len(received)
                    if seen == len(steps):
                        deadline = time.monotonic() + hold_s
                    if keys:
                        await asyncio.sleep(0.3)     # pacing only: the screen settles before the next keys
                        # One key per message, as a browser's terminal sends typing (a burst of keys in one
                        # message does not reach the form's fields as typed).
                        for key in re.findall(r"\x1b\[.|.", keys, re.S):
                            await ws.send_json(["stdin", key])
                            await asyncio.sleep(0.02)
    return seen, bytes(received)


def assert_steps(seen: int, steps: list, data: bytes) -> None:
    assert seen == len(steps), (f"step {seen + 1} ({steps[seen][0]!r}) did not arrive within {SCREEN_S:.0f} s; "
                                f"got {len(data)} bytes: {data[-600:]!r}")


@pytest.mark.parametrize("how", ["token in the path, own origin", "token in the query, no origin"])
def test_websocket_drives_the_served_app(store, server, how):
    """The right token with the page's own Origin opens the app; so does the right token with no Origin at
    all (no browser omits it: a program with the token is the user)."""
    _, session_id = store
    if how.startswith("token in the path"):
        url, origin = f"{server.ws}/{TOKEN}?width=120&height=40", server.base
    else:
        url, origin = f"{server.ws}?token={TOKEN}&width=120&height=40", None
    # The sessions list shows each session by the end of its id (115417-5b3c), as docs/tui.md says; Enter
    # opens the highlighted one in the replay view, whose status bar says REPLAY.
    steps = [(session_id[-11:].encode(), "\r"), (b"REPLAY", None)]
    seen, data = asyncio.run(drive(url, steps, origin))
    assert_steps(seen, steps, data)


def test_localhost_origin_is_the_same_server(server):
    assert asyncio.run(handshake_status(f"{server.ws}/{TOKEN}", f"http://localhost:{server.port}")) == 101


async def open_apps(url: str, count: int, origin: str, marker: bytes) -> list:
    """`count` sockets, each held open until its app has drawn its first screen (which holds `marker`)."""
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=SCREEN_S * 4))
    sockets = []
    for _ in range(count):
        ws = await session.ws_connect(url, origin=origin)
        await ws.send_json(["resize", {"width": 100, "height": 30}])
        drawn = bytearray()
        while marker not in drawn:
            message = await ws.receive(timeout=SCREEN_S)
            assert message.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT), message
            if message.type == aiohttp.WSMsgType.BINARY:
                drawn += message.data
        sockets.append(ws)
    return [session, sockets]


def test_process_cap_holds_and_processes_end_with_their_sockets(store):
    marker = store[1][-11:].encode()
    with serving(store[0], "--max-apps", "2") as served:
        url = f"{served.ws}/{TOKEN}?width=100&height=30"

        async def scenario() -> None:
            other = None
            session, sockets = await open_apps(url, 2, served.base, marker)
            try:
                assert len(served.apps()) == 2
                # One more is refused before any process starts, however often it asks.
                for _ in range(3):
                    assert await handshake_status(url, served.base) == 503
                assert len(served.apps()) == 2
                await sockets.pop().close()
                await asyncio.to_thread(wait_for, lambda: len(served.apps()) == 1, "a closed socket's app to end")
                # Its place is free again.
                other, more = await open_apps(url, 1, served.base, marker)
                sockets.extend(more)
                assert len(served.apps()) == 2
                for ws in sockets:
                    await ws.close()
                await asyncio.to_thread(wait_for, lambda: served.apps() == [], "every app to end")
            finally:
                await session.close()
                if other is not None:
                    await other.close()

        asyncio.run(scenario())
        # A socket dropped without a close frame (the browser tab killed) ends its app too.
        raw = socket.create_connection(("127.0.0.1", served.port))
        raw.sendall((f"GET /ws/{TOKEN} HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        assert raw.recv(12) == b"HTTP/1.1 101"
        wait_for(lambda: len(served.apps()) == 1, "the raw socket's app to start")
        raw.close()
        wait_for(lambda: served.apps() == [], "a dropped socket's app to end")


def pid_alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def test_an_app_that_quits_closes_its_socket(store, server):
    """q in the served app ends it; its socket closes (drive returns on the close) and no process is left."""
    steps = [(store[1][-11:].encode(), "q"), (b"\x00never shown", None)]
    seen, data = asyncio.run(drive(f"{server.ws}/{TOKEN}", steps, server.base))
    assert seen == 1, data[-600:]
    wait_for(lambda: server.apps() == [], "the app to end")


def test_stopping_serve_ends_its_apps(store):
    """SIGTERM to serve alone (not its process group, as `kill PID` does): it closes its sockets at once (1001,
    going away: not whenever aiohttp's grace period ends) and its apps end with it."""
    marker = store[1][-11:].encode()
    with serving(store[0]) as served:
        async def scenario() -> list[int]:
            session, sockets = await open_apps(f"{served.ws}/{TOKEN}", 2, served.base, marker)
            try:
                apps = served.apps()
                assert len(apps) == 2
                served.process.send_signal(signal.SIGTERM)
                for ws in sockets:            # the server closes them, saying it is going away
                    message = await ws.receive(timeout=GONE_S)
                    while message.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                        message = await ws.receive(timeout=GONE_S)
                    assert (message.type, message.data) == (aiohttp.WSMsgType.CLOSE, 1001), message
                return apps
            finally:
                await session.close()

        apps = asyncio.run(scenario())
        served.process.wait(timeout=GONE_S)
        wait_for(lambda: not any(pid_alive(pid) for pid in apps), "the apps to end with serve")


# ---- the key-leak sequence ------------------------------------------------------------------------------
class Listener:
    """A real TCP listener on loopback that records every connection and every byte sent to it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.data = bytearray()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            self.connections += 1
            conn.settimeout(0.5)
            with conn:
                try:
                    while chunk := conn.recv(65536):
                        self.data += chunk
                        if b"\r\n\r\n" in self.data:
                            break
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.mark.parametrize("flags", [[], ["--base-url", "LISTENER"], ["--allow-any-base-url"]],
                         ids=["default", "base-url-allowed", "allow-any"])
def test_key_leak_sequence_reaches_no_listener(store, flags, tmp_path):
    """A page with the token types a new run into the served app: provider openai, a model, and a base URL of
    a listener it controls, while the server's environment holds OPENAI_API_KEY. By default the run is
    refused in the form and the listener receives nothing; started with --base-url LISTENER or
    --allow-any-base-url, the same keys reach it with the key as a Bearer header (so the sequence itself
    works, and the flags are what let it through)."""
    db, session_id = store
    db = Path(shutil.copy(db, tmp_path / "lhe.db"))   # a run started here is stored in a copy, not the shared store
    listener = Listener()
    target = f"http://127.0.0.1:{listener.port}/v1"
    try:
        env = {**ENV, "OPENAI_API_KEY": FAKE_KEY}
        with serving(db, *[target if f == "LISTENER" else f for f in flags], env=env) as served:
            # sessions list -> n: the new-run form (focus in model) -> shift+tab: provider -> Enter opens its
            # list -> down, Enter: openai -> tab: model -> tab: base URL -> Enter starts the run.
            steps = [(session_id[-11:].encode(), "n"),
                     (b"New run", "\x1b[Z\r"),
                     (b"anthropic", "\x1b[B\r"),
                     (b"openai", "\tgpt-4.1-mini"),
                     (b"gpt-4.1-mini", "\t" + target),
                     (f":{listener.port}/v1".encode(), "\r")]     # typed in full: Enter starts the run
            if not flags:    # the form says why, on its first line: nothing started
                steps.append((f"{listener.port}/v1 refused".encode(), None))
            key_sent = f"Bearer {FAKE_KEY}".encode()
            url = f"{served.ws}/{TOKEN}?width=120&height=40"
            seen, data = asyncio.run(drive(url, steps, served.base, until=lambda: key_sent in listener.data,
                                           hold_s=3.0 if not flags else SCREEN_S))
            assert_steps(seen, steps, data)
            if not flags:
                assert listener.connections == 0 and listener.data == b""
            else:
                assert key_sent in listener.data, (f"the run never reached the listener; the screen said: "
                                                   f"{data[-800:]!r}")
    finally:
        listener.close()


# ---- flags and bad input --------------------------------------------------------------------------------
def test_flags_reach_the_server_and_non_loopback_host_warns(capsys, monkeypatch, store):
    from lhe_tui.cli import serve_guard, web
    from lhe_tui.providers.served import SERVED_BASE_URLS_ENV

    served = []
    monkeypatch.setattr(serve_guard.GuardedServer, "serve", lambda self: served.append(self))
    db, _ = store
    port = free_port()
    assert main(["serve", "--db", str(db), "--host", "0.0.0.0", "--port", str(port)]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "warning" in err and "0.0.0.0" in err
    server = served.pop()
    assert server.command == web.serve_command(db, base_urls=[]) and "-m lhe_tui --db" in server.command
    assert server.command.startswith("exec env ") and f"'{SERVED_BASE_URLS_ENV}=[]'" in server.command
    assert server.host == "0.0.0.0" and server.port == port and server.max_apps == 4
    assert len(server.token) >= 32 and server.url.endswith(f"/?token={server.token}")
    assert main(["serve", "--db", str(db), "--port", str(port)]) == 0      # loopback: no warning
    assert capsys.readouterr().err == ""
    assert served.pop().token != server.token                               # a new one each start
    assert main(["serve", "--db", str(db), "--port", str(port), "--token", TOKEN, "--max-apps", "7",
                 "--base-url", "http://127.0.0.1:9/v1", "--base-url", "https://example.test/v1"]) == 0
    server = served.pop()
    assert server.token == TOKEN and server.max_apps == 7
    assert f"""'{SERVED_BASE_URLS_ENV}=["http://127.0.0.1:9/v1", "https://example.test/v1"]'""" in server.command
    monkeypatch.setenv("LHE_TUI_SERVE_TOKEN", TOKEN + "-env")
    assert main(["serve", "--db", str(db), "--port", str(port), "--allow-any-base-url"]) == 0
    server = served.pop()
    assert server.token == TOKEN + "-env" and f"'{SERVED_BASE_URLS_ENV}=*'" in server.command
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--allow-any-base-url" in err


@pytest.mark.parametrize("flags, words", [
    (["--token", "short"], "--token must be at least 16"),
    (["--token", "spaces are not url safe!"], "only the URL-safe characters"),
    (["--token", ""], "--token must be at least 16"),
    (["--max-apps", "0"], "--max-apps must be within 1..256"),
    (["--max-apps", "100000"], "--max-apps must be within"),
    (["--base-url", "ftp://x/v1"], "--base-url must be an http"),
    (["--base-url", "not a url"], "--base-url must be an http"),
])
def test_bad_serve_flags_are_one_line(capsys, store, flags, words):
    db, _ = store
    assert main(["serve", "--db", str(db), "--port", str(free_port()), *flags]) != 0
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


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
    assert "pip install -c constraints.txt -e '.[serve]'" in err and err.count("\n") == 1
