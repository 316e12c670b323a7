"""Early stopping (`--until`): spend only the turns the measurement needs.

- `first-error[+N]`: each sample stops N turns after its own first error (N = 0: at it). Its task accuracy
  is 0 from its first error on whatever comes later, so task accuracy, first errors and H_s stay exact; its
  turn accuracy is measured up to where it stopped.
- `horizon[:S]` (S default 0.5): the run stops once H_S is decided. Task accuracy can only fall: H_S is the
  first turn t at which fewer than S·n samples are error-free through t. The first errors known so far give
  a bound: the first turn at which fewer than S·n samples *can* still be error-free; errors to come can only
  make H_S earlier. A sample stops at its first error (its task accuracy is 0 from then on, whatever follows)
  or once it has played the bound; the others play on. When no sample can err before the bound any more,
  H_S is the bound (decided), and the stored task curve, exact up to it, gives the same H_S as the whole run.
  When S·n samples have played every turn without an error, H_S never drops within the run: all stop.

A sample stopped this way ends with status `early` (stopped by design), never `stopped` (by the user): the
metrics count an early sample that erred as wrong (task accuracy) past its last turn, and the lists tell
the two apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

EARLY = "early"
"""The sample status of a sample stopped by its --until rule."""


@dataclass(frozen=True)
class Until:
    kind: str            # "first-error" or "horizon"
    after: int = 0       # first-error+N: the turns played after the first error
    s: float = 0.5       # horizon:S

    @classmethod
    def parse(cls, text: str) -> Until:
        """`first-error`, `first-error+N`, `horizon`, `horizon:S`; ValueError (one line) otherwise."""
        given = text.strip()
        name, plus, after = given.partition("+")
        if name == "first-error":
            if not plus:
                return cls("first-error")
            if after.isdigit() and int(after) <= 1_000_000:
                return cls("first-error", after=int(after))
            raise ValueError(f"--until first-error+N expects a whole number N >= 0, got {given!r}")
        name, colon, s = given.partition(":")
        if name == "horizon" and not plus:
            if not colon:
                return cls("horizon")
            try:
                value = float(s)
            except ValueError:
                value = math.nan
            if 0 < value < 1:
                return cls("horizon", s=value)
            raise ValueError(f"--until horizon:S expects S between 0 and 1 (exclusive), got {given!r}")
        raise ValueError(f"--until expects first-error, first-error+N, horizon or horizon:S, got {given!r}")

    def text(self) -> str:
        if self.kind == "first-error":
            return "first-error" + (f"+{self.after}" if self.after else "")
        return "horizon" + (f":{self.s:g}" if self.s != 0.5 else "")

    def describe(self) -> str:
        if self.kind == "first-error":
            return ("each sample stops at its first error" if not self.after else
                    f"each sample stops {self.after} turn{'s' if self.after != 1 else ''} after its first error")
        return f"the run stops once H_{self.s:g} is decided"


class HorizonWatch:
    """What the horizon rule knows: per sample, the turns played and the first error (None: none yet).

    `bound`: the first turn at which fewer than S·n samples can still be error-free, from the first errors
    known so far. Errors still to come can only make H_S earlier, so H_S <= bound; once no sample can err
    before it any more, H_S = bound (decided). A sample may stop once it has erred (its task accuracy is 0
    from then on) or has played `bound`; when S·n samples have played every turn without an error, H_S is
    decided never to drop within the run, and every sample may stop."""

    def __init__(self, n_samples: int, turns: int, s: float) -> None:
        self.turns = turns
        self.need = s * n_samples              # error-free samples needed to keep task accuracy at or above s
        self.played = [0] * n_samples
        self.first_error: list[int | None] = [None] * n_samples
        self.bound: int | None = None
        self.never = False                     # S·n samples played every turn without an error

    def record(self, sample: int, turn: int, correct: bool) -> None:
        self.played[sample] = max(self.played[sample], turn)
        if not correct and self.first_error[sample] is None:
            self.first_error[sample] = turn
            self.bound = self._bound()
        if not self.never:
            clean = sum(1 for p, f in zip(self.played, self.first_error) if f is None and p >= self.turns)
            self.never = clean >= self.need

    def _bound(self) -> int | None:
        n = len(self.played)
        errors = sorted(f for f in self.first_error if f is not None)
        for count, turn in enumerate(errors, start=1):
            last_at_turn = count == len(errors) or errors[count] != turn
            if last_at_turn and n - count < self.need:
                return turn
        return None

    def failed(self, sample: int) -> None:
        """The sample's provider gave up: the metrics count it wrong from the turn it failed at."""
        self.record(sample, self.played[sample] + 1, False)

    @property
    def decided(self) -> int | None:
        """H_S once it is decided (0: it never drops within the run); None while it is not."""
        if self.never:
            return 0
        bound = self.bound
        if bound is not None and all(f is not None or p >= bound - 1 for p, f in zip(self.played, self.first_error)):
            return bound
        return None

    def done(self, sample: int) -> bool:
        """Whether `sample` may stop now, at a turn boundary, without changing H_S."""
        return (self.never or self.first_error[sample] is not None
                or (self.bound is not None and self.played[sample] >= self.bound))

    def verdict(self) -> str:
        decided = self.decided
        if decided is None:
            return ""
        if decided == 0:
            return f"H not reached within {self.turns} turns"
        return f"H decided at turn {decided}"


def done_after_first_error(rule: Until, played: int, first_error: int | None) -> bool:
    """first-error+N: the sample has played N turns past its first error."""
    return first_error is not None and played >= first_error + rule.after


def running_share(rule: Until, p_turn: float, turns: int) -> list[float]:
    """The expected share of samples still sent turn t (t = 1..turns) under `rule`, for a constant per-turn
    accuracy p_turn and no self-conditioning: what --estimate prices the rule with. Horizon: every sample up
    to the theory's H_s = ln(s)/ln(p) (the decision comes about there), none after: an approximation."""
    p = min(max(p_turn, 0.0), 1.0)
    if rule.kind == "first-error":
        # turn t is sent while the first error F is at or after t - N: P(F >= j) = p^(j-1) for j >= 1
        return [1.0 if t - rule.after <= 1 else p ** (t - rule.after - 1) for t in range(1, turns + 1)]
    if p >= 1.0:
        return [1.0] * turns
    horizon = 1.0 if p <= 0.0 else math.log(rule.s) / math.log(p)
    return [1.0 if t <= math.ceil(horizon) else 0.0 for t in range(1, turns + 1)]
