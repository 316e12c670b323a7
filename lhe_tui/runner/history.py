"""What the model sees: its conversation history under a history policy.

Policies (DESIGN §3): plain (its own answers), healed (gold answers), induced error rate r (each past
answer replaced by a wrong one with probability r, seeded, decided once per answer), sliding window
(only the last w turns), and injections (one answer replaced on request).

How a finished turn reads in the history (the whole reply, or only its answer tag; placeholders for a
reply without a tag) is the session's protocol's rule (lhe_tui.task.protocol); the user turns are the
prompt template's (lhe_tui.task.templates).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from typing import TYPE_CHECKING

from lhe_tui.providers.base import Message
from lhe_tui.task.prompts import user_turn
from lhe_tui.task.protocol import DEFAULT_PROTOCOL, NO_PLACEHOLDERS, Placeholders, Protocol, get_protocol

if TYPE_CHECKING:
    from lhe_tui.core.config import RunConfig
    from lhe_tui.task.model import Task


@dataclass(slots=True)
class HistoryEntry:
    turn: int
    keys: tuple[str, ...]
    reply_visible: str
    model_answer: int | None
    history_answer: int | None
    gold_sum: int


def wrong_value(gold: int, rng: random.Random, spread: int = 10) -> int:
    return gold + rng.choice([-1, 1]) * rng.randint(1, spread)


@dataclass(frozen=True)
class HistoryPolicy:
    seed: int = 0
    induced_error_rate: float = 0.0
    heal: bool = False
    window: int | None = None
    protocol: str = DEFAULT_PROTOCOL
    mode: str = "direct"
    placeholders: Placeholders = NO_PLACEHOLDERS
    """The prompt template's history placeholders (a reply with no answer, an empty one)."""
    turn_text: Callable[[Sequence[str]], str] = field(default=user_turn, compare=False)
    """Renders a turn's keys as its user message (the prompt template's `turn`)."""
    _rules: Protocol = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_rules", get_protocol(self.protocol))

    def assistant_content(self, entry: HistoryEntry) -> str:
        """The assistant message the model sees for a finished turn, under the session's protocol."""
        return self._rules.history_text(entry.reply_visible, self.mode, entry.model_answer, entry.history_answer,
                                        self.placeholders)

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
            messages.append({"role": "user", "content": self.turn_text(entry.keys)})
            messages.append({"role": "assistant", "content": self.assistant_content(entry)})
        messages.append({"role": "user", "content": self.turn_text(keys)})
        return messages


def conversation(config: RunConfig, task: Task) -> tuple[HistoryPolicy, str]:
    """The history policy and the system prompt of a run of `config` over `task`: what the runner sends, and
    what `lhe_tui.runs.turn_request` rebuilds a stored turn's request with."""
    template = config.template()
    policy = HistoryPolicy(seed=config.seed, induced_error_rate=config.induced_error_rate, heal=config.heal,
                           window=config.window, protocol=config.protocol, mode=config.mode,
                           placeholders=template.placeholders,
                           turn_text=template.turn_renderer(task.dictionary, task.k, config.mode))
    return policy, template.system(task.dictionary, task.k, config.mode)


class MessageLog:
    """One sample's message list, kept between turns: a finished turn appends its two messages.

    `messages(history, keys)` returns a list equal to `policy.messages(system, history, keys)`, but only the
    entries added since the previous call are rendered: O(1) work per turn instead of 2t new dicts.
    Without a window the list handed out is the log's own, grown in place by the next call (the pending
    user turn at its end replaced by the finished turn's pair and the next one): a new list of 2t
    references every turn costs O(t), and touching every message's reference count each turn evicts
    everything else from the CPU's caches (the whole engine's turn cost twice as much at turn 10,000 as
    at turn 10; issue 26). So a provider may read the list during its call (the runner sends a sample's
    next request only after it returns) but must copy what it keeps. `invalidate()` (the runner calls it
    on an injection, which rewrites an entry already rendered), a different history list, or a history
    that got shorter makes the next call rebuild from scratch, into a new list (the one handed out before
    is not changed again). With a window only the last `window` entries are kept rendered (trimmed in
    amortised O(1)), and each call returns a new list of at most 2 * window + 2 messages.
    """

    def __init__(self, policy: HistoryPolicy, system: str) -> None:
        self.policy = policy
        self.system_message: Message = {"role": "system", "content": system}
        # Rendered turns: without a window [system, user, assistant, ...] for history[:_covered] (plus the
        # pending user turn at the end while `_pending`); with one, user, assistant, ... for
        # history[_first:_covered].
        self._pairs: list[Message] = []
        self._pending = False
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
            self._pairs = [self.system_message] if window is None else []
            self._pending = False
            self.rebuilds += 1
        pairs = self._pairs
        if self._pending:
            pairs.pop()
        turn_text, assistant_content = self.policy.turn_text, self.policy.assistant_content
        for entry in history[self._covered:]:
            pairs.append({"role": "user", "content": turn_text(entry.keys)})
            pairs.append({"role": "assistant", "content": assistant_content(entry)})
        self._covered = len(history)
        pending: Message = {"role": "user", "content": turn_text(keys)}
        if window is None:
            pairs.append(pending)
            self._pending = True
            return pairs
        if self._covered - self._first > 2 * window:  # drop what fell out of the window, every ~window turns
            drop = self._covered - window - self._first
            del pairs[:2 * drop]
            self._first += drop
        visible = pairs[max(0, len(pairs) - 2 * window):] if window else []
        return [self.system_message, *visible, pending]
