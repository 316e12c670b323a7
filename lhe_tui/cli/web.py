"""The store in a browser: `lhe-tui datasette` (the tables and canned queries, read-only) and `lhe-tui serve` (the
TUI itself through textual-serve). Both are optional extras; a missing one is one line naming it.

Neither imports Textual: datasette runs as its own process on the store, and textual-serve starts one
`python -m lhe_tui --db PATH` per browser session, behind a token and an Origin check (serve_guard), told in
its environment which base URLs it may run against (lhe_tui.providers.served).
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import os
import shlex
import socket
import sys
from pathlib import Path
from typing import Any

from lhe_tui.common.errors import ConfigError, LheError, install_hint

METADATA_FILE = Path(__file__).resolve().parent.parent / "store" / "datasette-metadata.json"
"""Datasette metadata for an lhe-tui store: table and column descriptions, canned queries. Its one database
entry is keyed `lhe` (the default store, sessions/lhe.db); `datasette_metadata` re-keys it for another file."""

METADATA_KEY = "lhe"
DATASETTE_PORT = 8001
SERVE_PORT = 8000
LOOPBACK = "127.0.0.1"
MAX_APPS = 4
"""`serve --max-apps`: app processes (browser tabs) at once; each holds about 85 MB on the sessions list."""
MAX_APPS_LIMIT = 256
TOKEN_ENV = "LHE_TUI_SERVE_TOKEN"
"""`serve`'s token when --token is not given (an environment, unlike a command line, is not shown to other
users by `ps`)."""


def require_extra(module: str, extra: str, what: str) -> None:
    """One line naming the extra when an optional package is not installed."""
    if importlib.util.find_spec(module) is None:
        raise LheError(f"{what} needs the optional '{extra}' extra: {install_hint(extra)}")


def datasette_metadata(db_path: str | Path) -> dict[str, Any]:
    """The shipped metadata with its database entry keyed as datasette names `db_path` (the file's stem)."""
    metadata = json.loads(METADATA_FILE.read_text(encoding="utf-8"))
    databases = metadata.get("databases", {})
    entry = databases.pop(METADATA_KEY)
    databases[Path(db_path).stem] = entry
    return metadata


def has_wal_content(db_path: Path) -> bool:
    """A write-ahead log with frames in it: a run is writing, or one was cut off before a checkpoint. Turns in
    it are part of the store, but a file opened immutable (datasette -i) is read without its log."""
    wal = Path(f"{db_path}-wal")
    try:
        return wal.stat().st_size > 0
    except OSError:
        return False


def datasette_argv(db_path: Path, metadata_path: Path, host: str, port: int) -> tuple[list[str], bool]:
    """The arguments of `datasette` (from `serve` on), and whether the store is opened immutable. Datasette never writes either
    way: an immutable file is opened `?immutable=1`, a mutable one `?mode=ro` (datasette.database). Immutable
    is the default; a store with a non-empty WAL is opened read-only instead, so its newest turns show (and a
    running session's turns keep arriving)."""
    immutable = not has_wal_content(db_path)
    argv = ["serve", *(["-i"] if immutable else []), str(db_path),
            "--metadata", str(metadata_path), "--host", host, "--port", str(port)]
    return argv, immutable


def check_address(host: str, port: int) -> None:
    """Bad input before any server starts: an unknown host, a port out of range or already in use: one line."""
    if not 0 < port < 65536:
        raise ConfigError(f"--port must be within 1..65535, got {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ConfigError(f"cannot use host {host!r}: {getattr(exc, 'strerror', None) or exc}") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(address)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def is_loopback(host: str) -> bool:
    """Whether every address `host` names is a loopback one (127.0.0.0/8, ::1); 0.0.0.0 and :: are not."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except (socket.gaierror, UnicodeError):
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def warn_if_public(host: str, what: str, login: str = "with no login") -> None:
    if not is_loopback(host):
        print(f"lhe-tui: warning: {what} on {host} is reachable from other machines, {login} "
              f"(the default --host {LOOPBACK} keeps it on this one)", file=sys.stderr)


def _store_path(db: Path) -> Path:
    if not Path(db).is_file():
        raise LheError(f"no session store at {db} (run a session first, or pass --db)")
    return Path(db).resolve()


def cmd_datasette(args: Any) -> int:
    """`lhe-tui datasette`: datasette on the store, read-only, with lhe-tui's metadata; `--print-metadata`
    prints that metadata (keyed for --db) for running datasette by hand."""
    if args.print_metadata:
        print(json.dumps(datasette_metadata(args.db), indent=2))
        return 0
    require_extra("datasette", "datasette", "lhe-tui datasette")
    db_path = _store_path(args.db)
    check_address(args.host, args.port)
    warn_if_public(args.host, "datasette")
    from datasette.cli import cli

    metadata_path = metadata_file_for(db_path)
    metadata_path.write_text(json.dumps(datasette_metadata(db_path), indent=1), encoding="utf-8")
    argv, immutable = datasette_argv(db_path, metadata_path, args.host, args.port)
    if not immutable:
        print(f"lhe-tui: {db_path.name} has a write-ahead log (a run is writing, or one was cut off): opened "
              "read-only instead of immutable, so its newest turns show", file=sys.stderr)
    print(f"lhe-tui: datasette on http://{args.host}:{args.port}/{db_path.stem} (Ctrl+C stops it)", file=sys.stderr)
    # In this process (not a child left behind when this one is killed): uvicorn handles SIGINT/SIGTERM.
    try:
        cli.main(args=argv, prog_name="datasette", standalone_mode=False)
    except KeyboardInterrupt:
        pass
    except Exception as exc:      # click's usage errors and the like: one line
        raise LheError(f"datasette failed: {exc}") from None
    finally:
        metadata_path.unlink(missing_ok=True)
    return 0


def metadata_file_for(db_path: Path) -> Path:
    """Where the metadata for `db_path` is written for datasette to read at its start: one file per store in the
    user's cache folder ($XDG_CACHE_HOME or ~/.cache, then lhe-tui/), overwritten each time, since a SIGTERM
    ends uvicorn by re-raising it, past any cleanup; a fresh private temporary folder when that is not writable."""
    import hashlib
    import tempfile

    name = f"datasette-{db_path.stem}-{hashlib.sha1(str(db_path).encode('utf-8')).hexdigest()[:12]}.json"
    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lhe-tui"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if os.access(folder, os.W_OK):
            return folder / name
    except OSError:
        pass
    return Path(tempfile.mkdtemp(prefix="lhe-tui-datasette-")) / name


def serve_command(db: Path, theme: str | None = None, base_urls: list[str] | None = None) -> str:
    """The shell command textual-serve runs for each browser session: this interpreter, the sessions list,
    with $LHE_TUI_SERVED_BASE_URLS saying the app is served and which base URLs it may run against (a JSON
    list, or `*` for any: `base_urls` None). `exec`: the process textual-serve ends is the app itself."""
    from lhe_tui.providers.served import ANY_BASE_URL, SERVED_BASE_URLS_ENV

    allowed = ANY_BASE_URL if base_urls is None else json.dumps(base_urls)
    argv = ["exec", "env", f"{SERVED_BASE_URLS_ENV}={allowed}",
            sys.executable, "-m", "lhe_tui", "--db", str(Path(db).resolve())]
    if theme:
        argv += ["--theme", theme]
    return shlex.join(argv)


def serve_settings(args: Any) -> tuple[str, list[str] | None]:
    """`serve`'s token (--token, $LHE_TUI_SERVE_TOKEN, else a new one) and the base URLs its apps may use
    (None: any); bad values are one line."""
    from lhe_tui.cli.serve_guard import check_token, new_token
    from lhe_tui.providers.served import url_key

    if not 0 < args.max_apps <= MAX_APPS_LIMIT:
        raise ConfigError(f"--max-apps must be within 1..{MAX_APPS_LIMIT}, got {args.max_apps}")
    given = args.token if args.token is not None else os.environ.get(TOKEN_ENV)
    token = check_token(given) if given is not None else new_token()
    for url in args.base_urls:
        if url_key(url) is None:
            raise ConfigError(f"--base-url must be an http:// or https:// URL with a host, got {url!r}")
    if args.allow_any_base_url:
        return token, None
    return token, list(args.base_urls)


def cmd_serve(args: Any) -> int:
    """`lhe-tui serve`: the TUI in a browser through textual-serve, one app process per browser tab, behind
    the token it prints (lhe_tui.cli.serve_guard)."""
    require_extra("textual_serve", "serve", "lhe-tui serve")
    token, base_urls = serve_settings(args)
    check_address(args.host, args.port)
    warn_if_public(args.host, "the served TUI", "to anyone with its URL, over plain http unless a proxy adds TLS")
    if base_urls is None:
        print("lhe-tui: warning: --allow-any-base-url: a served app may send the API keys in this environment to "
              "any address typed into it", file=sys.stderr)
    from lhe_tui.cli.serve_guard import GuardedServer

    server = GuardedServer(serve_command(args.db, getattr(args, "theme", None), base_urls), token=token,
                           max_apps=args.max_apps, host=args.host, port=args.port, public_url=args.public_url)
    try:
        server.serve()
    except OSError as exc:               # lost the port between the check and the bind
        raise LheError(f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc}") from None
    return 0
