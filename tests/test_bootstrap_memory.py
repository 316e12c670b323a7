"""Issue 26 §4: the bootstrap's work arrays are cut in blocks of turns small enough that the live view's metrics
(recomputed twice a second) do not take memory in proportion to the run's length; the results do not depend on
the block size."""

from __future__ import annotations

import random
import tracemalloc

from lhe_tui.metrics import bootstrap
from lhe_tui.metrics.bootstrap import bootstrap_ci, horizon_ci


def flags(samples: int, turns: int, seed: int = 3) -> list[list[bool]]:
    rng = random.Random(seed)
    return [[rng.random() > 0.002 for _ in range(turns)] for _ in range(samples)]


def test_a_long_run_bootstrap_works_in_small_blocks():
    by_sample = flags(16, 10_000)
    tracemalloc.start()
    try:
        bootstrap_ci(by_sample, "task", n_boot=200, seed=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20     # 66 MB with blocks of 2,000,000 cells (16 MB an array)


def test_the_bands_do_not_depend_on_the_block_size(monkeypatch):
    by_sample = flags(8, 3_000, seed=5)
    small = bootstrap_ci(by_sample, "task", n_boot=200, seed=1), horizon_ci(by_sample, 0.5, n_boot=200, seed=1)
    monkeypatch.setattr(bootstrap, "_BLOCK_CELLS", 10**9)   # one block
    whole = bootstrap_ci(by_sample, "task", n_boot=200, seed=1), horizon_ci(by_sample, 0.5, n_boot=200, seed=1)
    assert small == whole and len(small[0][0]) == 3_000
