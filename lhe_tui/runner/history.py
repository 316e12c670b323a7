"""What the model sees: its conversation history under a history policy.

Policies (DESIGN §3): plain (its own answers), healed (gold answers), induced error rate r (each past
answer replaced by a wrong one with probability r, seeded, decided once per answer), sliding window
(only the last w turns), and injections (one answer replaced on request).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from lhe_tui.providers.base import Message
from lhe_tui.task.answer import render_answer
from lhe_tui.task.prompts import user_turn

EMPTY_REPLY = "(no reply)"


@dataclass(slots=True)
class HistoryEntry:
    turn: int
    keys: tuple[str, ...]
    reply_visible: str
    model_answer: int | None
    history_answer: int | None
    gold_sum: int

    def assistant_content(self) -> str:
        if self.history_answer is None or self.history_answer == self.model_answer:
            return self.reply_visible or EMPTY_REPLY
        return render_answer(self.reply_visible, self.history_answer)


def wrong_value(gold: int, rng: random.Random, spread: int = 10) -> int:
    return gold + rng.choice([-1, 1]) * rng.randint(1, spread)


@dataclass(frozen=True)
class HistoryPolicy:
    seed: int = 0
    induced_error_rate: float = 0.0
    heal: bool = False
    window: int | None = None

    def history_answer(self, sample: int, turn: int, model_answer: int | None, gold: int) -> int | None:
        """Decide, once, which answer the model will see for this finished turn."""
        shown = gold if self.heal else model_answer
        if self.induced_error_rate > 0:
            rng = random.Random(f"induced:{self.seed}:{sample}:{turn}")
            if rng.random() < self.induced_error_rate:
                return wrong_value(gold, rng)
        return shown

    def messages(self, system: str, history: list[HistoryEntry], keys: tuple[str, ...]) -> list[Message]:
        visible = history if self.window is None else history[-self.window:] if self.window else []
        messages: list[Message] = [{"role": "system", "content": system}]
        for entry in visible:
            messages.append({"role": "user", "content": user_turn(entry.keys)})
            messages.append({"role": "assistant", "content": entry.assistant_content()})
        messages.append({"role": "user", "content": user_turn(keys)})
        return messages


class MessageLog:
    """One sample's message list, kept between turns: a finished turn appends its two messages.

    `messages(history, keys)` returns exactly `policy.messages(system, history, keys)` (a new list each
    call, so a provider may keep it), but only the entries added since the previous call are rendered:
    O(1) work per turn plus a pointer copy of the messages that are sent, instead of 2t new dicts.
    `invalidate()` (the runner calls it on an injection, which rewrites an entry already rendered), a
    different history list, or a history that got shorter makes the next call rebuild from scratch.
    With a window only the last `window` entries are kept rendered (trimmed in amortised O(1)).
    """

    def __init__(self, policy: HistoryPolicy, system: str) -> None:
        self.policy = policy
        self.system_message: Message = {"role": "system", "content": system}
        self._pairs: list[Message] = []   # user, assistant, user, assistant, ... for history[_first:_covered]
        self._first = 0
        self._covered = 0
        self._history: list[HistoryEntry] | None = None
        self.rebuilds = 0

    def invalidate(self) -> None:
        self._history = None

    def messages(self, history: list[HistoryEntry], keys: tuple[str, ...]) -> list[Message]:
        window = self.policy.window
        if history is not self._history or len(history) < self._covered:
            self._history = history
            self._first = self._covered = 0 if window is None else max(0, len(history) - window)
            self._pairs = []
            self.rebuilds += 1
        pairs = self._pairs
        for entry in history[self._covered:]:
            pairs.append({"role": "user", "content": user_turn(entry.keys)})
            pairs.append({"role": "assistant", "content": entry.assistant_content()})
        self._covered = len(history)
        if window is not None:
            if self._covered - self._first > 2 * window:  # drop what fell out of the window, every ~window turns
                drop = self._covered - window - self._first
                del pairs[:2 * drop]
                self._first += drop
            visible = pairs[max(0, len(pairs) - 2 * window):] if window else []
        else:
            visible = pairs
        return [self.system_message, *visible, {"role": "user", "content": user_turn(keys)}]
