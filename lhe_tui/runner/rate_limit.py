"""Client-side rate limits (--rpm, --tpm): token buckets the runner takes from before each request is sent.

Each bucket holds at most one minute's allowance and refills continuously (rate / 60 per second); it starts
full, so a run may send a minute's allowance at once and then goes at the steady rate. A request needing more
tokens than a whole minute's allowance (--tpm below one request's input) waits for a full bucket and empties
it, rather than never going. Time is injected (`clock`, `sleep`) so tests need no real waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


CHARS_PER_TOKEN = 4
"""The one token approximation where no count is at hand: the budget, the limiter and `--estimate`."""


def message_tokens(messages: list) -> int:
    """A request's input tokens estimated from its messages' characters / 4 (at least 1)."""
    chars = 0

    def walk(value: object) -> None:
        nonlocal chars
        if isinstance(value, str):
            chars += len(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                if key in ("content", "text"):
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(messages)
    return max(1, chars // CHARS_PER_TOKEN)


class TokenBucket:
    def __init__(self, per_minute: float, clock: Callable[[], float]) -> None:
        if not per_minute > 0:
            raise ValueError("a bucket needs a positive rate")
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0          # per second
        self.level = self.capacity
        self.clock = clock
        self.stamp = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` (capped at the capacity) can be taken; 0 when it can now."""
        self._refill()
        need = min(amount, self.capacity)
        # a hair's tolerance: a wait computed to the float's last digit can leave level a rounding short of need
        return 0.0 if self.level >= need - 1e-6 else (need - self.level) / self.rate

    def take(self, amount: float) -> None:
        self._refill()
        self.level -= min(amount, self.capacity)


class RateLimiter:
    """--rpm (requests per minute) and --tpm (input tokens per minute); either may be None (no limit)."""

    def __init__(self, rpm: int | None = None, tpm: int | None = None, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.requests = TokenBucket(rpm, clock) if rpm else None
        self.tokens = TokenBucket(tpm, clock) if tpm else None
        self.sleep = sleep

    @property
    def active(self) -> bool:
        return self.requests is not None or self.tokens is not None

    def wait_for(self, tokens: int) -> tuple[float, str]:
        """Seconds before a request of `tokens` input tokens may go, and which limit holds it ('' if none)."""
        waits = [(0.0, "")]
        if self.requests is not None:
            waits.append((self.requests.wait_for(1), "rpm"))
        if self.tokens is not None:
            waits.append((self.tokens.wait_for(tokens), "tpm"))
        return max(waits)

    async def acquire(self, tokens: int, on_hold: Callable[[float, str], None] | None = None) -> float:
        """Wait until a request of `tokens` input tokens is within both limits, then take it from them.
        `on_hold(delay, limit)` is called before each wait. Returns the seconds waited."""
        waited = 0.0
        while True:
            delay, limit = self.wait_for(tokens)
            if delay <= 0:
                break
            if on_hold is not None:
                on_hold(delay, limit)
            await self.sleep(delay)
            waited += delay
        if self.requests is not None:
            self.requests.take(1)
        if self.tokens is not None:
            self.tokens.take(tokens)
        return waited
