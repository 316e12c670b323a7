"""The cap on one line of a streamed response (an SSE event line), for the clients that read through httpx (the
openai and anthropic SDKs); the direct client's SSEDecoder has the same cap. An endless event line must not grow
a buffer without bound: past the cap, reading stops and the turn is a format miss (ReplyTooLarge)."""

from __future__ import annotations

from lhe_tui.providers.base import ReplyTooLarge


def max_line_bytes(max_reply_chars: int) -> int:
    """A line longer than any the capped reply could need (4 bytes a character, JSON escapes and all)."""
    return 4 * max_reply_chars + 65536


def line_cap_hook(max_line: int):
    """An httpx response hook: the response's body raises ReplyTooLarge once a line (bytes since the last
    CR or LF) passes `max_line` bytes. Counting costs one rfind per network read."""
    import httpx2

    class CappedLines(httpx2.AsyncByteStream):
        def __init__(self, stream: httpx2.AsyncByteStream) -> None:
            self.stream = stream

        async def __aiter__(self):  # type: ignore[override]
            open_line = 0
            async for chunk in self.stream:
                end = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
                open_line = open_line + len(chunk) if end < 0 else len(chunk) - end - 1
                if open_line > max_line:
                    raise ReplyTooLarge(f"an event line passed {max_line:,} bytes")
                yield chunk

        async def aclose(self) -> None:
            await self.stream.aclose()

    async def hook(response: httpx2.Response) -> None:
        response.stream = CappedLines(response.stream)  # type: ignore[arg-type]

    return hook
