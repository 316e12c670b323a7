"""How the local llama.cpp server ended: its exit read without reaping it, the signal named, its log's tail."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import time
from pathlib import Path

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


def log_tail(path: Path, lines: int = LOG_TAIL_LINES, width: int = 160) -> str:
    """The last non-blank lines of a log, squeezed onto one line."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    kept = [" ".join(line.split()) for line in text.splitlines() if line.strip()][-lines:]
    return " | ".join(line if len(line) <= width else line[: width - 1] + "…" for line in kept)


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


def unreaped_exit_code(process: subprocess.Popen[bytes], *, block: bool) -> int | None:
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


def wait_unreaped(process: subprocess.Popen[bytes], timeout: float | None) -> bool:
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
