"""A long run's decay curves computed at a few turns (compute_decay's `points`, issue 26) are the whole
curves' values at those turns: every curve, the bootstrap band, the theory curve and the counts."""

import random

import pytest

from lhe_tui.analysis.decay_curves import compute_decay, thin_rows
from lhe_tui.metrics import curve_length


def _run(n_samples: int, n_turns: int, seed: int, ragged: bool):
    rng = random.Random(seed)
    correct, update, status = [], [], []
    for i in range(n_samples):
        length = rng.randint(n_turns // 2, n_turns) if ragged else n_turns
        correct.append([rng.random() > 0.01 * (1 + t / 200) for t in range(length)])
        update.append([rng.random() > 0.008 for _ in range(length)])
        status.append("failed" if ragged and i % 3 == 0 and length < n_turns else "finished")
    return correct, update, status


@pytest.mark.parametrize("ragged", [False, True])
@pytest.mark.parametrize("points", [2, 7, 64])
def test_a_thinned_decay_is_the_whole_decay_at_its_turns(ragged, points):
    correct, update, status = _run(9, 700, seed=points, ragged=ragged)
    kw = dict(status=status, turns=700)
    whole = compute_decay(correct, update, with_ci=True, n_boot=50, **kw)
    thin = compute_decay(correct, update, with_ci=True, n_boot=50, points=points, **kw)
    rows = list(thin_rows(len(whole.task), points))
    assert len(rows) <= points and rows[-1] == len(whole.task) - 1 and rows[0] == 0
    assert list(thin.turns) == [r + 1 for r in rows]
    assert thin.last_turn == whole.last_turn == len(whole.task)
    for name in ("task", "turn", "answer", "task_low", "task_high", "theory", "counts"):
        assert getattr(thin, name) == pytest.approx([getattr(whole, name)[r] for r in rows]), name
    assert thin.summary == whole.summary     # the summary counts every turn either way


def test_a_short_run_is_not_thinned():
    correct, update, status = _run(4, 30, seed=1, ragged=False)
    data = compute_decay(correct, update, with_ci=False, points=64)
    assert data.x == [] and list(data.turns) == list(range(1, 31)) and len(data.task) == 30


def test_curve_length_is_the_curves_length():
    correct, _update, status = _run(5, 120, seed=3, ragged=True)
    whole = compute_decay(correct, correct, with_ci=False, status=status)
    assert curve_length(correct, status) == len(whole.task)
    assert curve_length([[True] * 3, [True] * 8]) == 8
