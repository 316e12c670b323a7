"""The accuracy-decay numbers of a run, from its per-sample flags: task, turn and answer accuracy, the task
curve's bootstrap band, the theory curve p^t from p before the first error, and the summary (H_s, both p).

One function for the live view's decay plot and the publication figure (lhe_tui.reports.figures). Pure, so it may
run on a thread; numpy comes with lhe_tui.metrics, imported on the first call, not with this module (the
run screen imports it before its first frame)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lhe_tui.metrics import RunSummary

N_BOOT = 200


@dataclass(frozen=True)
class DecayData:
    summary: RunSummary
    turn: list[float]          # turn accuracy (the paper's: update flags under the step rule)
    answer: list[float]        # answer accuracy (answer == gold; secondary)
    task: list[float]
    task_low: list[float] | None
    task_high: list[float] | None
    theory: list[float]        # p^t, p before the first error
    counts: list[int] = field(default_factory=list)   # samples each point counts
    x: Sequence[int] = ()      # each point's turn (1-based); empty: every turn, 1..len(task)

    @property
    def turns(self) -> Sequence[int]:
        """Each point's turn number."""
        return self.x or range(1, len(self.task) + 1)

    @property
    def last_turn(self) -> int:
        return self.x[-1] if self.x else len(self.task)


def thin_rows(n: int, most: int) -> Sequence[int]:
    """The rows (0-based) of `n` that at most `most` evenly spaced points take (always the last one)."""
    if n <= most or most < 2:
        return range(n)
    stride = n / (most - 1)
    return sorted({min(n - 1, int(i * stride)) for i in range(most - 1)} | {n - 1})


def compute_decay(correct: list[list[bool]], update: list[list[bool]], *, with_ci: bool = True,
                  n_boot: int = N_BOOT, seed: int = 0, status: Sequence[str] | None = None,
                  turns: int | None = None, k: int = 1, answered: bool | None = None,
                  points: int | None = None) -> DecayData:
    """Pure: safe to run in a thread. Bootstrap only with several samples (and when asked). `status`,
    `turns`: which turns each sample counts at (a failed one: wrong past its failure), as in the CLI.
    `answered`: whether any turn was answered (summarize's); without one, no curves ("no data").
    `points`: at most this many evenly spaced turns (the last always), each what it is in the whole curve,
    for a view that draws no more: a live run of 10,000 turns then makes no list of 10,000 floats per
    curve twice a second (issue 26: that churn kept the UI's memory growing). The summary counts every turn."""
    # numpy (0.3 s to import) comes with the metrics: not before the run screen's first frame.
    from lhe_tui.metrics import (answer_accuracy, bootstrap_ci, curve_length, sample_counts, summarize,
                                 task_accuracy, theory_task_curve, turn_accuracy)

    ragged = dict(status=status, turns=turns)
    summary = summarize(correct, update, k=k, answered=answered, **ragged)
    if summary.no_data:
        return DecayData(summary=summary, turn=[], answer=[], task=[], task_low=None, task_high=None, theory=[])
    n = curve_length(correct, **ragged)
    at = None if points is None or n <= points else list(thin_rows(n, points))
    task = task_accuracy(correct, at=at, **ragged)
    low = high = None
    if with_ci and sum(1 for c in correct if c) > 1 and task:
        low, high = bootstrap_ci(correct, "task", n_boot=n_boot, seed=seed, at=at, **ragged)
    p = summary.p_before_first_error
    theory = theory_task_curve(p, n, at) if p is not None else []
    return DecayData(summary=summary, turn=turn_accuracy(update, at=at, **ragged),
                     answer=answer_accuracy(correct, at=at, **ragged), task=task, task_low=low, task_high=high,
                     theory=theory, counts=sample_counts(correct, at=at, **ragged),
                     x=[] if at is None else [i + 1 for i in at])
