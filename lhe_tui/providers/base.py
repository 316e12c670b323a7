"""The one small async interface every model provider implements."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from lhe_tui.core.bounds import MAX_REQUEST_TOKENS

if TYPE_CHECKING:
    from lhe_tui.core.events import EventBus
    from lhe_tui.task.model import Task

DeltaKind = Literal["text", "reasoning"]
OnDelta = Callable[[DeltaKind, str], None]
Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": str}


DEFAULT_DEADLINE = 1800.0         # seconds for a whole request, its stream included (--deadline)
DEFAULT_MAX_REPLY = 4_000_000     # characters of reply and reasoning (--max-reply-mb 4)


SECRET_ENV = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")
REDACTED = "[redacted]"
_NOT_SECRETS = {"no-key-needed"}


def secrets_in_use(*keys: str | None) -> tuple[str, ...]:
    """The API keys to keep out of everything stored, exported, shown or printed: `keys` (a provider's
    own) and those the environment configures. Very short values are left alone (redacting "k" would
    mangle every text)."""
    found = (*keys, *(os.environ.get(name) for name in SECRET_ENV))
    return tuple(dict.fromkeys(k for k in found if k and len(k) >= 8 and k not in _NOT_SECRETS))


def redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class StreamRedactor:
    """`redact` over a stream of deltas: a secret split across deltas is redacted too. `feed` returns what
    can be shown now and holds back the end that could begin a secret (shorter than the longest secret)
    until the next delta or `flush` (the stream's end)."""

    __slots__ = ("secrets", "_held")

    def __init__(self, secrets: tuple[str, ...]) -> None:
        self.secrets = secrets
        self._held = ""

    def feed(self, text: str) -> str:
        text = redact(self._held + text, self.secrets)
        keep = 0
        for secret in self.secrets:   # the longest end of `text` that a secret starts with
            start = max(0, len(text) - len(secret) + 1)
            while (start := text.find(secret[0], start)) != -1:
                if secret.startswith(text[start:]):
                    keep = max(keep, len(text) - start)
                    break
                start += 1
        self._held = text[len(text) - keep:] if keep else ""
        return text[:len(text) - keep] if keep else text

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held


class ReplyTooLarge(Exception):
    """The reply passed the size cap: reading stops there, and the runner scores the turn a format miss."""


@dataclass(frozen=True)
class RequestMeta:
    """Where a request sits in the run; real providers ignore it, the simulator seeds from it."""

    sample_index: int
    turn: int
    attempt: int = 0


@dataclass(frozen=True)
class GenerationSettings:
    mode: Literal["direct", "cot", "thinking"] = "direct"
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    reasoning_effort: str = "medium"     # OpenAI reasoning models, mode=thinking
    thinking_budget: int = 2048          # Anthropic extended thinking, mode=thinking
    timeout: float = 120.0               # seconds of silence before a request is given up (idle timeout)
    deadline: float = DEFAULT_DEADLINE   # seconds for the whole request, stream included
    max_reply_chars: int = DEFAULT_MAX_REPLY  # reply + reasoning; beyond it reading stops (a format miss)
    enable_thinking: bool | None = None  # OpenAI-compatible: chat_template_kwargs.enable_thinking (None: not sent)
    extra_body: Mapping[str, Any] = field(default_factory=dict)  # merged into every request body
    prompt_cache: bool = True            # Anthropic: cache_control breakpoints (--no-cache: none)

    def extra_fields(self) -> dict[str, Any]:
        """The body fields beyond the standard ones: `extra_body`, with `enable_thinking` merged into its
        `chat_template_kwargs` (the switch wins over the same key given in `extra_body`)."""
        fields = dict(self.extra_body)
        if self.enable_thinking is not None:
            kwargs = fields.get("chat_template_kwargs")
            fields["chat_template_kwargs"] = {**(kwargs if isinstance(kwargs, dict) else {}),
                                              "enable_thinking": self.enable_thinking}
        return fields


@dataclass
class Reply:
    text: str                  # visible reply, reasoning removed (what goes back into the history)
    reasoning: str = ""        # provider-native reasoning or <think> blocks
    tokens_in: int | None = None         # every input token of the request, cached and cache-written included
    tokens_out: int | None = None        # every output token, reasoning included
    latency_s: float = 0.0
    finish_reason: str | None = None
    extra: dict[str, object] = field(default_factory=dict)
    cut_off: str | None = None  # why reading stopped early (the reply passed the size cap): a format miss
    # The parts of those counts the server reports (None: not reported, never 0):
    tokens_cached: int | None = None       # input read from the prompt cache (OpenAI cached_tokens, Anthropic cache reads)
    tokens_cache_write: int | None = None  # input written to the prompt cache (Anthropic cache_creation_input_tokens)
    tokens_reasoning: int | None = None    # output spent on reasoning (OpenAI reasoning_tokens)


_COUNT_FIELDS = {"tokens_in": "input", "tokens_out": "output", "tokens_cached": "cached input",
                 "tokens_cache_write": "cache-write input", "tokens_reasoning": "reasoning"}


def distrust_counts(reply: Reply) -> str | None:
    """Usage counts are the server's word: a count that is not a whole number from 0 to MAX_REQUEST_TOKENS
    (negative, fractional, absurd, not a number) is set to None on `reply`, as if not reported (the budget
    then counts the request's estimate). Returns what was dropped, in one line, or None when all were fine."""
    dropped = []
    for name, label in _COUNT_FIELDS.items():
        value = getattr(reply, name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_REQUEST_TOKENS:
            shown = repr(value)
            dropped.append(f"{label} {shown if len(shown) <= 24 else shown[:21] + '...'}")
            setattr(reply, name, None)
    if not dropped:
        return None
    if reply.tokens_in is None or reply.tokens_out is None:   # parts without their whole mean nothing
        reply.tokens_cached = reply.tokens_cache_write = reply.tokens_reasoning = None
    return (f"the server's usage is not believed ({', '.join(dropped)}: not a count from 0 to "
            f"{MAX_REQUEST_TOKENS:,}); the turn's tokens are not reported and its estimate counts for the budget")


class Provider(ABC):
    """Streams one reply for a list of messages, reporting deltas as they arrive."""

    name: str = "provider"
    simulated: bool = False
    api_key: str | None = None  # redacted from whatever a server sends back (secrets_in_use)

    def __init__(self, model: str, settings: GenerationSettings) -> None:
        self.model = model
        self.settings = settings

    @property
    def label(self) -> str:
        suffix = " (simulated)" if self.simulated else ""
        return f"{self.name}:{self.model}{suffix}"

    def bind_task(self, task: Task) -> None:
        """The run's task, handed over by the Runner before the first request. Real providers ignore it
        (a model reads its prompt); the simulator answers from it instead of parsing the prompt."""

    def attach(self, bus: EventBus) -> None:
        """The run's event bus, handed over by the Runner: a provider that reports on its servers (or follows
        the samples) subscribes and emits here. Most have nothing to say."""

    @abstractmethod
    async def complete(self, messages: list[Message], meta: RequestMeta, on_delta: OnDelta | None = None) -> Reply:
        """Return the whole reply; call `on_delta` for each streamed piece. Raise ProviderError on failure.

        `messages` is the runner's own list, read-only and valid for this call: the runner grows the same
        list for the sample's next request (runner.history.MessageLog). Copy what must be kept."""

    async def aclose(self) -> None:
        """Release connections."""
