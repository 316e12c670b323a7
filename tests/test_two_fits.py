"""The two fits of p (issue 21 §2): the mean turn accuracy, and p before the first error (constant hazard:
1 - first errors / turns at risk, samples that never erred censored at their last turn), which the theory
curve p^t and the theory H_s use."""

from __future__ import annotations

import asyncio
import math

import pytest

from lhe_tui.core.config import RunConfig
from lhe_tui.metrics import (bootstrap_ci, p_before_first_error, p_before_first_error_ci, summarize,
                             theory_task_curve)
from lhe_tui.runs.session import prepare_run
from lhe_tui.store.database import open_database
from lhe_tui.store.queries import session_flags

T, F = True, False
RATE = 0.01     # the sim's per-turn error rate, constant: no growth, no self-conditioning, no format misses


def test_constant_hazard_by_hand():
    # first errors at turns 2 and 4; a sample that never erred is censored at its last turn (3):
    # 2 errors in 2 + 4 + 3 = 9 turns at risk -> p = 1 - 2/9. The turns after a first error do not count.
    correct = [[T, F, T, T, T], [T, T, T, F, F], [T, T, T]]
    assert p_before_first_error(correct) == pytest.approx(1 - 2 / 9)
    # a failed sample with every stored answer right erred at the turn it failed at (4), counting 4 at risk
    assert p_before_first_error([[T, T, T], [T, F]], status=["failed", "finished"], turns=5) == pytest.approx(1 - 2 / 6)
    # a stopped one is censored at its last turn: 1 error in 3 + 2 turns
    assert p_before_first_error([[T, T, T], [T, F]], status=["stopped", "finished"], turns=5) == pytest.approx(1 - 1 / 5)
    assert p_before_first_error([]) is None and p_before_first_error([[], []]) is None
    assert p_before_first_error_ci([[T] * 4] * 3) == (1.0, 1.0)   # no error anywhere: every resample says 1


def sim_flags(tmp_path, seed: int, conditioning: float):
    db = open_database(tmp_path / f"sim-{seed}-{conditioning}.db")
    config = RunConfig(provider="sim", turns=120, samples=50, seed=seed, sim_delay=0.0, sim_base_error=RATE,
                       sim_growth=0.0, sim_conditioning=conditioning, sim_format_miss=0.0)
    prepared = prepare_run(config, db)
    asyncio.run(prepared.runner.run())
    return session_flags(db, prepared.session_id)


def test_with_a_constant_error_rate_the_fit_recovers_it_and_the_theory_lies_in_the_task_band(tmp_path):
    flags = sim_flags(tmp_path, seed=1, conditioning=0.0)
    ragged = dict(status=flags.status, turns=flags.turns)
    summary = summarize(flags.correct, flags.update, **ragged)
    low, high = p_before_first_error_ci(flags.correct, **ragged)
    assert low <= 1 - RATE <= high
    assert high - low < 0.01                                   # and the interval says something
    band_low, band_high = bootstrap_ci(flags.correct, "task", n_boot=1000, **ragged)
    theory = theory_task_curve(summary.p_before_first_error, len(band_low))
    outside = [t for t, (a, p, b) in enumerate(zip(band_low, theory, band_high), 1) if not a - 1e-12 <= p <= b + 1e-12]
    assert outside == []
    assert summary.horizon_theory == pytest.approx(math.log(0.5) / math.log(summary.p_before_first_error))


def test_with_self_conditioning_the_mean_turn_accuracy_is_lower_than_p_before_the_first_error(tmp_path):
    flags = sim_flags(tmp_path, seed=1, conditioning=0.6)
    ragged = dict(status=flags.status, turns=flags.turns)
    summary = summarize(flags.correct, flags.update, **ragged)
    # after a first error the history holds an inconsistent step: the sim errs more often from then on
    assert summary.mean_turn_accuracy < summary.p_before_first_error
    low, high = p_before_first_error_ci(flags.correct, **ragged)
    assert low <= 1 - RATE <= high                             # before the first error the rate is still RATE
    assert summary.mean_turn_accuracy < low
    # the theory curve from the mean turn accuracy would fall far below the measured task curve
    band_low, _ = bootstrap_ci(flags.correct, "task", n_boot=1000, **ragged)
    wrong_theory = theory_task_curve(summary.mean_turn_accuracy, len(band_low))
    assert sum(p < a for a, p in zip(band_low, wrong_theory)) > len(band_low) // 2
