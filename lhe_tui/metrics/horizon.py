"""Horizon length, measured and predicted by the constant-step-accuracy model (Proposition 1)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ._ragged import Statuses, to_matrix


def horizon(task_curve: Sequence[float], s: float = 0.5) -> int | None:
    """H_s: first 1-based turn at which the task-accuracy curve drops below ``s``; None if never."""
    below = np.flatnonzero(np.asarray(task_curve, dtype=float) < s)
    return int(below[0]) + 1 if below.size else None


def fit_step_accuracy(step_by_sample: Sequence[Sequence[bool]], *, status: Statuses = None,
                      turns: int | None = None) -> float | None:
    """MLE of a constant per-turn step accuracy p: the mean of every step flag of every sample (a failed
    sample's turns past its failure count as wrong, as in the curves)."""
    flags, mask = to_matrix(step_by_sample, status, turns)
    n_scored = int(mask.sum())
    if n_scored == 0:
        return None
    return int((flags & mask).sum()) / n_scored


def _check_p(p: float) -> None:
    if math.isnan(p) or not 0.0 <= p <= 1.0:
        raise ValueError(f"step accuracy p must be in [0, 1], got {p}")


def theory_task_curve(p: float, n_turns: int) -> list[float]:
    """Predicted task accuracy with constant step accuracy p and no self-correction: [p, p^2, ..., p^n]."""
    _check_p(p)
    if n_turns <= 0:
        return []
    return np.power(float(p), np.arange(1, n_turns + 1, dtype=float)).tolist()


def theory_horizon(p: float | None, s: float = 0.5) -> float | None:
    """Predicted H_s = ln(s) / ln(p); inf when p >= 1, 0.0 when p <= 0, None when p is None."""
    if p is None:
        return None
    if math.isnan(p):
        raise ValueError("step accuracy p is NaN")
    if not 0.0 < s <= 1.0:
        raise ValueError(f"success threshold s must be in (0, 1], got {s}")
    if p >= 1.0:
        return math.inf
    if p <= 0.0:
        return 0.0
    return math.log(s) / math.log(p) + 0.0  # + 0.0 turns -0.0 (s == 1) into 0.0


# ---- turns and steps (K keys per turn; docs/protocol.md) --------------------------------------
def per_step_p(p_turn: float | None, k: int) -> float | None:
    """The constant per-key accuracy that gives `p_turn` per turn of `k` keys: p_turn ** (1 / k)."""
    if p_turn is None:
        return None
    _check_p(p_turn)
    if k < 1:
        raise ValueError(f"keys per turn must be at least 1, got {k}")
    return p_turn if k == 1 else p_turn ** (1.0 / k)


def horizon_in_steps(h_turns: float | int | None, k: int) -> float | int | None:
    """A horizon counted in turns, in steps (keys): turn t is answered after t * k keys."""
    if h_turns is None:
        return None
    if k < 1:
        raise ValueError(f"keys per turn must be at least 1, got {k}")
    return h_turns * k
