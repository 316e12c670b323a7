"""`lhe-tui serve` with a lock on the door (issue 22): textual-serve's server, plus a token, an Origin check,
a cap on app processes and a page that fetches nothing from third parties.

textual-serve by itself checks nothing: any web page (or any local user) can open its WebSocket, which
starts an app process holding the user's API keys in its environment. Here, as Jupyter does it:

- the page (`/?token=T`) and the WebSocket it opens (`/ws/T`; `/ws?token=T` for other clients) need the
  token, compared in constant time; without it: 403, and no process starts; the access log writes
  `<token>` in its place;
- the WebSocket's Origin must be the served address (--public-url's, else http://HOST:PORT, and on a
  loopback host also http://localhost:PORT, http://127.0.0.1:PORT, http://[::1]:PORT): a foreign page's
  socket is refused even with the token. A handshake with no Origin at all is accepted with the token:
  browsers always send one, so it comes from a program (curl, a script), and one that has the token is
  the user;
- at most `max_apps` app processes at once (503 beyond, before any starts), and each ends when its socket
  closes (asked to quit, then SIGTERM, then SIGKILL); a socket closes when its app ends;
- the page loads textual-serve's own Roboto Mono from /static (not Google Fonts), asks the browser to send
  no Referer (its URL holds the token), not to cache it and not to show it in a frame.

The page is textual-serve's template (MIT) with those changes: serve_page/app_index.html. What a served
app may run against is the app's own check (lhe_tui.providers.served). No Textual here.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
import re
import secrets
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import WSCloseCode, web
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

from lhe_tui.common.errors import ConfigError

log = logging.getLogger("textual-serve")

PAGE_FOLDER = Path(__file__).resolve().parent / "serve_page"
TOKEN_BYTES = 32
"""A printed token: 32 random bytes, 43 URL-safe characters."""
MIN_TOKEN_CHARS = 16
TOKEN_CHARS = re.compile(r"[A-Za-z0-9._~-]+")
"""A token goes into a URL's path and query as it is: URL-safe characters only."""
TOKEN_ROUTE = "websocket_token"
QUIT_WAIT_S = 5.0
"""How long an app may take to quit after its socket closed before it is terminated (then killed)."""
TERM_WAIT_S = 5.0
HEARTBEAT_S = 15.0
"""Ping period of each socket (textual-serve's): a browser that vanished is seen within two of them."""
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
PAGE_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store", "X-Frame-Options": "DENY",
                "X-Content-Type-Options": "nosniff"}


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def check_token(token: str) -> str:
    """A token given with --token (or $LHE_TUI_SERVE_TOKEN): long enough and URL-safe, else one line."""
    if token and not TOKEN_CHARS.fullmatch(token):
        raise ConfigError("--token may hold only the URL-safe characters A-Z a-z 0-9 . _ ~ -")
    if len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(f"--token must be at least {MIN_TOKEN_CHARS} characters long, got {len(token)}")
    return token


def token_matches(given: str | None, token: str) -> bool:
    """Constant time in the token's content (hmac.compare_digest), for any string a request carries."""
    return hmac.compare_digest((given or "").encode("utf-8", "surrogatepass"), token.encode("utf-8"))


def origin_of(url: str) -> str | None:
    """scheme://host[:port] as a browser writes an Origin (lower case, the default port left out); None for
    anything else ("null", a bad port, no host)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in DEFAULT_PORTS or not host:
        return None
    scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" + (f":{port}" if port and port != DEFAULT_PORTS[scheme] else "")


def _is_loopback_address(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() == "localhost"


def allowed_origins(public_url: str, host: str, port: int) -> frozenset[str]:
    """The Origins a socket may come from: the served address, and on a loopback host its other names."""
    origins = {origin_of(public_url)}
    if _is_loopback_address(host):
        origins |= {origin_of(f"http://{name}:{port}") for name in ("localhost", "127.0.0.1", "[::1]")}
    return frozenset(origin for origin in origins if origin is not None)


class TokenRedactor(logging.Filter):
    """Writes `<token>` for the token in a log record (aiohttp's access log prints each request's URL)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.token in message:
            record.msg, record.args = message.replace(self.token, "<token>"), ()
        return True


class GuardedServer(Server):
    """textual-serve's Server behind a token and an Origin check, with at most `max_apps` app processes."""

    def __init__(self, command: str, *, token: str, max_apps: int, host: str, port: int,
                 public_url: str | None = None, title: str = "lhe-tui") -> None:
        super().__init__(command, host=host, port=port, title=title, public_url=public_url,
                         templates_path=PAGE_FOLDER)
        self.public_url = self.public_url.rstrip("/")
        self.token = token
        self.max_apps = max_apps
        self.origins = allowed_origins(self.public_url, host, port)
        self.apps = 0
        """App processes running now (a socket counts from its handshake until its process has ended)."""
        self.sockets: set[web.WebSocketResponse] = set()
        self.url = f"{self.public_url}/?token={token}"

    # ---- the app: routes, guard, page --------------------------------------------------------------
    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.router.add_get("/ws/{token}", self.handle_websocket, name=TOKEN_ROUTE)
        app.middlewares.append(self._guard_middleware())
        aiohttp_jinja2.get_env(app).globals["token"] = self.token
        return app

    def refusal(self, request: web.Request) -> web.HTTPException | None:
        """Why a request for the page or a socket is refused, or None. Other routes (/static, textual-serve's
        one-time download keys, unknown paths) pass."""
        route = request.match_info.route.name
        if route not in ("index", "websocket", TOKEN_ROUTE):
            return None
        given = request.match_info.get("token") if route == TOKEN_ROUTE else request.query.get("token")
        if not token_matches(given, self.token):
            return web.HTTPForbidden(text="lhe-tui serve: this address needs its token: open the URL `lhe-tui "
                                          "serve` printed (…/?token=…)\n")
        origin = request.headers.get("Origin")
        if route != "index" and origin is not None and origin_of(origin) not in self.origins:
            return web.HTTPForbidden(text="lhe-tui serve: a socket from another site is refused (its Origin "
                                          "is not the served address; behind a proxy, pass --public-url)\n")
        return None

    def _guard_middleware(self) -> Any:
        @web.middleware
        async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
            refused = self.refusal(request)
            if refused is not None:
                log.warning("refused %s from %s: %s", request.match_info.route.name, request.remote,
                            refused.text.strip() if refused.text else refused.reason)
                raise refused
            response = await handler(request)
            if request.match_info.route.name == "index":
                response.headers.update(PAGE_HEADERS)
            return response

        return guard

    def initialize_logging(self) -> None:
        """textual-serve's logging, with the token left out of the access log's request lines."""
        super().initialize_logging()
        logging.getLogger("aiohttp.access").addFilter(TokenRedactor(self.token))

    async def on_startup(self, app: web.Application) -> None:
        """Instead of textual-serve's banner (which prints the command): the URL with its token."""
        print(f"lhe-tui: serving the TUI at {self.url}\n"
              f"lhe-tui: the token in that URL is its login; at most {self.max_apps} browser tabs at once "
              "(Ctrl+C stops it)", file=sys.stderr, flush=True)

    async def on_shutdown(self, app: web.Application) -> None:
        """The server is stopping (Ctrl+C, SIGTERM): every socket closes, so every app ends (aiohttp would
        otherwise wait a minute for them, and then leave the processes)."""
        await asyncio.gather(*(ws.close(code=WSCloseCode.GOING_AWAY, message=b"server stopping")
                               for ws in list(self.sockets)), return_exceptions=True)

    # ---- the socket: one app process each, at most max_apps ------------------------------------------
    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        if self.apps >= self.max_apps:
            raise web.HTTPServiceUnavailable(text=f"lhe-tui serve: {self.max_apps} apps are open already "
                                                  "(serve --max-apps N allows more); close a tab first\n")
        self.apps += 1                      # no await since the check: a second socket sees this one
        try:
            return await self._serve_app(request)
        finally:
            self.apps -= 1

    async def _serve_app(self, request: web.Request) -> web.WebSocketResponse:
        websocket = web.WebSocketResponse(heartbeat=HEARTBEAT_S)
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)
        await websocket.prepare(request)
        self.sockets.add(websocket)
        app_service = AppService(self.command, write_bytes=websocket.send_bytes, write_str=websocket.send_str,
                                 close=websocket.close, download_manager=self.download_manager, debug=self.debug)
        try:
            await app_service.start(width, height)
            messages = asyncio.ensure_future(self._process_messages(websocket, app_service))
            running = app_service._task       # ends when the app's output does
            await asyncio.wait([messages, *([running] if running is not None else [])],
                               return_when=asyncio.FIRST_COMPLETED)
            messages.cancel()
            with contextlib.suppress(BaseException):
                await messages             # a malformed message ended it: logged below, as textual-serve does
            if messages.done() and not messages.cancelled() and messages.exception() is not None:
                log.warning("socket ended: %r", messages.exception())
        except asyncio.CancelledError:
            pass
        except Exception as error:         # noqa: BLE001 - logged, as textual-serve does; the app still ends
            log.exception(error)
        finally:
            await end_app(app_service)
            await websocket.close()
            self.sockets.discard(websocket)
        return websocket


async def end_app(app_service: AppService) -> None:
    """The app process ends, whatever it does: asked to quit, then terminated, then killed; waited for.
    Cancelled meanwhile (the server stopping): killed at once."""
    process = app_service._process
    if process is None:
        return
    try:
        with contextlib.suppress(asyncio.TimeoutError, Exception):
            await asyncio.wait_for(asyncio.shield(app_service.stop()), QUIT_WAIT_S)
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(process.wait(), TERM_WAIT_S)
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        await process.wait()
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        raise
