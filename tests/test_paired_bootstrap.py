"""Paired bootstrap of the difference between two arms over the same samples (issue 15)."""

import random

import pytest

from lhe_tui.metrics import (first_errors_or_end, paired_difference, paired_horizon_difference,
                             paired_mean_difference)


def arm_a(n_samples=60, n_turns=30, seed=5):
    rng = random.Random(seed)
    out = []
    for _ in range(n_samples):
        first = rng.randint(3, 45)          # each sample right until its first error, then a coin
        out.append([t < first or rng.random() < 0.6 for t in range(1, n_turns + 1)])
    return out


FLIPPED = range(0, 12)   # arm B = arm A with these samples wrong from turn 10 on


def arm_b(a):
    return [[flag and not (i in FLIPPED and t >= 10) for t, flag in enumerate(sample, 1)] for i, sample in enumerate(a)]


def test_paired_ci_covers_the_known_difference_and_is_narrower_than_unpaired():
    a = arm_a()
    b = arm_b(a)
    at = [5, 10, 20, 30]
    paired = {r.turn: r for r in paired_difference(a, b, "turn", at, n_boot=2000, seed=1)}
    unpaired = {r.turn: r for r in paired_difference(a, b, "turn", at, n_boot=2000, seed=1, paired=False)}
    for t in at:
        lost = sum(a[i][t - 1] for i in FLIPPED) if t >= 10 else 0   # B lost the flipped samples' right answers
        known = -lost / len(a)
        assert paired[t].diff == pytest.approx(known)
        assert paired[t].covers(known), (t, paired[t])
        assert paired[t].n == len(a)
        assert paired[t].n_differ == lost
    # Before the flip the arms agree on every sample: the paired interval is exactly [0, 0], an unpaired one is not.
    assert (paired[5].low, paired[5].high) == (0.0, 0.0)
    assert unpaired[5].width > 0.1
    # Pairing cancels what the arms share: the more arm A itself varies at a turn (turn 30: ~70% right), the
    # more the unpaired interval is wider; where A is nearly constant (turn 10: 98%) they are about equal.
    assert paired[10].width <= unpaired[10].width + 1e-9
    assert paired[20].width < unpaired[20].width
    assert paired[30].width < unpaired[30].width / 1.5, (paired[30], unpaired[30])
    # The flipped samples make B strictly worse where a flipped sample was right in A: the interval excludes 0.
    assert paired[10].high < 0


def test_task_accuracy_difference_and_determinism():
    a = arm_a()
    b = arm_b(a)
    one = paired_difference(a, b, "task", [10, 20], n_boot=500, seed=7)
    two = paired_difference(a, b, "task", [10, 20], n_boot=500, seed=7)
    assert one == two                                    # a fixed seed gives the same interval
    for r in one:
        prefix = lambda s: all(s[: r.turn])              # noqa: E731
        known = (sum(map(prefix, b)) - sum(map(prefix, a))) / len(a)
        assert r.diff == pytest.approx(known) and r.covers(known)
    other = paired_difference(a, b, "task", [10, 20], n_boot=500, seed=8)
    assert [r.low for r in other] != [r.low for r in one] or [r.high for r in other] != [r.high for r in one]


def test_ragged_pairs_count_only_where_both_arms_count():
    a = [[True] * 10, [True] * 10, [True] * 4]           # sample 2 stopped at turn 4 in A
    b = [[True] * 10, [False] * 10, [True] * 10]
    rows = paired_difference(a, b, "turn", [3, 8, 11], status_a=["finished", "finished", "stopped"],
                             status_b=["finished"] * 3, turns=10, n_boot=200)
    assert rows[0].n == 3 and rows[0].diff == pytest.approx(-1 / 3)
    assert rows[1].n == 2 and rows[1].diff == pytest.approx(-1 / 2)   # the stopped sample's pair is left out
    assert rows[2].n == 0 and rows[2].diff is None                   # beyond the run
    # a failed sample counts as wrong past its failure, in its arm
    failed = paired_difference([[True] * 10, [True] * 3], [[True] * 10, [True] * 10], "turn", [8],
                               status_a=["finished", "failed"], status_b=["finished"] * 2, turns=10, n_boot=200)
    assert failed[0].n == 2 and failed[0].diff == pytest.approx(0.5)


def test_arms_of_different_sizes_are_refused():
    with pytest.raises(ValueError, match="same ones"):
        paired_difference([[True]], [[True], [False]], "turn", [1])


def test_first_error_and_horizon_differences():
    a = arm_a()
    b = arm_b(a)
    fa, fb = first_errors_or_end(a), first_errors_or_end(b)
    mean = paired_mean_difference(fa, fb, n_boot=1000)
    known = (sum(fb) - sum(fa)) / len(a)
    assert known < 0 and mean.diff == pytest.approx(known) and mean.covers(known)
    assert mean.n_differ == sum(1 for x, y in zip(fa, fb) if x != y)
    # no error at all: counted as erring after the last turn
    assert first_errors_or_end([[True, True], [True, False], []]) == [3.0, 2.0, None]
    h = paired_horizon_difference(a, b, n_boot=500)
    assert h.a is not None and h.b is not None and h.b <= h.a and h.diff == h.b - h.a
    assert h.low is not None and h.low <= h.diff <= h.high
    same = paired_horizon_difference(a, a, n_boot=200)
    assert (same.diff, same.low, same.high) == (0.0, 0.0, 0.0)
