"""Split streamed text into visible text and `<think>…</think>` reasoning, across chunk boundaries."""

from __future__ import annotations

from lhe_tui.providers.base import DeltaKind, OnDelta

_OPEN, _CLOSE = "<think>", "</think>"


class ThinkSplitter:
    """Feed chunks; get back (kind, text) pieces. Holds back a possible partial tag at a chunk's end."""

    def __init__(self) -> None:
        self._buffer = ""
        self._inside = False
        self.text: list[str] = []
        self.reasoning: list[str] = []

    def feed(self, chunk: str) -> list[tuple[DeltaKind, str]]:
        if not self._buffer and not self._inside and "<" not in chunk:  # the common case: plain visible text
            self.text.append(chunk)
            return [("text", chunk)]
        self._buffer += chunk
        out: list[tuple[DeltaKind, str]] = []
        while self._buffer:
            tag = _CLOSE if self._inside else _OPEN
            at = self._buffer.lower().find(tag)
            if at >= 0:
                self._emit(out, self._buffer[:at])
                self._buffer = self._buffer[at + len(tag):]
                self._inside = not self._inside
                continue
            keep = _partial_suffix(self._buffer.lower(), tag)
            self._emit(out, self._buffer[: len(self._buffer) - keep])
            self._buffer = self._buffer[len(self._buffer) - keep:]
            break
        return out

    def flush(self) -> list[tuple[DeltaKind, str]]:
        out: list[tuple[DeltaKind, str]] = []
        self._emit(out, self._buffer)
        self._buffer = ""
        return out

    def feed_to(self, chunk: str, on_delta: OnDelta | None) -> None:
        """Feed a chunk and pass its pieces on to `on_delta` (if any)."""
        _forward(self.feed(chunk), on_delta)

    def flush_to(self, on_delta: OnDelta | None) -> None:
        _forward(self.flush(), on_delta)

    def _emit(self, out: list[tuple[DeltaKind, str]], piece: str) -> None:
        if not piece:
            return
        kind: DeltaKind = "reasoning" if self._inside else "text"
        (self.reasoning if self._inside else self.text).append(piece)
        out.append((kind, piece))


def _forward(pieces: list[tuple[DeltaKind, str]], on_delta: OnDelta | None) -> None:
    if on_delta:
        for kind, piece in pieces:
            on_delta(kind, piece)


def _partial_suffix(buffer: str, tag: str) -> int:
    """Length of the longest suffix of buffer that is a proper prefix of tag."""
    for size in range(min(len(tag) - 1, len(buffer)), 0, -1):
        if buffer.endswith(tag[:size]):
            return size
    return 0
