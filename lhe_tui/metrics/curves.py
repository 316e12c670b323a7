"""Per-turn accuracy curves over samples, and per-sample first error. `at` (every curve): only those turns
(0-based indices), each point what it is in the whole curve."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._ragged import Flags, Statuses, curve_flags, masked_mean, to_matrix


def _curve(by_sample: Flags, kind: str, status: Statuses, turns: int | None,
           at: Sequence[int] | None) -> list[float]:
    flags, mask = curve_flags(by_sample, kind, status, turns, at)
    return masked_mean(flags, mask).tolist()


def answer_accuracy(correct_by_sample: Flags, *, status: Statuses = None, turns: int | None = None,
                  at: Sequence[int] | None = None) -> list[float]:
    """Answer accuracy (the reference code's index accuracy; not a paper metric): the mean of the
    answer-correct flags (answer == gold sum) at each turn, over the samples that count there (see _ragged:
    with `status`, a failed sample counts as wrong past its failure)."""
    return _curve(correct_by_sample, "answer", status, turns, at)


def turn_accuracy(update_by_sample: Flags, *, status: Statuses = None, turns: int | None = None,
                  at: Sequence[int] | None = None) -> list[float]:
    """Turn accuracy (the paper's): the mean of the update flags (the update from turn t-1 to t is right,
    whatever the state at t-1; lhe_tui.core.step_rules) at each turn. For K = 1 it is step accuracy."""
    return _curve(update_by_sample, "turn", status, turns, at)


def task_accuracy(correct_by_sample: Flags, *, status: Statuses = None, turns: int | None = None,
                  at: Sequence[int] | None = None) -> list[float]:
    """Mean at each turn t of "turns 1..t all correct", over the samples that count at turn t."""
    return _curve(correct_by_sample, "task", status, turns, at)


def sample_counts(by_sample: Flags, *, status: Statuses = None, turns: int | None = None,
                  task: bool = False, at: Sequence[int] | None = None) -> list[int]:
    """How many samples each point of the curves counts (n per turn), under the same rule as the curves;
    `task`: the task curve's, which also counts a sample ended early (--until) after an error, as wrong."""
    _, mask = to_matrix(by_sample, status, turns, task=task)
    counts = mask.sum(axis=0).astype(int)
    return (counts if at is None else counts[np.asarray(at, dtype=int)]).tolist()


def first_error(correct: Sequence[bool], failed: bool = False) -> int | None:
    """1-based turn of the first wrong answer; None when every answer so far is right. A `failed` sample
    with every stored answer right erred at the turn it failed at (the turn after its last)."""
    flags = np.asarray(correct, dtype=bool).reshape(-1)
    if failed and flags.all():
        return flags.size + 1
    if flags.all():  # also True for an empty sample
        return None
    return int(np.argmin(flags)) + 1


def accuracy_at(curve: Sequence[float], turn: int) -> float | None:
    """Value of ``curve`` at 1-based ``turn``; None when the turn is out of range."""
    if turn < 1 or turn > len(curve):
        return None
    return float(curve[turn - 1])
