"""Per-turn accuracy curves over samples, and per-sample first error."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._ragged import Flags, curve_flags, masked_mean


def _curve(by_sample: Flags, kind: str) -> list[float]:
    flags, mask = curve_flags(by_sample, kind)
    return masked_mean(flags, mask).tolist()


def turn_accuracy(correct_by_sample: Sequence[Sequence[bool]]) -> list[float]:
    """Mean of the turn-correct flags at each turn, over the samples that reached that turn."""
    return _curve(correct_by_sample, "turn")


def step_accuracy(step_by_sample: Sequence[Sequence[bool]]) -> list[float]:
    """Mean of the step-correct (self-consistent update) flags at each turn."""
    return _curve(step_by_sample, "step")


def task_accuracy(correct_by_sample: Sequence[Sequence[bool]]) -> list[float]:
    """Mean at each turn t of "turns 1..t all correct", over the samples that reached turn t."""
    return _curve(correct_by_sample, "task")


def first_error(correct: Sequence[bool]) -> int | None:
    """1-based turn of the first wrong answer; None when every answer so far is right."""
    flags = np.asarray(correct, dtype=bool).reshape(-1)
    if flags.all():  # also True for an empty sample
        return None
    return int(np.argmin(flags)) + 1


def accuracy_at(curve: Sequence[float], turn: int) -> float | None:
    """Value of ``curve`` at 1-based ``turn``; None when the turn is out of range."""
    if turn < 1 or turn > len(curve):
        return None
    return float(curve[turn - 1])
