"""One-shot summary of a run's metrics, for the UI's header and the CLI report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ._ragged import to_matrix
from .curves import first_error, task_accuracy
from .horizon import fit_step_accuracy, horizon, theory_horizon


@dataclass(frozen=True)
class RunSummary:
    n_samples: int
    n_turns: int                       # most turns reached by any sample
    first_errors: list[int | None]     # per sample, 1-based; None = no error yet
    mean_turn_accuracy: float | None   # pooled over every scored turn of every sample
    final_task_accuracy: float | None  # task curve at turn n_turns
    fitted_p: float | None             # constant step accuracy fitted from step flags
    horizon_measured: int | None       # H_s from the task curve; None = not (yet) below s
    horizon_theory: float | None       # ln(s) / ln(fitted_p)
    s: float


def summarize(correct_by_sample: Sequence[Sequence[bool]],
              step_by_sample: Sequence[Sequence[bool]],
              s: float = 0.5) -> RunSummary:
    """All headline numbers of a run from its per-sample turn-correct and step-correct flags."""
    flags, mask = to_matrix(correct_by_sample)
    n_scored = int(mask.sum())
    task = task_accuracy(correct_by_sample)
    fitted_p = fit_step_accuracy(step_by_sample)
    return RunSummary(
        n_samples=len(correct_by_sample),
        n_turns=flags.shape[1],
        first_errors=[first_error(sample) for sample in correct_by_sample],
        mean_turn_accuracy=int((flags & mask).sum()) / n_scored if n_scored else None,
        final_task_accuracy=task[-1] if task else None,
        fitted_p=fitted_p,
        horizon_measured=horizon(task, s),
        horizon_theory=theory_horizon(fitted_p, s),
        s=s,
    )
