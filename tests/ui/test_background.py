"""The UI's background threads (chart builds, metrics) run at a low priority; the UI thread does not."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from lhe_tui.ui import plotting
from lhe_tui.ui.background import BACKGROUND_NICE, lower_this_threads_priority

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priority is Linux's")


def own_priority() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_a_background_thread_is_lowered_and_the_calling_one_is_not():
    before = own_priority()
    seen: list[int] = []

    def work() -> None:
        lower_this_threads_priority()
        seen.append(own_priority())

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == [max(before, BACKGROUND_NICE)] and own_priority() == before


def test_the_chart_build_thread_runs_at_the_background_priority():
    assert plotting._builder.submit(own_priority).result(timeout=10) >= BACKGROUND_NICE
