"""Data arrival apart from rendering (DESIGN §7).

`EventFeed` is the bus subscriber of the run view: it only appends events to a deque (safe to call
from the runner's thread) and drops token deltas of samples nobody is watching. The screen drains it
on a timer and applies the events to a `RunModel`, the plain in-memory state every widget draws from.
Live runs and replays feed the same model with the same events. No Textual in this module.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from lhe_tui.core.lineage import Lineage
from lhe_tui.core.step_rules import DEFAULT_STEP_RULE, STEP_RULES, scored, update_flags
from lhe_tui.ui.turn_records import RecordLoader, TurnRecords
from lhe_tui.core.events import (EndpointsChanged, EndpointStatus, Event, Injected, RetryScheduled, RunFinished, RunPaused, RunResumed,
                                   RunStarted, SampleFinished, Throttled, TokenDelta, TurnFinished, TurnRecord, TurnStarted)


class EventFeed:
    """A thread-safe event buffer; `selected` is the sample whose token deltas are kept."""

    def __init__(self) -> None:
        self._queue: deque[Event] = deque()
        self.selected = 0
        self.dropped_deltas = 0

    def __call__(self, event: Event) -> None:
        if isinstance(event, TokenDelta) and event.sample != self.selected:
            self.dropped_deltas += 1
            return
        self._queue.append(event)

    push = __call__

    def drain(self, limit: int | None = None) -> list[Event]:
        out: list[Event] = []
        queue = self._queue
        while queue and (limit is None or len(out) < limit):
            out.append(queue.popleft())
        return out

    def clear(self) -> None:
        self._queue.clear()

    def __len__(self) -> int:
        return len(self._queue)


@dataclass
class SampleState:
    index: int
    # a list in tests; the run model's is a TurnRecords (compact columns, full records of the newest turns)
    records: TurnRecords | list[TurnRecord] = field(default_factory=list)
    status: str = "pending"          # pending | running | finished | failed | stopped
    message: str = ""
    first_error: int | None = None    # turn of the first wrong answer
    current_turn: int | None = None   # turn in flight
    injections: dict[int, Injected] = field(default_factory=dict)
    generation: int = 0               # bumped when records are replaced rather than appended
    # records' `correct` and `step_correct`, kept beside them: the metrics read every sample's flags twice a
    # second, and building them from the records cost O(all turns) on the UI loop (issue 26); one byte a turn
    # (0/1), not a pointer: the copies the metrics take twice a second are 8 times smaller
    correct: bytearray = field(default_factory=bytearray)
    step_correct: bytearray = field(default_factory=bytearray)

    @property
    def last_turn(self) -> int:
        return self.records[-1].turn if self.records else 0

    def row_of(self, turn: int) -> int | None:
        """Index of `turn` in records (records are in turn order, possibly not starting at 1)."""
        if not self.records:
            return None
        if isinstance(self.records, TurnRecords):
            return self.records.row_of(turn)
        index = turn - self.records[0].turn
        if 0 <= index < len(self.records) and self.records[index].turn == turn:
            return index
        for i, record in enumerate(self.records):
            if record.turn == turn:
                return i
        return None


@dataclass
class StreamState:
    """The reply of the watched sample: streaming in, or the last finished one."""

    sample: int = -1
    turn: int = 0
    keys: tuple[str, ...] = ()
    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    record: TurnRecord | None = None   # set when the turn has finished
    version: int = 0


class RunModel:
    """Everything the run view shows, built only from run events."""

    def __init__(self, *, live: bool = True) -> None:
        self.live = live              # live runs time themselves; a replay shows its own clock
        self.watched = 0
        # reads a sample's stored turns back (the live view's store): older full records are then dropped
        # from memory and read back when shown (issue 26); None keeps them all
        self.record_loader: RecordLoader | None = None
        self.version = 0
        self.flags_version = 0
        self.reset()

    def reset(self) -> None:
        self.session_id = ""
        self.config: dict = {}
        self.provider_label = ""
        self.simulated = False
        self.kind = "run"
        self.lineage: Lineage | None = None   # a fork's parent and fork turn (None: a plain run)
        self.lineage_label = ""               # Lineage.label(), made once (the status bar shows it each flush)
        self.endpoints: tuple[EndpointStatus, ...] = ()   # several servers: each one's state and load
        self.samples: list[SampleState] = []
        self.status = "starting"      # starting | running | paused | finished | interrupted | failed | ...
        self.message = ""
        self.tokens_in = 0
        self.tokens_out = 0
        self.tokens_cached = 0
        self.tokens_cache_write = 0
        self.tokens_unreported = 0    # finished turns whose server reported no input or output count
        self.turns_done = 0
        self.retries = 0              # over all finished turns (each turn's count is in its record)
        self.empty_retries = 0        # empty replies asked for again (paper protocol), over all finished turns
        self.answered_turns = 0       # finished turns the provider answered (none: the run has no data)
        self.started_at: float | None = None   # monotonic, live runs
        self.ended_at: float | None = None
        self.paused_s = 0.0                    # time spent paused (the clock stops meanwhile)
        self.paused_at: float | None = None    # monotonic, while paused
        self.earlier_s = 0.0                   # a resumed run's stored wall time before this part
        self.wall_time_s: float | None = None
        self.last_retry = ""
        self.throttle = ""              # the rate limiter's latest hold (--rpm, --tpm), shown until it ends
        self.throttled_until = 0.0      # time.monotonic() at which it ends
        self.stream = StreamState(sample=self.watched)
        self.version += 1
        self.flags_version += 1
        self.injections_version = getattr(self, "injections_version", 0) + 1

    # ---- derived ----------------------------------------------------------------------------------
    @property
    def n_turns(self) -> int:
        return int(self.config.get("turns") or 0)

    @property
    def samples_done(self) -> int:
        """Samples that ran all their turns (a stopped or failed one is not done: `samples_ended`)."""
        return sum(s.status == "finished" for s in self.samples)

    def samples_ended(self, status: str) -> int:
        return sum(s.status == status for s in self.samples)

    @property
    def running(self) -> bool:
        return self.status in ("starting", "running", "paused")

    @property
    def step_rule(self) -> str:
        """The run's step rule (lhe_tui.core.step_rules): how turn accuracy scores the turn after a miss. A
        damaged stored value reads as ours (`lhe-tui show` names it in one line)."""
        rule = self.config.get("step_rule")
        return rule if rule in STEP_RULES else DEFAULT_STEP_RULE

    def flags(self) -> tuple[list[Sequence[bool]], list[Sequence[bool]]]:
        """(answer-correct, update) flags per sample, in turn order: what metrics functions take (sequences of
        0/1 bytes, which they read as booleans); the update (turn-accuracy) flags under the run's step rule.
        Copies (of a byte a turn), so the metrics may read them in a thread while turns arrive."""
        correct: list[Sequence[bool]] = [bytearray(s.correct) for s in self.samples]
        rule = self.step_rule
        if rule == DEFAULT_STEP_RULE:
            return correct, [bytearray(s.step_correct) for s in self.samples]
        return correct, [update_flags([scored(r) for r in s.records], rule) for s in self.samples]

    @property
    def answered(self) -> bool | None:
        """Whether any finished turn was answered (for the metrics: none, only failed requests, is no data);
        None before any turn finished."""
        if self.answered_turns:
            return True
        return False if any(state.records for state in self.samples) else None

    def statuses(self) -> list[str]:
        """Each sample's status, aligned with `flags()`: the metric functions count a failed sample as wrong
        past its failure (lhe_tui.metrics._ragged), as the CLI does with the stored statuses."""
        return [s.status for s in self.samples]

    @property
    def k(self) -> int:
        return max(1, int(self.config.get("k") or 1))

    @property
    def fork_turn(self) -> int | None:
        """A fork's last inherited turn (both charts mark it); None for a run that is not a fork."""
        lineage = self.lineage
        return lineage.fork_turn if lineage is not None and lineage.is_fork else None

    def injected_turns(self) -> list[int]:
        """Turns with an injection in any sample, in order (the decay plot marks them)."""
        return sorted({turn for state in self.samples for turn in state.injections})

    def elapsed(self, now: float | None = None) -> float | None:
        """The run's clock: running time only (it stops while paused), a resumed run's earlier time included."""
        if self.started_at is None:
            return None if self.wall_time_s is None else self.earlier_s + self.wall_time_s
        end = self.ended_at if self.ended_at is not None else (time.monotonic() if now is None else now)
        paused = self.paused_s + (max(0.0, end - self.paused_at) if self.paused_at is not None else 0.0)
        return self.earlier_s + max(0.0, end - self.started_at - paused)

    def sample(self, index: int) -> SampleState | None:
        return self.samples[index] if 0 <= index < len(self.samples) else None

    # ---- selection ----------------------------------------------------------------------------------
    def watch(self, index: int) -> None:
        """Show `index`'s reply: its last finished one until its next turn starts streaming."""
        self.watched = index
        state = self.sample(index)
        last = state.records[-1] if state and state.records else None
        self.stream = StreamState(sample=index, turn=last.turn if last else 0, keys=last.keys if last else (),
                                  record=last, version=self.stream.version + 1)
        self.version += 1

    # ---- events -------------------------------------------------------------------------------------
    def preload(self, records: list[TurnRecord], *, wall_time_s: float | None = None) -> None:
        """Turns already in the store (a resumed run): shown as if they had just arrived; the tokens, retries
        and clock go on from their totals (`wall_time_s`: the session's stored wall time)."""
        for record in records:
            self._add_record(record)
            self.retries += record.retries
            self.empty_retries += record.empty_retries
            self._count_tokens(record, 1)
        self.earlier_s = wall_time_s or 0.0
        self.watch(self.watched)

    def apply(self, event: Event) -> None:
        handler = getattr(self, f"_on_{type(event).__name__}", None)
        if handler is not None:
            handler(event)
            self.version += 1

    def apply_all(self, events: list[Event]) -> None:
        for event in events:
            self.apply(event)

    def undo(self, event: Event) -> None:
        """Take back an event that was applied last (replay stepping back); events newest first."""
        if isinstance(event, TurnFinished):
            record = event.record
            state = self._ensure(record.sample)
            if state.records and state.records[-1].turn == record.turn:
                state.records.pop()
                state.correct.pop()
                state.step_correct.pop()
                self.turns_done -= 1
                self.retries -= record.retries
                self.empty_retries -= record.empty_retries
                self.answered_turns -= not record.provider_failed
                self._count_tokens(record, -1)
                if state.first_error == record.turn:
                    state.first_error = None   # every earlier turn was right, by definition
                self.flags_version += 1
            state.status = "running"
            if record.sample == self.watched:
                self.watch(self.watched)
        elif isinstance(event, Injected):
            state = self._ensure(event.sample)
            state.injections.pop(event.turn, None)
            self.injections_version += 1
            row = state.row_of(event.turn)
            if row is not None:
                state.records[row] = replace(state.records[row], injected=False, history_answer=event.original)
        elif isinstance(event, SampleFinished):
            state = self._ensure(event.sample)
            if state.status == "failed":
                self.flags_version += 1
            state.status = "running"
        elif isinstance(event, RunFinished):
            self.status, self.message = "running", ""
        self.version += 1

    def undo_all(self, events: list[Event]) -> None:
        for event in events:
            self.undo(event)

    def _ensure(self, index: int) -> SampleState:
        while len(self.samples) <= index:
            index = len(self.samples)
            self.samples.append(SampleState(index=index, records=TurnRecords(sample=index, loader=self.record_loader)))
        return self.samples[index]

    def _on_RunStarted(self, e: RunStarted) -> None:
        self.session_id = e.session_id
        self.config = dict(e.config)
        self.provider_label = e.provider_label
        self.simulated = e.simulated
        self.kind = e.kind
        lineage = e.lineage if e.lineage is not None and not e.lineage.is_plain else None
        self.lineage, self.lineage_label = lineage, lineage.label() if lineage is not None else ""
        for index in range(len(e.sample_keys)):
            state = self._ensure(index)
            if state.status in ("pending", "stopped", "early"):   # a resume: its rule decides again
                state.status = "running"
        self.status = "running"
        if self.live and self.started_at is None:
            self.started_at = time.monotonic()
        self.ended_at = None

    def _on_TurnStarted(self, e: TurnStarted) -> None:
        state = self._ensure(e.sample)
        state.current_turn = e.turn
        state.status = "running"
        if e.sample == self.watched:
            self.stream = StreamState(sample=e.sample, turn=e.turn, keys=e.keys, version=self.stream.version + 1)

    def _on_TokenDelta(self, e: TokenDelta) -> None:
        stream = self.stream
        if e.sample != stream.sample or e.turn != stream.turn or stream.record is not None:
            return
        (stream.reasoning if e.kind == "reasoning" else stream.text).append(e.text)
        stream.version += 1

    def _on_TurnFinished(self, e: TurnFinished) -> None:
        record = e.record
        self._add_record(record)
        self.turns_done += 1
        self.retries += record.retries
        self.empty_retries += record.empty_retries
        self._count_tokens(record, 1)
        if record.sample == self.watched:
            stream = self.stream
            if stream.turn != record.turn:
                stream = StreamState(sample=record.sample, turn=record.turn, keys=record.keys)
            stream.record = record
            stream.version += 1
            self.stream = stream

    def _count_tokens(self, record: TurnRecord, sign: int) -> None:
        self.tokens_in += sign * (record.tokens_in or 0)
        self.tokens_out += sign * (record.tokens_out or 0)
        self.tokens_cached += sign * (record.tokens_cached or 0)
        self.tokens_cache_write += sign * (record.tokens_cache_write or 0)
        if record.tokens_in is None or record.tokens_out is None:
            self.tokens_unreported += sign

    @property
    def tokens_reported(self) -> bool:
        """Whether any finished turn reported its token counts (else the bar says "not reported")."""
        return self.turns_done > self.tokens_unreported or not self.turns_done

    def _add_record(self, record: TurnRecord) -> None:
        state = self._ensure(record.sample)
        row = state.row_of(record.turn) if state.records and record.turn <= state.last_turn else None
        if row is not None:
            self.answered_turns += state.records[row].provider_failed - record.provider_failed
            state.records[row] = record
            state.correct[row], state.step_correct[row] = record.correct, record.step_correct
            state.generation += 1
        else:
            self.answered_turns += not record.provider_failed
            state.records.append(record)
            state.correct.append(record.correct)
            state.step_correct.append(record.step_correct)
        if state.current_turn == record.turn:
            state.current_turn = None
        if not record.correct and (state.first_error is None or record.turn < state.first_error):
            state.first_error = record.turn
        self.flags_version += 1

    def _on_Injected(self, e: Injected) -> None:
        state = self._ensure(e.sample)
        state.injections[e.turn] = e
        self.injections_version += 1
        row = state.row_of(e.turn)
        if row is not None:
            state.records[row] = replace(state.records[row], injected=True, history_answer=e.injected)

    def _on_EndpointsChanged(self, e: EndpointsChanged) -> None:
        self.endpoints = e.endpoints

    def _on_Throttled(self, e: Throttled) -> None:
        self.throttle = f"held by the rate limiter (--{e.limit}) {e.delay_s:.1f}s"
        self.throttled_until = time.monotonic() + e.delay_s

    def held(self) -> str:
        """What the status bar says while the rate limiter holds a request back; '' otherwise."""
        return self.throttle if self.running and time.monotonic() < self.throttled_until else ""

    def _on_RetryScheduled(self, e: RetryScheduled) -> None:
        self.last_retry = f"s{e.sample} t{e.turn}: retry {e.attempt} in {e.delay_s:.1f}s ({e.message})"

    def _on_SampleFinished(self, e: SampleFinished) -> None:
        state = self._ensure(e.sample)
        if e.status == "failed" or state.status == "failed":
            self.flags_version += 1   # a failed sample counts as wrong past its failure: the curves change
        state.status = e.status
        state.message = e.message
        state.current_turn = None

    def _on_RunPaused(self, e: RunPaused) -> None:
        if self.running:
            self.status = "paused"
            if self.live and self.started_at is not None and self.paused_at is None:
                self.paused_at = time.monotonic()

    def _on_RunResumed(self, e: RunResumed) -> None:
        if self.running:
            self.status = "running"
        self._end_pause()

    def _end_pause(self) -> None:
        if self.paused_at is not None:
            self.paused_s += max(0.0, time.monotonic() - self.paused_at)
            self.paused_at = None

    def _on_RunFinished(self, e: RunFinished) -> None:
        self.status = e.status
        self.message = e.message
        self.wall_time_s = e.wall_time_s
        self._end_pause()
        self.ended_at = time.monotonic() if self.started_at is not None else None
        self.last_retry = ""
