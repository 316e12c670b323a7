"""The UI process's heap during a run: frozen every few seconds, and its frozen garbage freed now and then.

A run's view makes garbage with cycles all the time: Textual's `Strip`s keep themselves in their own
caches (a crop or a length adjustment that changes nothing caches the strip itself), so every line drawn
and later replaced is a cycle only the collector frees. Freezing the heap (gc.freeze) keeps full
collections short (they walk only what came since), but what is frozen is never collected: every cycle
that was alive or not yet collected at a freeze, and dies after it, stayed in memory for the whole run (the
live view's RSS grew with the run, issue 26). So every `collect_every` freezes the heap is unfrozen and
collected in full once (a pause of a few tens of ms every few seconds), then frozen again: the frozen garbage
is bounded by what a few seconds make, whatever the run's length. Then the C allocator is asked to give
back the free pages it keeps (glibc's `malloc_trim`): a run's replies, batches of events and metrics arrays
come and go in pieces of its heap that it otherwise keeps resident.

No Textual in this module.
"""

from __future__ import annotations

import ctypes
import gc
import sys
from collections.abc import Callable

COLLECT_EVERY = 5
"""Every this many freezes (10 s at the run screen's 2 s), the frozen heap is collected in full before it is
frozen again."""


def _malloc_trim() -> Callable[[], object] | None:
    """glibc's malloc_trim(0), or None where there is none (another libc, another system)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


MALLOC_TRIM = _malloc_trim()


class HeapFreezer:
    """`tick()` on a timer: freeze the heap; every `collect_every` ticks, collect what was frozen first."""

    def __init__(self, collect_every: int | None = None) -> None:
        self.collect_every = max(1, COLLECT_EVERY if collect_every is None else collect_every)
        self.ticks = 0
        self.full_collections = 0
        self.freed = 0          # unreachable objects the full collections found (tests, the bench)

    def tick(self) -> None:
        self.ticks += 1
        if self.ticks % self.collect_every == 0:
            gc.unfreeze()
            self.freed += gc.collect()
            self.full_collections += 1
            if MALLOC_TRIM is not None:
                MALLOC_TRIM()
        gc.freeze()

    @staticmethod
    def release() -> None:
        """The view is going: what was frozen goes back to the collector."""
        gc.unfreeze()
