"""Paired differences between two arms run over the same samples (same keys): `B - A`, with a paired
percentile bootstrap over samples (issue 15).

Pairing: sample i of arm A and sample i of arm B saw the same keys, so a resample draws sample *indices*
and takes both arms' flags of each drawn index together. What the arms share (how hard a sample's keys
are, luck before an intervention) cancels, and the interval is as wide as the arms' *disagreement*, not
as wide as each arm's own spread.

Ragged samples (lhe_tui.metrics._ragged): at turn t a pair counts when its sample counts there in *both*
arms (a failed sample counts as wrong past its failure, a stopped one not past its last turn); the
difference at t is the mean over those pairs of (B's flag - A's flag). For finished runs every sample
counts and that is exactly the difference of the two arms' curves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ._ragged import Flags, Statuses, curve_flags
from .bootstrap import _first_below, _percentiles, _resample_counts
from .curves import first_error

_BLOCK_CELLS = 2_000_000   # cap on one (n_boot x block-of-turns) work array, as bootstrap.py

DEFAULT_N_BOOT = 2000
DEFAULT_SEED = 0


@dataclass(frozen=True)
class PairedDiff:
    """B - A at one turn (or of one statistic): the point estimate, the interval, the pairs it counts."""

    turn: int | None
    a: float | None          # arm A's value over the counted pairs
    b: float | None
    diff: float | None       # b - a
    low: float | None        # percentile bootstrap bounds of diff
    high: float | None
    n: int                   # pairs counted
    n_differ: int = 0        # pairs whose flags differ at the turn (turn and task accuracy only)

    def covers(self, value: float) -> bool:
        return self.low is not None and self.high is not None and self.low - 1e-12 <= value <= self.high + 1e-12

    @property
    def width(self) -> float | None:
        return None if self.low is None or self.high is None else self.high - self.low


def _check(n_boot: int, level: float) -> None:
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")


def _pad(flags: np.ndarray, mask: np.ndarray, n_turns: int) -> tuple[np.ndarray, np.ndarray]:
    extra = n_turns - flags.shape[1]
    if extra <= 0:
        return flags, mask
    pad = np.zeros((flags.shape[0], extra), dtype=bool)
    return np.hstack([flags, pad]), np.hstack([mask, pad])


def paired_flags(a: Flags, b: Flags, kind: Literal["answer", "turn", "task"], *, status_a: Statuses = None,
                 status_b: Statuses = None, turns: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a_flags, b_flags, both) of shape (n_samples, n_turns): the `kind` flags of each arm and where a pair
    counts (its sample counts in both arms). ValueError when the arms have different numbers of samples."""
    if len(a) != len(b):
        raise ValueError(f"arms differ in samples ({len(a)} and {len(b)}): a paired comparison needs the same ones")
    fa, ma = curve_flags(a, kind, status_a, turns)
    fb, mb = curve_flags(b, kind, status_b, turns)
    n_turns = max(fa.shape[1], fb.shape[1])
    fa, ma = _pad(fa, ma, n_turns)
    fb, mb = _pad(fb, mb, n_turns)
    return fa, fb, ma & mb


def paired_difference(a: Flags, b: Flags, kind: Literal["answer", "turn", "task"], at: Sequence[int], *,
                      status_a: Statuses = None, status_b: Statuses = None, turns: int | None = None,
                      n_boot: int = DEFAULT_N_BOOT, level: float = 0.95, seed: int = DEFAULT_SEED,
                      paired: bool = True) -> list[PairedDiff]:
    """B - A of the `kind` accuracy at each 1-based turn in `at`, with a percentile bootstrap interval.

    `a`, `b`: per sample the answer-correct flags (update flags for "turn") of each arm, sample i of both over
    the same keys. `paired=False` resamples the two arms independently (the interval one would get without
    knowing the keys are shared; for comparison only). A turn no pair counts at gives a row of None."""
    _check(n_boot, level)
    fa, fb, both = paired_flags(a, b, kind, status_a=status_a, status_b=status_b, turns=turns)
    n_samples, n_turns = both.shape
    cols = [t - 1 for t in at if 1 <= t <= n_turns]
    out: dict[int, PairedDiff] = {}
    if cols and n_samples:
        sel = np.asarray(cols)
        w = both[:, sel].astype(float)
        xa = (fa[:, sel] & both[:, sel]).astype(float)
        xb = (fb[:, sel] & both[:, sel]).astype(float)
        n = w.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_a, mean_b = xa.sum(axis=0) / n, xb.sum(axis=0) / n
        differ = ((fa[:, sel] != fb[:, sel]) & both[:, sel]).sum(axis=0)
        tail = (1.0 - level) / 2.0
        counts = _resample_counts(n_samples, n_boot, seed)
        if paired:
            num, den = counts @ (xb - xa), counts @ w
            low, high = _percentiles(num, den, tail, mean_b - mean_a)
        else:
            counts_b = _resample_counts(n_samples, n_boot, seed + 1)
            den_a, den_b = counts @ w, counts_b @ w
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = (counts_b @ xb) / den_b - (counts @ xa) / den_a
            ok = (den_a > 0) & (den_b > 0)
            low, high = _percentiles(np.where(ok, ratio, 0.0), ok.astype(float), tail, mean_b - mean_a)
        for j, col in enumerate(cols):
            if n[j] == 0:
                continue
            out[col + 1] = PairedDiff(turn=col + 1, a=float(mean_a[j]), b=float(mean_b[j]),
                                      diff=float(mean_b[j] - mean_a[j]), low=float(low[j]), high=float(high[j]),
                                      n=int(n[j]), n_differ=int(differ[j]))
    return [out.get(t, PairedDiff(turn=t, a=None, b=None, diff=None, low=None, high=None, n=0)) for t in at]


def first_errors_or_end(by_sample: Flags, status: Statuses = None, turns: int | None = None) -> list[float | None]:
    """Per sample its first error turn; a sample with no error counts as erring after its last turn (as
    `compare`'s median first error: a lower bound, so the mean stays honest); a sample with no turn: None."""
    out: list[float | None] = []
    for i, flags in enumerate(by_sample):
        failed = status is not None and status[i] == "failed"
        first = first_error(flags, failed)
        if first is None:
            out.append(float(len(flags) + 1) if len(flags) else None)
        else:
            out.append(float(first))
    return out


def paired_mean_difference(a: Sequence[float | None], b: Sequence[float | None], *, n_boot: int = DEFAULT_N_BOOT,
                           level: float = 0.95, seed: int = DEFAULT_SEED) -> PairedDiff:
    """B - A of the mean of a per-sample value (e.g. `first_errors_or_end`), over the samples with a value in
    both arms, with a paired percentile bootstrap interval."""
    _check(n_boot, level)
    if len(a) != len(b):
        raise ValueError(f"arms differ in samples ({len(a)} and {len(b)})")
    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    if not pairs:
        return PairedDiff(turn=None, a=None, b=None, diff=None, low=None, high=None, n=0)
    xa = np.array([p[0] for p in pairs], dtype=float)
    xb = np.array([p[1] for p in pairs], dtype=float)
    d = xb - xa
    counts = _resample_counts(len(d), n_boot, seed)
    means = (counts @ d) / len(d)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return PairedDiff(turn=None, a=float(xa.mean()), b=float(xb.mean()), diff=float(d.mean()), low=float(low),
                      high=float(high), n=len(d), n_differ=int((d != 0).sum()))


def paired_horizon_difference(a: Flags, b: Flags, s: float = 0.5, *, status_a: Statuses = None,
                              status_b: Statuses = None, turns: int | None = None, n_boot: int = DEFAULT_N_BOOT,
                              level: float = 0.95, seed: int = DEFAULT_SEED) -> PairedDiff:
    """B - A of the measured horizon H_s (the first turn the task curve drops below s), each arm's curve over
    the samples counted in it; the interval over the resamples in which both arms' curves drop below s
    (None when fewer than half of them do). diff None: an arm's own curve never drops below s."""
    _check(n_boot, level)
    if len(a) != len(b):
        raise ValueError(f"arms differ in samples ({len(a)} and {len(b)})")
    arms = []
    for flags, status in ((a, status_a), (b, status_b)):
        f, m = curve_flags(flags, "task", status, turns)
        arms.append(((f & m).astype(float), m.astype(float)))
    n_samples = len(a)
    n_turns = max(arms[0][0].shape[1], arms[1][0].shape[1])
    if n_samples == 0 or n_turns == 0:
        return PairedDiff(turn=None, a=None, b=None, diff=None, low=None, high=None, n=0)

    def point(hits: np.ndarray, reached: np.ndarray) -> int | None:
        with np.errstate(invalid="ignore", divide="ignore"):
            curve = hits.sum(axis=0) / reached.sum(axis=0)
        below = np.flatnonzero(np.nan_to_num(curve, nan=1.0) < s)
        return int(below[0]) + 1 if below.size else None

    ha, hb = point(*arms[0]), point(*arms[1])
    counts = _resample_counts(n_samples, n_boot, seed)
    found = [np.zeros(n_boot, dtype=int), np.zeros(n_boot, dtype=int)]
    block = max(1, _BLOCK_CELLS // n_boot)
    for start in range(0, n_turns, block):
        for j, (hits, reached) in enumerate(arms):
            stop = min(start + block, hits.shape[1])
            if start >= stop:
                continue
            with np.errstate(invalid="ignore", divide="ignore"):
                curves = (counts @ hits[:, start:stop]) / (counts @ reached[:, start:stop])
            _first_below(np.nan_to_num(curves, nan=1.0), s, start, found[j])
    ok = (found[0] > 0) & (found[1] > 0)
    low = high = None
    if ok.sum() * 2 >= n_boot:
        tail = (1.0 - level) / 2.0
        low, high = (float(v) for v in np.quantile((found[1] - found[0])[ok], [tail, 1.0 - tail]))
    diff = None if ha is None or hb is None else float(hb - ha)
    return PairedDiff(turn=None, a=None if ha is None else float(ha), b=None if hb is None else float(hb),
                      diff=diff, low=low, high=high, n=n_samples)


__all__ = ["PairedDiff", "first_errors_or_end", "paired_difference", "paired_flags", "paired_horizon_difference",
           "paired_mean_difference"]
