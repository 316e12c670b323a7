"""The running base of a sample's update score (DESIGN §2, turn accuracy, the own step rule).

Kept apart from the runner, which advances it turn by turn and anchors it on injections, because it is
a scoring rule with a twin: lhe_tui.store.schema's m003 migration replays the same rule over stored turns.
"""

from __future__ import annotations

from lhe_tui.runner.history import HistoryEntry


class StepBase:
    """The base a turn's update score builds on (DESIGN §2, turn accuracy, the own step rule): the model's
    own last valid answer as its history shows it (`HistoryEntry.history_answer`: injected, induced or healed where the policy
    replaced it; 0 before the first), plus the values of every key of the turns since that answer.

    `value` is that base before the next turn; the update is right (`step_correct`) when its answer equals
    `value + turn_sum`. O(1) per turn: `advance` after each turn, `anchor` when the latest entry's
    history answer is replaced (an injection). lhe_tui.store.schema's m003 migration replays this rule
    over stored turns; keep the two in step.
    """

    __slots__ = ("last", "since")

    def __init__(self, last: int = 0, since: int = 0) -> None:
        self.last = last      # the last valid answer the history shows (0 at the start)
        self.since = since    # sum of the keys of the turns after that answer (turns with no answer shown)

    @property
    def value(self) -> int:
        return self.last + self.since

    def advance(self, history_answer: int | None, turn_sum: int) -> None:
        if history_answer is None:
            self.since += turn_sum
        else:
            self.anchor(history_answer)

    def anchor(self, history_answer: int) -> None:
        self.last, self.since = history_answer, 0

    @classmethod
    def from_history(cls, entries: list[HistoryEntry]) -> StepBase:
        base = cls()
        previous_gold = 0
        for entry in entries:   # once, when a runner starts from a stored or synthetic history
            base.advance(entry.history_answer, entry.gold_sum - previous_gold)
            previous_gold = entry.gold_sum
        return base
