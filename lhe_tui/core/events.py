"""Typed events the runner emits; the store and the UIs subscribe; replay emits the same ones."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lhe_tui.core.lineage import Lineage


@dataclass(frozen=True)
class TurnRecord:
    """One finished turn, scored. This is exactly what the store keeps in its `turns` table."""

    sample: int
    turn: int
    keys: tuple[str, ...]
    key_values: tuple[int, ...]
    turn_sum: int
    gold_sum: int
    seen_previous: int          # running total the model saw in its history before this turn
    expected_step: int          # seen_previous + turn_sum: the self-consistent answer
    raw_reply: str
    reasoning: str
    answer_status: str          # ok | format | invalid | failed (the provider gave no reply: see provider_error)
    model_answer: int | None    # the parsed answer the model gave (None on a format or invalid miss)
    correct: bool               # answer == gold_sum (answer accuracy; stored as `correct`)
    step_correct: bool          # answer == expected_step (turn accuracy, own step rule; the stored name)
    history_answer: int | None  # the answer the model will see for this turn from now on
    injected: bool = False
    tokens_in: int | None = None
    tokens_out: int | None = None
    latency_s: float = 0.0
    retries: int = 0
    started_at: float = 0.0
    finished_at: float = 0.0
    # Parts of tokens_in / tokens_out, as the server reported them (None: not reported). tokens_in counts all
    # input, so the uncached input is tokens_in - tokens_cached - tokens_cache_write.
    tokens_cached: int | None = None
    tokens_cache_write: int | None = None
    tokens_reasoning: int | None = None
    inherited: bool = False     # a fork's turn copied from its parent (played and paid for there)
    # Paper protocol (docs/protocol.md, "Empty and failed replies"): how many times an empty reply was asked
    # for again, and, for a turn whose request failed after its retries, why (answer_status "failed": the
    # provider failed, the model gave no answer; None: the provider replied).
    empty_retries: int = 0
    provider_error: str | None = None

    @property
    def provider_failed(self) -> bool:
        return self.provider_error is not None


@dataclass(frozen=True)
class RunStarted:
    session_id: str
    config: dict[str, Any]
    dictionary: dict[str, int]
    sample_keys: tuple[tuple[str, ...], ...]
    provider_label: str
    simulated: bool
    resumed: bool = False
    kind: str = "run"
    lineage: Lineage | None = None   # a fork's parent and fork turn, an arm's group (None: a plain run)


@dataclass(frozen=True)
class TurnStarted:
    sample: int
    turn: int
    keys: tuple[str, ...]


@dataclass(frozen=True)
class TokenDelta:
    sample: int
    turn: int
    kind: str   # text | reasoning
    text: str


@dataclass(frozen=True)
class TurnFinished:
    record: TurnRecord


@dataclass(frozen=True)
class Injected:
    sample: int
    turn: int
    original: int | None
    injected: int
    source: str = "manual"   # manual | scripted


@dataclass(frozen=True)
class RetryScheduled:
    sample: int
    turn: int
    attempt: int
    delay_s: float
    message: str


@dataclass(frozen=True)
class Throttled:
    """The client-side rate limiter (--rpm, --tpm) holds a request back for `delay_s`."""

    sample: int
    turn: int
    delay_s: float
    limit: str        # rpm | tpm


@dataclass(frozen=True)
class UsageIgnored:
    """A turn's usage counts from the server were not believed (negative, fractional, absurd): not reported."""

    sample: int
    turn: int
    message: str


@dataclass(frozen=True)
class EndpointStatus:
    """One server of a model served by several (--base-url repeated), as the router sees it now."""

    url: str
    state: str        # up | down | trying (down, and one request is trying it again)
    load: int         # running samples pinned to it

    @property
    def short(self) -> str:
        """Its load when it is up, else its state."""
        return str(self.load) if self.state == "up" else self.state


def endpoints_line(endpoints: tuple[EndpointStatus, ...]) -> str:
    """What the status bar and the headless progress say of the servers: `ep 22 21 down 21`."""
    return "ep " + " ".join(e.short for e in endpoints) if endpoints else ""


@dataclass(frozen=True)
class EndpointsChanged:
    """A server of the run went down or up, or samples moved between servers (providers.endpoints)."""

    endpoints: tuple[EndpointStatus, ...]


@dataclass(frozen=True)
class SampleFinished:
    sample: int
    status: str       # finished | failed | stopped
    message: str = ""


@dataclass(frozen=True)
class RunPaused:
    pass


@dataclass(frozen=True)
class RunResumed:
    pass


@dataclass(frozen=True)
class RunFinished:
    status: str       # finished | interrupted | failed
    wall_time_s: float
    message: str = ""


Event = (RunStarted | TurnStarted | TokenDelta | TurnFinished | Injected | RetryScheduled | Throttled
         | UsageIgnored | EndpointsChanged | SampleFinished | RunPaused | RunResumed | RunFinished)
Subscriber = Callable[[Event], None]


@dataclass
class EventBus:
    """Calls every subscriber, in order, synchronously: the store commits before the runner goes on."""

    subscribers: list[Subscriber] = field(default_factory=list)

    def subscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.append(subscriber)

    def emit(self, event: Event) -> None:
        for subscriber in self.subscribers:
            subscriber(event)
