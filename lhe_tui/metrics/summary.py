"""One-shot summary of a run's metrics, for the UI's header and the CLI report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ._ragged import FAILED, Statuses, curve_flags, masked_mean, to_matrix
from .curves import first_error
from .horizon import (horizon, horizon_in_steps, mean_turn_accuracy, p_before_first_error, per_step_p,
                      theory_horizon)


@dataclass(frozen=True)
class RunSummary:
    """A run's headline numbers, under the paper's names (DESIGN §2; docs/protocol.md)."""

    n_samples: int
    n_turns: int                       # the curves' length: most turns any sample counts at
    first_errors: list[int | None]     # per sample, 1-based; None = no error yet
    mean_answer_accuracy: float | None  # answer == gold, pooled over every counted turn of every sample
    final_task_accuracy: float | None  # task curve at turn n_turns
    mean_turn_accuracy: float | None   # the first fit: mean of every update flag (after first errors too)
    p_before_first_error: float | None  # the second fit: constant hazard of the first error (theory's p)
    horizon_measured: int | None       # H_s in turns from the task curve; None = not (yet) below s
    horizon_theory: float | None       # ln(s) / ln(p_before_first_error), in turns
    s: float
    k: int = 1                         # keys per turn: a turn is k steps
    mean_step_accuracy: float | None = None           # derived: mean_turn_accuracy ** (1 / k)
    p_step_before_first_error: float | None = None    # derived: p_before_first_error ** (1 / k)
    horizon_measured_steps: int | None = None   # horizon_measured * k
    horizon_theory_steps: float | None = None   # ln(s) / ln(p_step_before_first_error) = horizon_theory * k
    n_counted: int = 0                 # samples counted at the last turn (n of the final point)
    no_data: bool = False              # no turn was answered (every request failed): no metrics at all

    @classmethod
    def empty(cls, n_samples: int, s: float = 0.5, k: int = 1) -> RunSummary:
        """The summary of a run with no answered turn: "no data", never 0% (DESIGN §2)."""
        return cls(n_samples=n_samples, n_turns=0, first_errors=[None] * n_samples, mean_answer_accuracy=None,
                   final_task_accuracy=None, mean_turn_accuracy=None, p_before_first_error=None,
                   horizon_measured=None, horizon_theory=None, s=s, k=k, no_data=True)

    @property
    def in_steps(self) -> bool:
        """True when steps differ from turns (K > 1): show both."""
        return self.k > 1


def summarize(correct_by_sample: Sequence[Sequence[bool]],
              update_by_sample: Sequence[Sequence[bool]],
              s: float = 0.5, *, status: Statuses = None, turns: int | None = None, k: int = 1,
              answered: bool | None = None) -> RunSummary:
    """All headline numbers of a run from its per-sample answer-correct and update (turn-accuracy) flags.

    `status` (one per sample) and `turns` (configured): which turns each sample counts at (see _ragged);
    `k`: keys per turn, for the per-step figures. `answered`: whether any turn was answered (a turn whose
    request failed has flags but no answer); None: whether there is any turn. Without one: `RunSummary.empty`."""
    if not (any(len(sample) for sample in correct_by_sample) if answered is None else answered):
        return RunSummary.empty(len(correct_by_sample), s, k)
    flags, mask = to_matrix(correct_by_sample, status, turns)
    n_scored = int(mask.sum())
    task = masked_mean(*curve_flags(correct_by_sample, "task", status, turns))  # an array: no float per turn
    mean_turn = mean_turn_accuracy(update_by_sample, status=status, turns=turns)
    p_hazard = p_before_first_error(correct_by_sample, status=status, turns=turns)
    measured = horizon(task, s)
    theory = theory_horizon(p_hazard, s)
    failed = [status is not None and status[i] == FAILED for i in range(len(correct_by_sample))]
    return RunSummary(
        n_samples=len(correct_by_sample),
        n_turns=flags.shape[1],
        first_errors=[first_error(sample, f) for sample, f in zip(correct_by_sample, failed)],
        mean_answer_accuracy=int((flags & mask).sum()) / n_scored if n_scored else None,
        final_task_accuracy=float(task[-1]) if task.size else None,
        mean_turn_accuracy=mean_turn,
        p_before_first_error=p_hazard,
        horizon_measured=measured,
        horizon_theory=theory,
        s=s,
        k=k,
        mean_step_accuracy=per_step_p(mean_turn, k),
        p_step_before_first_error=per_step_p(p_hazard, k),
        horizon_measured_steps=horizon_in_steps(measured, k),
        horizon_theory_steps=horizon_in_steps(theory, k),
        n_counted=int(mask[:, -1].sum()) if mask.shape[1] else 0,
    )
