"""Pure metric functions over per-sample, per-turn flags (no UI imports; see DESIGN.md section 2).

Inputs are lists (one per sample) of booleans indexed by turn, turn 1 at index 0. Samples may
differ in length; a curve at turn t averages over the samples that count at turn t: those that reached
it, and (given each sample's status) those that failed before it, as wrong (see _ragged).
"""

from .bootstrap import bootstrap_ci
from .curves import accuracy_at, first_error, sample_counts, step_accuracy, task_accuracy, turn_accuracy
from .horizon import (fit_step_accuracy, horizon, horizon_in_steps, per_step_p, theory_horizon,
                      theory_task_curve)
from .paired import (PairedDiff, first_errors_or_end, paired_difference, paired_horizon_difference,
                     paired_mean_difference)
from .summary import RunSummary, summarize

__all__ = [
    "PairedDiff",
    "RunSummary",
    "accuracy_at",
    "bootstrap_ci",
    "first_error",
    "first_errors_or_end",
    "fit_step_accuracy",
    "horizon",
    "horizon_in_steps",
    "paired_difference",
    "paired_horizon_difference",
    "paired_mean_difference",
    "per_step_p",
    "sample_counts",
    "step_accuracy",
    "summarize",
    "task_accuracy",
    "theory_horizon",
    "theory_task_curve",
    "turn_accuracy",
]
