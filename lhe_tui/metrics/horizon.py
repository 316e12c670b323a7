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


def mean_turn_accuracy(update_by_sample: Sequence[Sequence[bool]], *, status: Statuses = None,
                       turns: int | None = None) -> float | None:
    """The mean turn accuracy: the mean of every update flag of every sample (a failed sample's turns past
    its failure count as wrong, as in the curves). Turns after a sample's first error count too, where
    self-conditioning raises the error rate: this is not the p of Proposition 1 (`p_before_first_error`)."""
    flags, mask = to_matrix(update_by_sample, status, turns)
    n_scored = int(mask.sum())
    if n_scored == 0:
        return None
    return int((flags & mask).sum()) / n_scored


def first_error_exposure(correct_by_sample: Sequence[Sequence[bool]], *, status: Statuses = None,
                         turns: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per sample (errors, turns at risk) for the constant-hazard fit: a sample that erred at turn f gives
    (1, f); one that never erred is censored at the last turn it counts at, (0, last); a failed sample
    with every counted answer right erred at the turn it failed at (the ragged rule of the curves)."""
    flags, mask = to_matrix(correct_by_sample, status, turns)
    if flags.shape[1] == 0:
        return np.zeros(flags.shape[0]), np.zeros(flags.shape[0])
    wrong = mask & ~flags
    erred = wrong.any(axis=1)
    first = np.argmax(wrong, axis=1) + 1
    counted = mask.sum(axis=1)
    at_risk = np.where(erred, first, counted)
    return erred.astype(float), at_risk.astype(float)


def p_before_first_error(correct_by_sample: Sequence[Sequence[bool]], *, status: Statuses = None,
                         turns: int | None = None) -> float | None:
    """p before the first error: the constant-hazard fit to the first-error times, 1 - first errors / turns
    at risk (samples that never erred censored at their last turn). The MLE of a constant per-turn
    accuracy when nothing after a sample's first error is used: the p of the theory curve p^t and of the
    theory H_s. None when no sample counts at any turn."""
    errors, at_risk = first_error_exposure(correct_by_sample, status=status, turns=turns)
    total = float(at_risk.sum())
    return None if total == 0 else 1.0 - float(errors.sum()) / total


def p_before_first_error_ci(correct_by_sample: Sequence[Sequence[bool]], *, status: Statuses = None,
                            turns: int | None = None, n_boot: int = 1000, level: float = 0.95,
                            seed: int = 0) -> tuple[float, float] | None:
    """Percentile-bootstrap (low, high) of `p_before_first_error`, resampling whole samples."""
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    errors, at_risk = first_error_exposure(correct_by_sample, status=status, turns=turns)
    if at_risk.sum() == 0:
        return None
    n = errors.size
    counts = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)
    risk = counts @ at_risk
    ok = risk > 0
    p = 1.0 - (counts @ errors)[ok] / risk[ok]
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(p, [tail, 1.0 - tail])
    return float(low), float(high)


def _check_p(p: float) -> None:
    if math.isnan(p) or not 0.0 <= p <= 1.0:
        raise ValueError(f"step accuracy p must be in [0, 1], got {p}")


def theory_task_curve(p: float, n_turns: int, at: Sequence[int] | None = None) -> list[float]:
    """Predicted task accuracy with constant step accuracy p and no self-correction: [p, p^2, ..., p^n];
    `at`: only those turns (0-based indices: p^(i+1) for each i)."""
    _check_p(p)
    if n_turns <= 0:
        return []
    exponents = np.arange(1, n_turns + 1, dtype=float) if at is None else np.asarray(at, dtype=float) + 1
    return np.power(float(p), exponents).tolist()


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
