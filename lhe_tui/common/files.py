"""Read a file the user names (a prompt template, a price file, a dataset): a regular file only, and at most a
size that fits its kind. /dev/zero, a FIFO, a socket or a folder is refused at once (a FIFO is opened without
waiting for a writer), and so is a file larger than its kind's limit; each refusal is one line."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path
from typing import Any

KB = 1024
MB = 1024 * KB
TEMPLATE_LIMIT = 512 * KB
"""A prompt template: its text is sent with every request (the shipped ones are 1-2 KB)."""
PRICES_LIMIT = 4 * MB
"""A price file (the shipped one is a few KB)."""
THEME_LIMIT = 256 * KB
"""A theme file (the shipped ones are about 1 KB)."""
DATASET_LIMIT = 400 * MB
"""A dataset file: the paper's full dataset (100 samples of 50,000 keys, ~250 MB) fits."""

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"))


class UnreadableFile(Exception):
    """Why a file cannot be read, in a few words (the caller names the file and its kind)."""


def size_text(n: int) -> str:
    if n >= MB:
        return f"{n / MB:,.1f} MB"
    return f"{n / KB:,.0f} KB" if n >= KB else f"{n} bytes"


def _open_regular(path: str | Path, limit: int) -> int:
    """A descriptor of the regular file at `path` no larger than `limit` (a FIFO opened without waiting)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise UnreadableFile("no such file") from None
    except IsADirectoryError:
        raise UnreadableFile("is a folder, not a file") from None
    except OSError as exc:
        raise UnreadableFile(f"cannot read ({exc.strerror or exc.__class__.__name__})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = next((name for test, name in _KINDS if test(info.st_mode)), "not a regular file")
            raise UnreadableFile(f"is {kind}, not a regular file")
        if info.st_size > limit:
            raise UnreadableFile(f"is {size_text(info.st_size)}, more than the {size_text(limit)} allowed")
    except OSError as exc:
        os.close(fd)
        raise UnreadableFile(f"cannot read ({exc.strerror or exc.__class__.__name__})") from None
    except UnreadableFile:
        os.close(fd)
        raise
    return fd


def read_bounded(path: str | Path, limit: int) -> bytes:
    """The bytes of the regular file at `path`, at most `limit` of them; UnreadableFile otherwise."""
    fd = _open_regular(path, limit)
    try:
        pieces, size = [], 0
        while size <= limit:
            piece = os.read(fd, min(limit + 1 - size, 16 * MB))
            if not piece:
                break
            pieces.append(piece)
            size += len(piece)
        if size > limit:   # it grew while being read
            raise UnreadableFile(f"is more than the {size_text(limit)} allowed")
        return b"".join(pieces)
    except OSError as exc:
        raise UnreadableFile(f"cannot read ({exc.strerror or exc.__class__.__name__})") from None
    finally:
        os.close(fd)


class _BoundedReader(io.RawIOBase):
    """A regular file's bytes, read as they are asked for; UnreadableFile once more than `limit` came."""

    def __init__(self, fd: int, limit: int) -> None:
        self._file = io.FileIO(fd, "rb", closefd=True)
        self._limit, self._size = limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            n = self._file.readinto(buffer) or 0
        except OSError as exc:
            raise UnreadableFile(f"cannot read ({exc.strerror or exc.__class__.__name__})") from None
        self._size += n
        if self._size > self._limit:   # it grew while being read
            raise UnreadableFile(f"is more than the {size_text(self._limit)} allowed")
        return n

    def close(self) -> None:
        self._file.close()
        super().close()


def open_bounded(path: str | Path, limit: int) -> io.BufferedReader:
    """The regular file at `path`, opened to be read piece by piece (streamed), at most `limit` bytes of it;
    refused at once as `read_bounded` refuses (UnreadableFile), and UnreadableFile from a read past `limit`."""
    return io.BufferedReader(_BoundedReader(_open_regular(path, limit), limit), buffer_size=1 * MB)
