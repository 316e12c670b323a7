"""Pure metric functions over per-sample, per-turn flags (no UI imports; see DESIGN.md section 2).

Names as the paper's (DESIGN §2): turn accuracy is the update accuracy (flags under a step rule,
lhe_tui.core.step_rules), answer accuracy (answer == gold) is the reference code's index accuracy, task
accuracy is every answer 1..t right; step accuracy for K > 1 exists only as the derived p_turn ** (1/K).
Inputs are lists (one per sample) of booleans indexed by turn, turn 1 at index 0. Samples may
differ in length; a curve at turn t averages over the samples that count at turn t: those that reached
it, and (given each sample's status) those that failed before it, as wrong (see _ragged).
"""

from ._ragged import curve_length
from .bootstrap import bootstrap_ci
from .curves import accuracy_at, answer_accuracy, first_error, sample_counts, task_accuracy, turn_accuracy
from .horizon import (horizon, horizon_in_steps, mean_turn_accuracy, p_before_first_error, p_before_first_error_ci,
                      per_step_p, theory_horizon, theory_task_curve)
from .paired import (PairedDiff, first_errors_or_end, paired_difference, paired_horizon_difference,
                     paired_mean_difference)
from .summary import RunSummary, summarize

__all__ = [
    "PairedDiff",
    "RunSummary",
    "accuracy_at",
    "answer_accuracy",
    "bootstrap_ci",
    "curve_length",
    "first_error",
    "first_errors_or_end",
    "horizon",
    "horizon_in_steps",
    "mean_turn_accuracy",
    "p_before_first_error",
    "p_before_first_error_ci",
    "paired_difference",
    "paired_horizon_difference",
    "paired_mean_difference",
    "per_step_p",
    "sample_counts",
    "summarize",
    "task_accuracy",
    "theory_horizon",
    "theory_task_curve",
    "turn_accuracy",
]
