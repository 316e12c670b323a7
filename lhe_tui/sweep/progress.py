"""What the board and the headless table show of each run of a sweep, kept up to date from its events
(a subscriber per run; UI-free). Metrics so far are computed from per-sample first errors as the stored
metrics are: a sample counts at turn t once it has played t; task accuracy at t is the share of those with no
wrong answer up to t; H_s the first turn where it falls below s."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lhe_tui.core.events import Event, RunFinished, RunStarted, Throttled, TurnFinished, TurnStarted

if TYPE_CHECKING:
    from sqlite_utils import Database

    from lhe_tui.core.prices import ModelPrice

PENDING = "pending"
RUNNING = "running"


@dataclass
class RunProgress:
    name: str
    total: int
    samples: int
    turns: int
    price: ModelPrice | None = None
    axes: dict[str, Any] = field(default_factory=dict)
    status: str = PENDING
    session_id: str | None = None
    message: str = ""
    done: int = 0
    cost: float = 0.0
    tokens: int = 0
    last_turn: dict[int, int] = field(default_factory=dict)
    first_error: dict[int, int] = field(default_factory=dict)
    turn_ok: list[int] = field(default_factory=list)      # per turn index: updates correct
    turn_n: list[int] = field(default_factory=list)       # per turn index: turns played
    held_until: float = 0.0
    held_by: str = ""
    version: int = 0                                       # turns added: the cached curve is for this one
    _task_cache: tuple[int, list[float]] = (-1, [])

    def __call__(self, event: Event) -> None:
        if isinstance(event, TurnFinished):
            self.add_turn(event.record.sample, event.record.turn, event.record.correct, event.record.step_correct,
                          event.record.tokens_in, event.record.tokens_out, event.record.tokens_cached,
                          event.record.tokens_cache_write)
            self.held_until = 0.0
        elif isinstance(event, RunStarted):
            self.status = RUNNING
            self.session_id = event.session_id
        elif isinstance(event, Throttled):
            self.held_until = time.monotonic() + event.delay_s
            self.held_by = event.limit
        elif isinstance(event, TurnStarted):
            pass
        elif isinstance(event, RunFinished):
            self.status = event.status
            self.message = event.message

    def add_turn(self, sample: int, turn: int, correct: bool, update: bool, tokens_in: int | None = None,
                 tokens_out: int | None = None, cached: int | None = None, cache_write: int | None = None) -> None:
        self.done += 1
        self.version += 1
        self.last_turn[sample] = max(self.last_turn.get(sample, 0), turn)
        if not correct and sample not in self.first_error:
            self.first_error[sample] = turn
        while len(self.turn_n) < turn:
            self.turn_n.append(0)
            self.turn_ok.append(0)
        self.turn_n[turn - 1] += 1
        self.turn_ok[turn - 1] += int(update)
        self.tokens += (tokens_in or 0) + (tokens_out or 0)
        if self.price is not None and tokens_in is not None and tokens_out is not None:
            self.cost += self.price.cost(tokens_in, tokens_out, cached, cache_write) or 0.0

    def load_stored(self, db: Database, session_id: str) -> None:
        """A resumed run's stored turns, counted as if they had just been played."""
        self.session_id = session_id
        for row in db.execute("SELECT sample, turn, correct, step_correct, tokens_in, tokens_out, tokens_cached, "
                              "tokens_cache_write FROM turns WHERE session_id = ? ORDER BY turn, sample",
                              [session_id]):
            self.add_turn(*row)

    # ---- what is shown --------------------------------------------------------------------------
    def task_accuracy(self) -> list[float]:
        """Task accuracy per turn over the samples that have played it (computed once per new turn)."""
        version, cached = self._task_cache
        if version == self.version:
            return cached
        longest = max(self.last_turn.values(), default=0)
        reached = [0] * (longest + 2)     # reached[t]: samples whose last turn is t
        failed = [0] * (longest + 2)      # failed[t]: counted samples whose first error is t
        for sample, last in self.last_turn.items():
            reached[last] += 1
            first = self.first_error.get(sample)
            if first is not None and first <= last:
                failed[first] += 1
        out = []
        counted = len(self.last_turn)
        wrong = 0
        for t in range(1, longest + 1):
            wrong += failed[t]
            out.append((counted - wrong) / counted if counted else 0.0)
            counted -= reached[t]          # samples that stopped at t are not counted past it ...
            wrong -= sum(1 for s, last in self.last_turn.items() if last == t and self.first_error.get(s, t + 1) <= t) \
                if reached[t] else 0       # ... nor are their errors
        self._task_cache = (self.version, out)
        return out

    def turn_accuracy(self) -> list[float]:
        return [ok / n for ok, n in zip(self.turn_ok, self.turn_n) if n]

    def horizon(self, s: float = 0.5) -> tuple[int | None, bool]:
        """(H_s so far, measured): the first turn task accuracy fell below s, or (turns played, False)."""
        curve = self.task_accuracy()
        for t, value in enumerate(curve, start=1):
            if value < s:
                return t, True
        return (len(curve) or None), False

    def wait(self) -> float:
        return max(0.0, self.held_until - time.monotonic())


SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int = 12) -> str:
    """The last values (0..1) resampled to `width` characters."""
    if not values:
        return ""
    if len(values) > width:
        step = len(values) / width
        values = [values[min(len(values) - 1, int(i * step))] for i in range(width)]
    return "".join(SPARK[min(len(SPARK) - 1, max(0, int(v * (len(SPARK) - 1) + 0.5)))] for v in values)
