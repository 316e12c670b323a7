"""Ragged per-sample flag lists -> a padded matrix plus a mask (the one numpy entry point)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Flags = Sequence[Sequence[bool]]


def to_matrix(by_sample: Flags) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(flags, mask)``, both bool arrays of shape ``(n_samples, max_turns)``.

    ``mask[i, t]`` is True when sample ``i`` has a flag at turn ``t + 1``; padded cells of
    ``flags`` are False. Samples of any length (including zero) are accepted.
    """
    rows = [np.asarray(sample, dtype=bool).reshape(-1) for sample in by_sample]
    n_turns = max((row.size for row in rows), default=0)
    flags = np.zeros((len(rows), n_turns), dtype=bool)
    mask = np.zeros((len(rows), n_turns), dtype=bool)
    for i, row in enumerate(rows):
        flags[i, : row.size] = row
        mask[i, : row.size] = True
    return flags, mask


def prefix_all(flags: np.ndarray) -> np.ndarray:
    """Per sample, True at turn t when every flag at turns 1..t is True (task correctness)."""
    return np.logical_and.accumulate(flags, axis=1) if flags.size else flags.copy()


def masked_mean(flags: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-turn mean over the samples that reached the turn (every column has at least one)."""
    if flags.shape[1] == 0:
        return np.zeros(0)
    reached = mask.sum(axis=0)
    hits = (flags & mask).sum(axis=0)
    return hits / reached


def curve_flags(by_sample: Flags, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """The per-sample flags whose masked mean is the curve of ``kind`` ("turn", "step", "task")."""
    flags, mask = to_matrix(by_sample)
    if kind == "task":
        flags = prefix_all(flags)
    elif kind not in ("turn", "step"):
        raise ValueError(f"unknown curve kind {kind!r}; expected 'turn', 'step' or 'task'")
    return flags, mask
