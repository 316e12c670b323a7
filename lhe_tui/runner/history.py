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


@dataclass
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
