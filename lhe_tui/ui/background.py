"""Background work of the UI (chart builds, metrics) at a low CPU priority.

A live run goes on in its own process (lhe_tui.runs.run_process). On a machine with few cores, the
UI's bursts of background work (a chart built on a thread, a bootstrap of the decay curve) would
compete with it for a core; at a lower priority they take only what the run leaves. Linux sets the
priority (nice) per thread; elsewhere this does nothing.
"""

from __future__ import annotations

import os
import threading

BACKGROUND_NICE = 10


def lower_this_threads_priority() -> None:
    """Call from the background thread itself."""
    if not hasattr(os, "setpriority") or not os.path.exists("/proc/self/task"):   # per-thread only on Linux
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, max(os.getpriority(os.PRIO_PROCESS, tid), BACKGROUND_NICE))
    except OSError:
        pass
