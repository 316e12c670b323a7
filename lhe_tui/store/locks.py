"""File locks beside a store (`<store>-locks/`): who is writing a session, and one creator at a time.

- A session's writer holds an exclusive `flock` on `<store>-locks/<session id>.lock` for as long as it runs
  (a headless run, or the TUI's run process). The kernel drops the lock when that process ends, however it
  ends (SIGKILL included), so a session left `running` whose lock is free has no writer: it crashed. The
  file holds the writer's pid and host, for the messages.
- Creating a store and migrating it happen under an exclusive lock on `<store>-locks/store.lock`, so two
  processes opening a new store at once do not race through the WAL switch and the migrations.

`flock` locks belong to an open file, not to a process: a reader testing a lock from another process (the
TUI's sessions screen) never disturbs the writer's. Where `fcntl` is missing (Windows) nothing is locked and
liveness is unknown (None). No Textual here.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from lhe_tui.common.errors import StoreError


class SessionBusy(StoreError):
    """The session has a live writer: another process is running it."""


def locks_dir(db_path: str | Path) -> Path:
    path = Path(db_path)
    return path.with_name(path.name + "-locks")


def session_lock_path(db_path: str | Path, session_id: str) -> Path:
    return locks_dir(db_path) / f"{session_id}.lock"


def _mkdir(db_path: str | Path) -> Path:
    folder = locks_dir(db_path)
    try:
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create {folder} ({exc.strerror or exc}): the store's folder must be "
                         "writable to run sessions in it") from None
    return folder


class SessionLock:
    """The lock a session's writer holds for the run's lifetime."""

    def __init__(self, fd: int | None, path: Path | None) -> None:
        self._fd = fd
        self.path = path

    @classmethod
    def acquire(cls, db_path: str | Path, session_id: str, *, tries: int = 10) -> SessionLock:
        """Take the session's lock, or raise SessionBusy naming the live writer. A few quick retries: a
        reader testing the lock holds it for an instant."""
        if fcntl is None or str(db_path) == ":memory:":
            return cls(None, None)
        _mkdir(db_path)
        path = session_lock_path(db_path, session_id)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot create {path} ({exc.strerror or exc})") from None
        for attempt in range(tries):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    os.close(fd)
                    raise StoreError(f"cannot lock {path} ({exc.strerror or exc})") from None
                if attempt == tries - 1:
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise SessionBusy(f"session {session_id} is being run by another process{holder}; "
                                      "stop it there first (a session has one writer at a time)") from None
                time.sleep(0.02)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        return cls(fd, path)

    def release(self) -> None:
        """Drop the lock (the run ended and its last rows are committed)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __del__(self) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").split()
    except OSError:
        return ""
    if len(text) >= 2:
        return f" (pid {text[0]} on {text[1]})"
    return f" (pid {text[0]})" if text else ""


def holder_label(db_path: str | Path, session_id: str) -> str:
    """Who holds a session's writer lock, as its lock file says: `pid N on HOST`."""
    try:
        pid, host = session_lock_path(db_path, session_id).read_text().split()[:2]
        return f"pid {pid} on {host}"
    except (OSError, ValueError):
        return "a live lhe-tui"


def writer_alive(db_path: str | Path, session_id: str) -> bool | None:
    """True: a process holds the session's lock (it is being run); False: its lock file is there and free
    (the writer is gone); None: unknown (no lock file: a session stored before the locks, or no fcntl)."""
    if fcntl is None:
        return None
    try:
        fd = os.open(session_lock_path(db_path, session_id), os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)   # (closing drops a lock it took)
    return False


@contextlib.contextmanager
def store_lock(db_path: str | Path) -> Iterator[None]:
    """Exclusive, blocking: around creating a store and migrating it (an in-memory store needs none)."""
    if fcntl is None or str(db_path) == ":memory:":
        yield
        return
    path = _mkdir(db_path) / "store.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreError(f"cannot create {path} ({exc.strerror or exc})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
