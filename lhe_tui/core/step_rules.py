"""Step rules: which update counts as correct after a turn with no answer (issue 21 §3; docs/protocol.md).

Turn accuracy (the paper's) asks whether the update from turn t-1 to turn t is right, whatever the state at
t-1. All rules agree while the previous turn's history shows an answer (the model's, or the injected,
induced or healed value that replaced it): the turn is right when its answer equals that value plus the
turn's keys (`step_correct`, as the runner stores it). They differ only after turns with no answer shown:

- `own` (the default): the base is the last answer the history shows plus the keys of *every* turn since
  (the stored `step_correct`);
- `reference-live` (the reference's per-turn evaluator): the base is the last answer the history shows (0
  before any) plus only the current turn's keys; a turn with no answer is itself right only when its keys
  sum to 0 and the history shows nothing for it (the evaluator carries the previous value through it);
- `reference-final` (the reference's evaluator of a finished answer list): the turn after one with no
  answer is wrong whatever it answers; the turn after that builds on that answer again.

Under every rule a turn whose answer is not a valid integer is wrong (but for `reference-live`'s
zero-sum case). Pure functions over stored values: the rule can be changed at read time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

STEP_RULES = ("own", "reference-live", "reference-final")
DEFAULT_STEP_RULE = "own"


class ScoredTurn(NamedTuple):
    """What a step rule needs of one stored turn (the store's columns of the same names)."""

    turn: int
    turn_sum: int
    model_answer: int | None
    history_answer: int | None   # the value the history shows for this turn (final: after any injection)
    seen_previous: int | None    # the own rule's base, as the turn was sent
    step_correct: bool           # the own rule's flag, as stored


def check_step_rule(rule: str | None) -> str:
    """`rule`, or the default for None; ValueError (one line) for an unknown name."""
    if rule is None:
        return DEFAULT_STEP_RULE
    if rule not in STEP_RULES:
        raise ValueError(f"unknown step rule {rule!r}; expected one of {', '.join(STEP_RULES)}")
    return rule


def update_flags(turns: Sequence[ScoredTurn], rule: str = DEFAULT_STEP_RULE) -> list[bool]:
    """One sample's turn-accuracy (update) flags under `rule`, its turns in order.

    A sample whose first stored turn is not turn 1 (a target-turn probe: its synthetic history shows an
    answer at every turn) keeps the stored flags, as does any turn whose previous turn showed an answer."""
    rule = check_step_rule(rule)
    if rule == "own":
        return [bool(t.step_correct) for t in turns]
    out: list[bool] = []
    missed = 0              # keys of the turns with no answer shown just before the previous turn
    previous: ScoredTurn | None = None
    for t in turns:
        if previous is not None and t.turn != previous.turn + 1:
            previous, missed = None, 0          # a gap: nothing known about the turns between
        shown_before = previous is None or _showed_answer(previous, t)
        missed = 0 if shown_before else missed + previous.turn_sum   # type: ignore[union-attr]
        if t.model_answer is None:
            flag = rule == "reference-live" and t.history_answer is None and t.turn_sum == 0 and t.turn > 1
        elif shown_before:
            flag = bool(t.step_correct)
        elif rule == "reference-final":
            flag = False
        else:   # reference-live: the last shown answer (the own base less the keys of the missed turns)
            flag = t.seen_previous is not None and t.model_answer == t.seen_previous - missed + t.turn_sum
        out.append(flag)
        previous = t
    return out


def _showed_answer(turn: ScoredTurn, following: ScoredTurn | None) -> bool:
    """Whether the history showed an answer for `turn` when `following` (its next turn) was sent.

    An injection into `turn` made while `following` was in flight did not reach it: then the following
    turn's stored base (`seen_previous`) is not the turn's final history value, and what was shown is the
    model's own answer (None for a miss)."""
    if turn.history_answer is None:
        return False
    if following is None or following.seen_previous is None or following.seen_previous == turn.history_answer:
        return True
    return turn.model_answer is not None


def update_flags_by_sample(by_sample: Sequence[Sequence[ScoredTurn]], rule: str = DEFAULT_STEP_RULE
                           ) -> list[list[bool]]:
    """`update_flags` of every sample."""
    return [update_flags(turns, rule) for turns in by_sample]


def scored(record: Any) -> ScoredTurn:
    """A stored or live turn record (lhe_tui.core.events.TurnRecord) as a step rule reads it."""
    return ScoredTurn(record.turn, record.turn_sum, record.model_answer, record.history_answer,
                      record.seen_previous, bool(record.step_correct))


def update_flag_at(records: Sequence[Any], index: int, rule: str = DEFAULT_STEP_RULE) -> bool:
    """The update flag of `records[index]` (one sample's turn records, in order) under `rule`, reading back
    only over the turns with no answer shown just before it (a table row costs O(1) in a run without misses)."""
    if rule == DEFAULT_STEP_RULE:
        return bool(records[index].step_correct)
    start = index - 1
    while start >= 0 and records[start].history_answer is None:
        start -= 1
    return update_flags([scored(r) for r in records[max(start, 0): index + 1]], rule)[-1]
