"""A run's turns, tallied as its writer stores them: what the end of the run stores about the session (its
metrics' per-turn flags and its token totals) without reading every turn back.

Why: the end of a run summed its session from the store, two reads of every turn it played: 20 ms at
64 x 100 turns, 4-8 s at 1,000,000 turns, on the run's event loop (issue 26: a run's cost must not grow
with its length). The tally keeps 2 bytes a turn and the token sums.

It stands for the store only while it has seen every turn of the session, in order: the writer starts one
for a session with no stored turn (not a resumed run, not a fork), and a turn that does not follow its
sample's last one (stored again, skipped, inherited) leaves it `broken`: its writer drops it, and the
store is read as before. So a tally handed on stands for its session's turns.
What it returns is what `flags_by_sample` and `session_token_totals` read from the rows it was given
(tests/test_run_tally.py holds the two to each other).
"""

from __future__ import annotations

from lhe_tui.core.prices import SUMMED_TOKEN_COLUMNS, TokenTotals, totals_from_row
from lhe_tui.task.answer import PROVIDER_FAILED

# Where each column the tally needs sits in a stored row (lhe_tui.store.writer.TURN_COLUMNS order).
_NEEDED = ("sample", "turn", "correct", "step_correct", "answer_status", "inherited") + SUMMED_TOKEN_COLUMNS


class RunTally:
    """A session's turns as its writer stored them: per sample the answer-correct and update flags (a byte
    each a turn), whether any was answered, and the TOTALS_SQL row of their token counts."""

    def __init__(self, n_samples: int, columns: tuple[str, ...]) -> None:
        self.correct = [bytearray() for _ in range(n_samples)]
        self.update = [bytearray() for _ in range(n_samples)]
        self.answered = False     # some turn was answered (ANSWERED_SQL: its answer_status is not "failed")
        self.broken = False
        # The row of TOTALS_SQL: the turns, then each summed column's count of values and total, then the
        # turns missing tokens_in or tokens_out.
        self._totals = [0] * (2 + 2 * len(SUMMED_TOKEN_COLUMNS))
        at = {name: columns.index(name) for name in _NEEDED}
        self._sample, self._turn, self._correct, self._step = (at["sample"], at["turn"], at["correct"],
                                                              at["step_correct"])
        self._status, self._inherited = at["answer_status"], at["inherited"]
        self._summed = tuple(at[name] for name in SUMMED_TOKEN_COLUMNS)
        self._in, self._out = at["tokens_in"], at["tokens_out"]

    def add(self, row: tuple) -> None:
        """One stored turn's row (its values in the writer's column order), after it was committed."""
        if self.broken:
            return
        sample = row[self._sample]
        if not 0 <= sample < len(self.correct) or row[self._turn] != len(self.correct[sample]) + 1 \
                or row[self._inherited]:
            self.broken = True
            return
        self.correct[sample].append(1 if row[self._correct] else 0)
        self.update[sample].append(1 if row[self._step] else 0)
        if row[self._status] != PROVIDER_FAILED:
            self.answered = True
        totals = self._totals
        totals[0] += 1
        for i, at in enumerate(self._summed, 1):
            value = row[at]
            if value is not None:
                totals[2 * i - 1] += 1
                totals[2 * i] += value
        if row[self._in] is None or row[self._out] is None:
            totals[-1] += 1

    def flags(self) -> tuple[list[list[bool]], list[list[bool]]]:
        """(answer-correct, update) flags per sample, as `flags_by_sample(with_empty=True)` reads them under
        the "own" step rule (the stored step_correct)."""
        return ([list(map(bool, flags)) for flags in self.correct],
                [list(map(bool, flags)) for flags in self.update])

    def token_totals(self) -> TokenTotals:
        """The session's token totals, as `session_token_totals` sums them (TOTAL() is a float in SQL: the
        same value for any sum under 2**53, and no count a turn stores is over MAX_REQUEST_TOKENS)."""
        return totals_from_row(tuple(self._totals))
