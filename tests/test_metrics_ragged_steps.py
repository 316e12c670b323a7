"""Issue 13: ragged samples (a failed sample counts as wrong past its failure) and per-step figures for K>1."""

from __future__ import annotations

import math

import pytest

from lhe_tui.metrics import (bootstrap_ci, mean_turn_accuracy, horizon_in_steps, per_step_p, sample_counts,
                             turn_accuracy, summarize, task_accuracy, answer_accuracy)
from lhe_tui.metrics._ragged import frontier, to_matrix

T, F = True, False


def test_without_status_nothing_is_padded():
    flags = [[T, T, T, T], [T, T]]
    assert sample_counts(flags) == [2, 2, 1, 1]
    assert answer_accuracy(flags) == [1.0, 1.0, 1.0, 1.0]


def test_failed_sample_is_wrong_from_its_failure_to_the_frontier():
    flags = [[T, T, T, T], [T, T], [T]]
    status = ["finished", "failed", "stopped"]
    assert sample_counts(flags, status=status) == [3, 2, 2, 2]     # the stopped one ends at its turn 1
    assert answer_accuracy(flags, status=status) == [1.0, 1.0, 0.5, 0.5]
    assert task_accuracy(flags, status=status) == [1.0, 1.0, 0.5, 0.5]
    assert turn_accuracy(flags, status=status) == [1.0, 1.0, 0.5, 0.5]


def test_frontier_is_the_furthest_turn_reached_capped_at_the_configured_turns():
    # running samples at 3 turns, one failed at its turn 2 (1 stored): padded to turn 3 only, not to 100
    assert frontier([3, 3, 1], ["running", "running", "failed"], turns=100) == 3
    flags, mask = to_matrix([[T, T, T], [T, T, T], [T]], ["running", "running", "failed"], turns=100)
    assert flags.shape == (3, 3) and mask[2].tolist() == [T, T, T] and flags[2].tolist() == [T, F, F]
    # every sample failed: each reached the turn it failed at
    assert frontier([2, 0], ["failed", "failed"], turns=10) == 3
    assert sample_counts([[T, T], []], status=["failed", "failed"], turns=10) == [2, 2, 2]
    assert answer_accuracy([[T, T], []], status=["failed", "failed"], turns=10) == [0.5, 0.5, 0.0]
    # never past the configured turns
    assert frontier([4], ["failed"], turns=4) == 4


def test_a_sample_failed_at_its_first_turn_counts():
    s = summarize([[T, T], []], [[T, T], []], status=["finished", "failed"], turns=2)
    assert s.n_samples == 2 and s.final_task_accuracy == 0.5 and s.horizon_measured is None
    assert s.mean_turn_accuracy == 0.5 and s.first_errors == [None, 1] and s.n_counted == 2


def test_fit_and_bootstrap_take_the_same_rule():
    step = [[T, T, T, T], [T]]
    assert mean_turn_accuracy(step) == 1.0
    assert mean_turn_accuracy(step, status=["finished", "failed"]) == 5 / 8
    low, high = bootstrap_ci(step, "answer", status=["finished", "failed"], n_boot=200)
    assert len(low) == 4 and low[3] == 0.0 and high[3] == 1.0


def test_status_must_line_up_with_samples():
    with pytest.raises(ValueError, match="statuses"):
        sample_counts([[T]], status=["failed", "failed"])


def test_per_step_p_and_horizon_in_steps():
    assert per_step_p(0.81, 2) == pytest.approx(0.9)
    assert per_step_p(0.9, 1) == 0.9 and per_step_p(None, 3) is None
    assert horizon_in_steps(7, 3) == 21 and horizon_in_steps(None, 3) is None
    assert horizon_in_steps(math.inf, 2) == math.inf
    with pytest.raises(ValueError):
        per_step_p(0.5, 0)


def test_summary_per_turn_and_per_step():
    correct = [[T, T, F, F], [T, F, F, F]]
    step = [[T, T, F, T], [T, F, T, T]]
    s1 = summarize(correct, step)
    assert not s1.in_steps and s1.mean_step_accuracy == s1.mean_turn_accuracy and s1.horizon_measured_steps == s1.horizon_measured
    s3 = summarize(correct, step, k=3)
    assert s3.in_steps and s3.horizon_measured == 3 and s3.horizon_measured_steps == 9
    assert s3.mean_turn_accuracy == 0.75 and s3.mean_step_accuracy == pytest.approx(0.75 ** (1 / 3))
    assert s3.horizon_theory_steps == pytest.approx(3 * s3.horizon_theory)
    # the theory's p is p before the first error: first errors at turns 3 and 2, 2 errors in 3 + 2 turns at risk
    assert s3.p_before_first_error == pytest.approx(1 - 2 / 5)
    assert s3.p_step_before_first_error == pytest.approx(0.6 ** (1 / 3))
    # theory in steps from the per-step (derived) p is the same number
    assert s3.horizon_theory_steps == pytest.approx(math.log(0.5) / math.log(0.6 ** (1 / 3)))


def test_live_model_gives_statuses_and_a_failure_recomputes_the_curves():
    from lhe_tui.core.events import SampleFinished
    from lhe_tui.ui.feed import RunModel

    model = RunModel()
    model._ensure(1)
    version = model.flags_version
    model.apply(SampleFinished(sample=1, status="failed", message="gave up"))
    assert model.statuses() == ["pending", "failed"] and model.flags_version > version
    model.undo(SampleFinished(sample=1, status="failed"))
    assert model.statuses()[1] == "running"
