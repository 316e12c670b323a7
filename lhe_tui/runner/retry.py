"""Capped exponential backoff with full jitter, honouring a server's Retry-After within bounds."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

BASE_S = 1.0               # the first wait is 0.5-1 s, doubling to
CAP_S = 30.0               # at most 30 s (jittered down to half)
MAX_RETRY_AFTER_S = 120.0  # a server's Retry-After is honoured up to this per wait
RETRY_BUDGET_S = 600.0     # waits and retried requests of one turn, in all (--retry-budget)


@dataclass(frozen=True)
class Backoff:
    base_s: float = BASE_S
    cap_s: float = CAP_S
    max_retry_after_s: float = MAX_RETRY_AFTER_S

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `attempt` (1-based). A Retry-After (seconds) lengthens the
        wait up to `max_retry_after_s`; it never shortens it below the backoff (0, negative, nan: ignored)."""
        ceiling = min(self.cap_s, self.base_s * (2 ** (attempt - 1)))
        jittered = rng.uniform(ceiling / 2, ceiling)
        if retry_after is not None and math.isfinite(retry_after) and retry_after > jittered:
            return min(retry_after, max(self.max_retry_after_s, jittered))
        return jittered
