"""Hand-worked checks of lhe_tui.metrics (DESIGN.md section 2). Expected numbers are worked out in comments."""

from __future__ import annotations

import ast
import math
import pathlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lhe_tui.metrics import (
    RunSummary,
    accuracy_at,
    bootstrap_ci,
    first_error,
    mean_turn_accuracy,
    horizon,
    turn_accuracy,
    summarize,
    task_accuracy,
    theory_horizon,
    theory_task_curve,
    answer_accuracy,
)
from lhe_tui.metrics.bootstrap import _percentiles


def flags_from_answers(answers: list[int], values: list[int]) -> tuple[list[bool], list[bool]]:
    """Score answers the way the runner does: turn-correct vs gold prefix sum, step-correct vs own previous answer."""
    correct, step = [], []
    gold = prev = 0
    for answer, value in zip(answers, values):
        gold += value
        correct.append(answer == gold)
        step.append(answer == prev + value)
        prev = answer
    return correct, step


# --- the two hand-worked error patterns -------------------------------------------------------

# Carried error: values 3, 3, 2, 4 -> gold 3, 6, 8, 12. The model answers 3, 5 (new mistake),
# then 7 = 5 + 2 and 11 = 7 + 4: wrong against gold, but right updates of its own history.
CARRIED_ANSWERS, CARRIED_VALUES = [3, 5, 7, 11], [3, 3, 2, 4]
CARRIED_CORRECT = [True, False, False, False]
CARRIED_STEP = [True, False, True, True]

# Recovered error: values 1, 1, 1, 1 -> gold 1, 2, 3, 4. The model answers 1, 5 (wrong),
# then 3 and 4 (right again). Step at turn 3: 3 != 5 + 1 -> False; turn 4: 4 == 3 + 1 -> True.
RECOVERED_ANSWERS, RECOVERED_VALUES = [1, 5, 3, 4], [1, 1, 1, 1]
RECOVERED_CORRECT = [True, False, True, True]
RECOVERED_STEP = [True, False, False, True]


def test_scoring_helper_reproduces_hand_flags() -> None:
    assert flags_from_answers(CARRIED_ANSWERS, CARRIED_VALUES) == (CARRIED_CORRECT, CARRIED_STEP)
    assert flags_from_answers(RECOVERED_ANSWERS, RECOVERED_VALUES) == (RECOVERED_CORRECT, RECOVERED_STEP)


def test_carried_error_is_turn_wrong_but_step_right() -> None:
    assert answer_accuracy([CARRIED_CORRECT]) == [1.0, 0.0, 0.0, 0.0]
    assert turn_accuracy([CARRIED_STEP]) == [1.0, 0.0, 1.0, 1.0]
    assert task_accuracy([CARRIED_CORRECT]) == [1.0, 0.0, 0.0, 0.0]
    assert first_error(CARRIED_CORRECT) == 2
    # 3 of 4 step flags are True -> p = 0.75
    assert mean_turn_accuracy([CARRIED_STEP]) == 0.75


def test_recovered_error_turn_accuracy_recovers_task_accuracy_does_not() -> None:
    assert answer_accuracy([RECOVERED_CORRECT]) == [1.0, 0.0, 1.0, 1.0]
    assert task_accuracy([RECOVERED_CORRECT]) == [1.0, 0.0, 0.0, 0.0]
    assert first_error(RECOVERED_CORRECT) == 2


def test_two_samples_mixed() -> None:
    # carried + recovered: turn = mean of [1,0,0,0] and [1,0,1,1] = [1, 0, .5, .5]
    # step = mean of [1,0,1,1] and [1,0,0,1] = [1, 0, .5, 1]; task = [1, 0, 0, 0]
    correct = [CARRIED_CORRECT, RECOVERED_CORRECT]
    step = [CARRIED_STEP, RECOVERED_STEP]
    assert answer_accuracy(correct) == [1.0, 0.0, 0.5, 0.5]
    assert turn_accuracy(step) == [1.0, 0.0, 0.5, 1.0]
    assert task_accuracy(correct) == [1.0, 0.0, 0.0, 0.0]
    # 5 True step flags out of 8 -> 0.625
    assert mean_turn_accuracy(step) == 0.625


# --- unequal lengths --------------------------------------------------------------------------

# A: T T T F  (4 turns)   B: T F  (2 turns)   C: T T T  (3 turns)
UNEQUAL = [[True, True, True, False], [True, False], [True, True, True]]


def test_turn_accuracy_unequal_lengths_averages_only_samples_that_reached_the_turn() -> None:
    # t1: A,B,C all T -> 3/3; t2: T,F,T -> 2/3; t3: A,C only, T,T -> 2/2; t4: A only, F -> 0/1
    assert answer_accuracy(UNEQUAL) == pytest.approx([1.0, 2 / 3, 1.0, 0.0])


def test_task_accuracy_unequal_lengths() -> None:
    # prefixes: A = T T T F, B = T F, C = T T T
    # t1: 3/3; t2: A T, B F, C T -> 2/3; t3: A T, C T -> 1 (B has stopped, not counted); t4: A F -> 0
    assert task_accuracy(UNEQUAL) == pytest.approx([1.0, 2 / 3, 1.0, 0.0])
    # Not the same as treating B's missing turns as wrong: that would give 2/3 at t3.
    assert task_accuracy(UNEQUAL)[2] != pytest.approx(2 / 3)


def test_task_accuracy_unequal_lengths_differs_from_turn_accuracy() -> None:
    # A: F T T (error, then recovers)   B: T T   -> turn t2 = 2/2, task t2 = A F, B T -> 1/2
    # t3: A only: turn 1/1, task 0/1
    data = [[False, True, True], [True, True]]
    assert answer_accuracy(data) == [0.5, 1.0, 1.0]
    assert task_accuracy(data) == [0.5, 0.5, 0.0]


def test_empty_inputs() -> None:
    assert answer_accuracy([]) == []
    assert turn_accuracy([]) == []
    assert task_accuracy([]) == []
    assert answer_accuracy([[], []]) == []
    assert task_accuracy([[]]) == []
    assert first_error([]) is None
    assert horizon([]) is None
    assert mean_turn_accuracy([]) is None
    assert mean_turn_accuracy([[], []]) is None
    assert theory_task_curve(0.9, 0) == []
    assert bootstrap_ci([], "task") == ([], [])
    assert bootstrap_ci([[]], "answer") == ([], [])
    assert accuracy_at([], 1) is None


def test_zero_length_sample_among_others_is_ignored() -> None:
    assert answer_accuracy([[], [True, False]]) == [1.0, 0.0]
    assert mean_turn_accuracy([[], [True, False]]) == 0.5


def test_numpy_arrays_are_accepted() -> None:
    arr = np.array([[True, False, True], [True, True, True]])
    assert answer_accuracy(arr) == [1.0, 0.5, 1.0]
    assert task_accuracy(list(arr)) == [1.0, 0.5, 0.5]


def test_unknown_kind_raises() -> None:
    with pytest.raises(ValueError):
        bootstrap_ci([[True]], "prefix")  # type: ignore[arg-type]


# --- first error, accuracy_at -----------------------------------------------------------------

def test_first_error() -> None:
    assert first_error([True, True, True]) is None
    assert first_error([False]) == 1
    assert first_error([True, True, False, False, True]) == 3


def test_accuracy_at() -> None:
    curve = [1.0, 0.75, 0.5]
    assert accuracy_at(curve, 1) == 1.0
    assert accuracy_at(curve, 3) == 0.5
    assert accuracy_at(curve, 0) is None
    assert accuracy_at(curve, 4) is None
    assert accuracy_at(curve, -1) is None


# --- horizon ----------------------------------------------------------------------------------

def test_horizon_measured() -> None:
    curve = [1.0, 0.9, 0.5, 0.49, 0.6, 0.1]
    # 0.5 is not below 0.5; first value < 0.5 is 0.49 at turn 4 (later values do not matter)
    assert horizon(curve) == 4
    assert horizon(curve, s=0.95) == 2   # 0.9 < 0.95
    assert horizon(curve, s=0.05) is None
    assert horizon([0.2]) == 1


def test_theory_horizon_paper_value() -> None:
    # ln 0.5 / ln 0.99 = -0.693147 / -0.0100503 = 68.9676
    assert theory_horizon(0.99) == pytest.approx(68.9676, abs=1e-4)
    assert theory_horizon(0.99, s=0.5) == pytest.approx(math.log(0.5) / math.log(0.99))
    # p = 0.5, s = 0.5 -> exactly 1 step; p = 0.9, s = 0.81 -> 2 steps
    assert theory_horizon(0.5) == pytest.approx(1.0)
    assert theory_horizon(0.9, s=0.81) == pytest.approx(2.0)


def test_theory_horizon_edges() -> None:
    assert theory_horizon(None) is None
    assert theory_horizon(1.0) == math.inf
    assert theory_horizon(0.0) == 0.0
    assert theory_horizon(0.9, s=1.0) == 0.0
    assert math.copysign(1.0, theory_horizon(0.9, s=1.0)) == 1.0  # +0.0, not -0.0
    with pytest.raises(ValueError):
        theory_horizon(0.9, s=0.0)
    with pytest.raises(ValueError):
        theory_horizon(float("nan"))


def test_theory_task_curve() -> None:
    # 0.5, 0.25, 0.125, 0.0625 (exact in binary floating point)
    assert theory_task_curve(0.5, 4) == [0.5, 0.25, 0.125, 0.0625]
    assert theory_task_curve(1.0, 3) == [1.0, 1.0, 1.0]
    assert theory_task_curve(0.99, 100)[68] == pytest.approx(0.99 ** 69)
    with pytest.raises(ValueError):
        theory_task_curve(1.5, 3)


def test_theory_curve_crosses_s_at_ceil_of_theory_horizon() -> None:
    # H = 68.97 -> p^68 = 0.5049 >= 0.5, p^69 = 0.4998 < 0.5 -> measured-style horizon 69
    p = 0.99
    assert horizon(theory_task_curve(p, 200)) == math.ceil(theory_horizon(p)) == 69


# --- summary ----------------------------------------------------------------------------------

def test_summarize_hand_case() -> None:
    correct = [CARRIED_CORRECT, RECOVERED_CORRECT, [True, True]]
    step = [CARRIED_STEP, RECOVERED_STEP, [True, True]]
    summary = summarize(correct, step)
    assert isinstance(summary, RunSummary)
    assert summary.n_samples == 3
    assert summary.n_turns == 4
    assert summary.first_errors == [2, 2, None]
    # correct flags: 1 + 3 + 2 = 6 True out of 4 + 4 + 2 = 10 scored turns
    assert summary.mean_answer_accuracy == pytest.approx(0.6)
    # task: t1 3/3, t2 1/3 (only the third sample), t3 0/2, t4 0/2
    assert summary.final_task_accuracy == 0.0
    assert summary.horizon_measured == 2
    # step flags: 3 + 2 + 2 = 7 True out of 10
    assert summary.mean_turn_accuracy == pytest.approx(0.7)
    # first errors at turns 2 and 2, the third sample censored at its last turn 2: 2 errors in 2 + 2 + 2 = 6
    # turns at risk -> p = 1 - 2/6; the theory horizon uses this p, not the mean turn accuracy
    assert summary.p_before_first_error == pytest.approx(2 / 3)
    assert summary.horizon_theory == pytest.approx(math.log(0.5) / math.log(2 / 3))  # 1.710
    assert summary.s == 0.5


def test_summarize_no_error_yet_and_custom_s() -> None:
    summary = summarize([[True] * 5, [True] * 3], [[True] * 5, [True] * 3], s=0.9)
    assert summary.horizon_measured is None
    assert summary.horizon_theory == math.inf
    assert summary.final_task_accuracy == 1.0
    assert summary.first_errors == [None, None]
    assert summary.s == 0.9


def test_summarize_empty() -> None:
    summary = summarize([], [])
    assert summary == RunSummary(
        n_samples=0, n_turns=0, first_errors=[], mean_answer_accuracy=None, final_task_accuracy=None,
        mean_turn_accuracy=None, p_before_first_error=None, horizon_measured=None, horizon_theory=None, s=0.5,
        no_data=True,
    )


# --- bootstrap --------------------------------------------------------------------------------

def _random_flags(n_samples: int, n_turns: int, p: float, seed: int) -> list[list[bool]]:
    return (np.random.default_rng(seed).random((n_samples, n_turns)) < p).tolist()


def test_bootstrap_deterministic_for_a_seed() -> None:
    data = _random_flags(8, 200, 0.9, seed=3)
    first = bootstrap_ci(data, "task", n_boot=300, seed=7)
    assert bootstrap_ci(data, "task", n_boot=300, seed=7) == first
    assert bootstrap_ci(data, "task", n_boot=300, seed=8) != first


@pytest.mark.parametrize("kind", ["answer", "turn", "task"])
def test_bootstrap_brackets_curve(kind: str) -> None:
    data = _random_flags(8, 300, 0.95, seed=11)
    curve = {"answer": answer_accuracy, "turn": turn_accuracy, "task": task_accuracy}[kind](data)
    lo, hi = bootstrap_ci(data, kind, n_boot=500)
    assert len(lo) == len(hi) == len(curve) == 300
    assert all(a <= c <= b for a, c, b in zip(lo, curve, hi))
    # the band is not degenerate: somewhere it has positive width
    assert any(b - a > 0 for a, b in zip(lo, hi))


def test_bootstrap_zero_width_when_all_samples_agree() -> None:
    same = [True, True, False, True, False]
    lo, hi = bootstrap_ci([same] * 6, "answer")
    assert lo == hi == [1.0, 1.0, 0.0, 1.0, 0.0]
    lo, hi = bootstrap_ci([same] * 6, "task")
    assert lo == hi == [1.0, 1.0, 0.0, 0.0, 0.0]


def test_bootstrap_single_sample_is_the_curve() -> None:
    lo, hi = bootstrap_ci([RECOVERED_CORRECT], "answer")
    assert lo == hi == [1.0, 0.0, 1.0, 1.0]
    lo, hi = bootstrap_ci([RECOVERED_STEP], "turn")
    assert lo == hi == [1.0, 0.0, 0.0, 1.0]


def test_bootstrap_two_samples_hand_case() -> None:
    # Samples [T] and [F]: a resample is {T,T}, {T,F}, {F,T} or {F,F} -> mean 1, .5, .5, 0 with
    # probabilities 1/4, 1/2, 1/4. The 2.5% and 97.5% percentiles of 1000 draws are 0 and 1.
    lo, hi = bootstrap_ci([[True], [False]], "answer")
    assert (lo, hi) == ([0.0], [1.0])
    # 90% level: a 5% tail still falls in the {F,F} mass (25%) -> same bounds.
    assert bootstrap_ci([[True], [False]], "answer", level=0.9) == ([0.0], [1.0])


def test_bootstrap_unequal_lengths_uses_only_samples_that_reached_the_turn() -> None:
    # Turn 3 is reached only by sample A (True there): every resample that drew A gives 1.0 and
    # resamples that missed A are left out, so the band at turn 3 is exactly [1, 1].
    # Padding B and C as False would pull the lower bound to 1/3 or below instead.
    data = [[True, True, True], [True, False], [False, True]]
    lo, hi = bootstrap_ci(data, "answer", n_boot=400)
    assert lo[2] == hi[2] == 1.0
    # task, turn 3: A's prefix is True -> also [1, 1]
    lo_t, hi_t = bootstrap_ci(data, "task", n_boot=400)
    assert lo_t[2] == hi_t[2] == 1.0
    assert len(lo) == len(lo_t) == 3


def test_percentiles_match_numpy_quantile() -> None:
    rng = np.random.default_rng(5)
    den = rng.integers(0, 4, size=(200, 30)).astype(float)
    num = np.floor(rng.random((200, 30)) * (den + 1))
    lo, hi = _percentiles(num, den, 0.025, np.zeros(30))
    for col in range(30):
        ok = den[:, col] > 0
        ratios = num[ok, col] / den[ok, col]
        assert lo[col] == pytest.approx(np.quantile(ratios, 0.025))
        assert hi[col] == pytest.approx(np.quantile(ratios, 0.975))


flag_lists = st.lists(st.lists(st.booleans(), max_size=25), max_size=6)


@settings(max_examples=60, deadline=None)
@given(data=flag_lists, kind=st.sampled_from(["answer", "turn", "task"]), seed=st.integers(0, 2**32 - 1),
       level=st.floats(0.5, 0.99))
def test_bootstrap_property_bounds(data: list[list[bool]], kind: str, seed: int, level: float) -> None:
    lo, hi = bootstrap_ci(data, kind, n_boot=200, level=level, seed=seed)  # type: ignore[arg-type]
    curve = task_accuracy(data) if kind == "task" else answer_accuracy(data)
    assert len(lo) == len(hi) == len(curve)
    for a, c, b in zip(lo, curve, hi):
        assert 0.0 <= a <= b <= 1.0
        assert not math.isnan(a) and not math.isnan(b)


@settings(max_examples=60, deadline=None)
@given(data=flag_lists)
def test_property_curves_in_unit_interval_and_task_below_turn(data: list[list[bool]]) -> None:
    turn, task = answer_accuracy(data), task_accuracy(data)
    assert len(turn) == len(task) == max((len(s) for s in data), default=0)
    for t_acc, k_acc in zip(turn, task):
        assert 0.0 <= k_acc <= t_acc <= 1.0
    # with equal lengths the task curve never rises
    if data and len({len(s) for s in data}) == 1:
        assert all(b <= a for a, b in zip(task, task[1:]))


def test_metrics_package_imports_no_textual() -> None:
    package = pathlib.Path(__file__).resolve().parents[1] / "lhe_tui" / "metrics"
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n.split(".")[0] == "textual" for n in names), path
