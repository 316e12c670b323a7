"""Percentile-bootstrap confidence bands over samples for the per-turn curves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from ._ragged import curve_flags, masked_mean

# Cap on the cells of one (n_boot x block-of-turns) work array (2 MB of floats), so 32 x 50,000 runs stay in
# memory, and the live view's metrics (twice a second) do not take 66 MB at 10,000 turns (issue 26): the
# columns are independent, the results the same at any block size.
_BLOCK_CELLS = 250_000


def bootstrap_ci(
    by_sample: Sequence[Sequence[bool]],
    kind: Literal["answer", "turn", "task"],
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    status: Sequence[str | None] | None = None,
    turns: int | None = None,
    at: Sequence[int] | None = None,
) -> tuple[list[float], list[float]]:
    """Per-turn (lower, upper) percentile-bootstrap bounds of the ``kind`` curve.

    Whole samples are resampled with replacement. In a resample, the value at turn t is the
    mean over the drawn samples that reached turn t (a drawn sample counts as often as drawn);
    a resample that drew no sample reaching t is left out at that turn. ``by_sample`` holds
    answer-correct flags for "answer" and "task", update flags for "turn". `status` and `turns`: which
    turns a sample counts at, as for the curves (lhe_tui.metrics._ragged). `at`: only those turns (0-based
    indices); each bound is what it is in the whole band (the resamples depend on the samples alone).
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    flags, mask = curve_flags(by_sample, kind, status, turns, at)
    n_samples, n_turns = flags.shape
    if n_turns == 0:
        return [], []
    curve = masked_mean(flags, mask)
    if n_samples == 1:
        return curve.tolist(), curve.tolist()

    rng = np.random.default_rng(seed)
    # counts[b, i]: how often resample b drew sample i (the same law as n draws with replacement).
    counts = rng.multinomial(n_samples, np.full(n_samples, 1.0 / n_samples), size=n_boot).astype(float)
    hits = (flags & mask).astype(float)
    reached = mask.astype(float)
    tail = (1.0 - level) / 2.0

    lo = np.empty(n_turns)
    hi = np.empty(n_turns)
    block = max(1, _BLOCK_CELLS // n_boot)
    for start in range(0, n_turns, block):
        cols = slice(start, min(start + block, n_turns))
        num = counts @ hits[:, cols]
        den = counts @ reached[:, cols]
        lo[cols], hi[cols] = _percentiles(num, den, tail, curve[cols])
    return lo.tolist(), hi.tolist()


def _percentiles(num: np.ndarray, den: np.ndarray, tail: float,
                 fallback: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column-wise ``tail`` and ``1 - tail`` quantiles of num/den, skipping cells with den == 0.

    Same linear interpolation as ``np.quantile``'s default, done on one column-wise sort
    (faster than ``np.quantile`` here, and it handles a different count of valid cells per column).
    """
    valid = den > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(valid, num / den, np.inf)  # left-out resamples sort to the end
    ratio.sort(axis=0)
    k = valid.sum(axis=0)
    out = []
    with np.errstate(invalid="ignore"):  # inf - inf in columns no resample reached; replaced below
        for q in (tail, 1.0 - tail):
            pos = q * np.maximum(k - 1, 0)
            below = np.floor(pos).astype(int)
            above = np.minimum(below + 1, np.maximum(k - 1, 0))
            a = np.take_along_axis(ratio, below[None, :], axis=0)[0]
            b = np.take_along_axis(ratio, above[None, :], axis=0)[0]
            value = a + (b - a) * (pos - below)
            # No resample reached this turn (vanishingly rare): fall back to the point estimate.
            out.append(np.where(k > 0, value, fallback))
    return out[0], out[1]


def horizon_ci(by_sample: Sequence[Sequence[bool]], s: float = 0.5, *, n_boot: int = 1000, level: float = 0.95,
               seed: int = 0, status: Sequence[str | None] | None = None,
               turns: int | None = None) -> tuple[int | None, int | None]:
    """Percentile-bootstrap (low, high) of the horizon H_s (the first turn the task curve drops below s), whole
    samples resampled. A resample whose curve never drops below s within the turns played is censored (its H
    lies past the last turn): a bound that falls among those is None (unbounded, or with both None: the
    curve's resamples mostly never drop below s)."""
    flags, mask = curve_flags(by_sample, "task", status, turns)
    n_samples, n_turns = flags.shape
    if n_samples == 0 or n_turns == 0:
        return None, None
    hits = (flags & mask).astype(float)
    reached = mask.astype(float)
    counts = _resample_counts(n_samples, n_boot, seed)
    found = np.zeros(n_boot, dtype=int)
    block = max(1, _BLOCK_CELLS // n_boot)
    for start in range(0, n_turns, block):
        stop = min(start + block, n_turns)
        with np.errstate(invalid="ignore", divide="ignore"):
            curves = (counts @ hits[:, start:stop]) / (counts @ reached[:, start:stop])
        _first_below(np.nan_to_num(curves, nan=1.0), s, start, found)
    values = np.where(found > 0, found, n_turns + 1).astype(float)   # censored: past the last turn
    tail = (1.0 - level) / 2.0
    low, high = (float(v) for v in np.quantile(values, [tail, 1.0 - tail], method="inverted_cdf"))
    return (None if low > n_turns else int(low)), (None if high > n_turns else int(high))


def _resample_counts(n_samples: int, n_boot: int, seed: int) -> np.ndarray:
    """counts[r, i]: how often resample r drew sample i (n draws with replacement)."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_samples, np.full(n_samples, 1.0 / n_samples), size=n_boot).astype(float)


def _first_below(curves: np.ndarray, s: float, offset: int, found: np.ndarray) -> None:
    """In place: for each resample (row) with no crossing yet, the first 1-based turn its curve is below s."""
    below = curves < s
    hit = below.any(axis=1) & (found == 0)
    found[hit] = offset + np.argmax(below[hit], axis=1) + 1
