"""Time bootstrap_ci (1000 resamples) on runs of several shapes; prints medians of 5 repetitions."""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from lhe_tui.metrics import bootstrap_ci


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    rng = np.random.default_rng(1)
    for samples, turns in ((8, 100), (8, 5000), (32, 50_000)):
        data = (rng.random((samples, turns)) < 0.99).tolist()
        bootstrap_ci(data, "task", n_boot=10)
        times = []
        for _ in range(5 if turns < 50_000 else 2):
            start = time.perf_counter()
            bootstrap_ci(data, "task", n_boot=1000)
            times.append(time.perf_counter() - start)
        print(f"bootstrap_ci task, {samples} samples x {turns} turns, 1000 resamples: "
              f"median {statistics.median(times):.3f} s")


if __name__ == "__main__":
    main()
