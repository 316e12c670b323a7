"""The async runner: UI-free, one conversation per sample, emits typed events.

Each finished turn is emitted (and so committed by the store, a synchronous subscriber) before the
next request of that sample is sent.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import replace

from lhe_tui.common.errors import ProviderError, StoreWriteError
from lhe_tui.providers.base import (Provider, Reply, RequestMeta, StreamRedactor, distrust_counts, redact,
                                    secrets_in_use)
from lhe_tui.core.config import RunConfig
from lhe_tui.core.lineage import Lineage
from lhe_tui.core.events import (EventBus, Injected, RetryScheduled, RunFinished, RunPaused, RunResumed,
                                 RunStarted, SampleFinished, Throttled, TokenDelta, TurnFinished, TurnRecord,
                                 TurnStarted, UsageIgnored)
from lhe_tui.runner.budget import Budget, Estimate, budget_for, estimate_tokens
from lhe_tui.runner.rate_limit import RateLimiter
from lhe_tui.core.until import EARLY, HorizonWatch, done_after_first_error
from lhe_tui.runner.history import HistoryEntry, MessageLog, conversation, wrong_value
from lhe_tui.runner.retry import Backoff
from lhe_tui.runner.step_base import StepBase
from lhe_tui.task.answer import PROVIDER_FAILED, ParsedAnswer
from lhe_tui.task.model import Sample, Task
from lhe_tui.task.protocol import get_protocol


FAILED_TURNS_IN_A_ROW = 3
"""Paper protocol: a sample whose provider fails this many turns in a row stops (failed), with the reason."""

CUT_OFF_KEPT = 2000  # characters of a reply (and of its reasoning) cut off by the size cap that are stored


def cut_off_reply(reply: Reply) -> None:
    """A reply whose reading stopped at the size cap, as stored: why, then its start (a format miss)."""
    reply.text = (f"[lhe-tui: {reply.cut_off} (--max-reply-mb), so it was not read further and the turn "
                  f"is a format miss; its first {CUT_OFF_KEPT:,} characters follow]\n{reply.text[:CUT_OFF_KEPT]}")
    reply.reasoning = reply.reasoning[:CUT_OFF_KEPT]


class _OverBudget(Exception):
    """A sample's next request would pass --max-cost / --max-tokens-total (the message says which)."""


class Runner:
    def __init__(self, config: RunConfig, task: Task, provider: Provider, session_id: str, bus: EventBus, *,
                 history: dict[int, list[HistoryEntry]] | None = None, backoff: Backoff = Backoff(),
                 stream_deltas: bool = True, pending_scripted: dict[int, list[int]] | None = None,
                 resumed: bool = False, kind: str = "run", budget: Budget | None = None,
                 limiter: RateLimiter | None = None, lineage: Lineage | None = None) -> None:
        self.template = config.template()
        if config.prompt_text is None:  # the session stores the template's text: a resume sends the same
            config = replace(config, prompt_text=self.template.text)
        self.config = config
        self.task = task
        self.provider = provider
        provider.bind_task(task)
        provider.attach(bus)
        self.session_id = session_id
        self.bus = bus
        self.backoff = backoff
        self.stream_deltas = stream_deltas
        self.protocol = get_protocol(config.protocol)
        # The paper protocol's handling of empty and failed replies (docs/protocol.md): an empty reply is asked
        # for again, a turn whose request fails is recorded with no answer and the sample goes on.
        self.carry_on = config.protocol == "paper"
        self._answered = False   # a reply came back in this run: a 401 before that ends the run at once
        self.policy, self.system = conversation(config, task)
        self.history: dict[int, list[HistoryEntry]] = {s.index: list((history or {}).get(s.index, []))
                                                       for s in task.samples}
        # Per sample, the base of the next turn's step score (see StepBase): rebuilt once from a given
        # history (resume, probe), then kept up to date turn by turn and on injections.
        self.step_base: dict[int, StepBase] = {index: StepBase.from_history(entries)
                                               for index, entries in self.history.items()}
        # Per sample, the messages already rendered: a turn appends, instead of rebuilding 2t dicts.
        self.message_logs: dict[int, MessageLog] = {s.index: MessageLog(self.policy, self.system)
                                                    for s in task.samples}
        self.sample_status: dict[int, str] = {}
        self._unpaused = asyncio.Event()
        self._unpaused.set()
        self._semaphore = asyncio.Semaphore(config.concurrency)
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._fatal: str | None = None
        self._halted: str | None = None   # the store stopped taking rows: why (the run ends interrupted)
        self._scripted = {inj.turn: inj for inj in config.inject_at}
        self._failures: dict[int, str] = {}
        self._pending_scripted = pending_scripted or {}
        self.resumed = resumed
        self.kind = kind
        self.lineage = lineage   # a fork's parent, an arm's group: told to the store and the views
        # --max-cost / --max-tokens-total (spent so far: what the caller counted, e.g. a resumed session's)
        self.budget = budget if budget is not None else budget_for(config)
        self.limiter = limiter if limiter is not None else (RateLimiter(config.rpm, config.tpm)
                                                            if config.rpm or config.tpm else None)
        self._last_record: dict[int, TurnRecord] = {}
        # --until: the rule, each sample's first error so far, and (horizon) what decides H_s
        self.until = config.until_rule()
        self._first_error: dict[int, int] = {}
        self.horizon = (HorizonWatch(len(task.samples), task.turns, self.until.s)
                        if self.until is not None and self.until.kind == "horizon" else None)
        for index, entries in self.history.items():   # a resumed run: what its stored turns say
            for entry in entries:
                self._note_turn(index, entry.turn, entry.model_answer == entry.gold_sum)
        # API keys a server might echo (an error body, a reply): never stored, shown or printed
        self.secrets = secrets_in_use(getattr(provider, "api_key", None))

    # ---- controls -------------------------------------------------------------------------------
    @property
    def paused(self) -> bool:
        return not self._unpaused.is_set()

    def pause(self) -> None:
        if not self.paused:
            self._unpaused.clear()
            self.bus.emit(RunPaused())

    def resume(self) -> None:
        if self.paused:
            self._unpaused.set()
            self.bus.emit(RunResumed())

    def stop(self) -> None:
        """Drop the turns in flight; the session ends `interrupted`."""
        self._stopping = True
        self._unpaused.set()
        for task in self._tasks:
            task.cancel()

    def halt(self, message: str) -> None:
        """The store cannot take the run's rows any more (full disk, damaged page): stop every sample at
        once, as `stop` does; the run ends `interrupted` with `message`, resumable once the cause is fixed.
        A second call keeps the first message."""
        if self._halted is None:
            self._halted = message
        self.stop()

    def fail(self, message: str) -> None:
        """Stop every sample at once because the provider cannot go on (our local model server died):
        the unfinished samples fail with `message`, and the run ends `failed` with it, resumable once the
        cause is fixed. A second call keeps the first message."""
        if self._fatal is None:
            self._fatal = message
        self._unpaused.set()
        for task in self._tasks:
            task.cancel()

    def inject(self, sample: int, *, offset: int | None = None, value: int | None = None,
               source: str = "manual") -> Injected | None:
        """Replace the sample's latest answer in the history the model will see next."""
        entries = self.history.get(sample)
        if not entries:
            return None
        entry = entries[-1]
        original = entry.history_answer
        base = original if original is not None else entry.gold_sum
        if value is None:
            if offset is None or offset == 0:
                offset = wrong_value(0, random.Random(f"inject:{self.config.seed}:{sample}:{entry.turn}"))
            value = base + offset
        entry.history_answer = value
        self.step_base[sample].anchor(value)   # entry is the latest: later turns build on the injected value
        log = self.message_logs.get(sample)
        if log is not None:
            log.invalidate()  # the entry may already be rendered: the next turn rebuilds the messages
        event = Injected(sample=sample, turn=entry.turn, original=original, injected=value, source=source)
        self.bus.emit(event)
        return event

    def inject_all(self, *, offset: int | None = None, value: int | None = None,
                   source: str = "manual") -> list[Injected]:
        """Inject into every sample that has a finished turn; each gets its own random offset if none is given."""
        events = (self.inject(index, offset=offset, value=value, source=source) for index in self.history)
        return [event for event in events if event is not None]

    # ---- running --------------------------------------------------------------------------------
    async def run(self) -> str:
        started = time.monotonic()
        self.bus.emit(RunStarted(
            session_id=self.session_id, config=self.config.to_dict(), dictionary=self.task.dictionary,
            sample_keys=tuple(s.keys for s in self.task.samples), provider_label=self.provider.label,
            simulated=self.provider.simulated, resumed=self.resumed, kind=self.kind, lineage=self.lineage))
        self._tasks = [asyncio.create_task(self._run_sample(s)) for s in self.task.samples]
        if self._fatal is not None:  # failed before it started
            for task in self._tasks:
                task.cancel()
        try:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        except asyncio.CancelledError:
            self.stop()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._stopping = True
        for sample in self.task.samples:
            if sample.index not in self.sample_status:
                if self._fatal is not None:
                    self._finish_sample(sample.index, "failed", self._fatal)
                else:
                    self._finish_sample(sample.index, "stopped", "stopped before the last turn")
        status = self._run_status()
        if self.budget is not None and self.budget.stopped is not None and self._halted == self.budget.stopped:
            self._halted = self.budget.final_message(self.session_id)   # what was spent in the end
        first_failure = self._fatal or self._halted or next((f"sample {i}: {m}" for i, m in sorted(self._failures.items())), "")
        if not first_failure and EARLY in self.sample_status.values():
            first_failure = self._until_summary()
        self.bus.emit(RunFinished(status=status, wall_time_s=time.monotonic() - started, message=first_failure))
        return status

    def _run_status(self) -> str:
        if self._fatal is not None:
            return "failed"
        statuses = set(self.sample_status.values())
        if "stopped" in statuses or self._stopping:
            return "interrupted"
        if statuses == {"failed"}:
            return "failed"
        return "finished" if statuses <= {"finished", EARLY} else "finished_with_errors"

    # ---- --until --------------------------------------------------------------------------------
    def _note_turn(self, sample: int, turn: int, correct: bool) -> None:
        if not correct:
            self._first_error.setdefault(sample, turn)
        if self.horizon is not None:
            self.horizon.record(sample, turn, correct)

    def _until_summary(self) -> str:
        """The run's end message when --until stopped samples: what it decided, how many ended early."""
        early = sum(1 for status in self.sample_status.values() if status == EARLY)
        what = self.horizon.verdict() if self.horizon is not None and self.horizon.verdict() else self.until.describe()
        played = sum(len(entries) for entries in self.history.values())
        return (f"--until {self.until.text()}: {what}; {early} of {len(self.task.samples)} samples ended early, "
                f"{played:,} of {len(self.task.samples) * self.task.turns:,} turns played")

    def _until_reason(self, sample: int, played: int) -> str | None:
        """Why `sample`, having played `played` turns, stops here under --until (None: it goes on)."""
        if self.until is None:
            return None
        first = self._first_error.get(sample)
        if self.horizon is None:
            if done_after_first_error(self.until, played, first):
                return f"--until {self.until.text()}: first error at turn {first}"
            return None
        if self.horizon.done(sample):
            return f"--until {self.until.text()}: {self.horizon.verdict()}"
        return None

    def _finish_sample(self, index: int, status: str, message: str = "") -> None:
        self.sample_status[index] = status
        if status == "failed":
            self._failures[index] = message
        self.bus.emit(SampleFinished(sample=index, status=status, message=message))

    async def _run_sample(self, sample: Sample) -> None:
        gold = sample.gold_sums()
        history = self.history[sample.index]
        first_turn = history[-1].turn + 1 if history else 1
        for turn in self._pending_scripted.get(sample.index, []):  # resumed between a turn and its injection
            if history and history[-1].turn == turn:
                scripted = self._scripted[turn]
                self.inject(sample.index, offset=scripted.offset, value=scripted.value, source="scripted")
        failed_in_a_row = 0
        try:
            for turn in range(first_turn, self.task.turns + 1):
                if self.provider.simulated:
                    # The sim at full speed never waits, so a run of it would never let the event loop run:
                    # its events would reach the screen only at its end (all at once: a 15 s stall at
                    # 16 x 10,000 turns) and pause, stop and inject would wait for it (issue 26). Between
                    # turns, as a model's reply over the network lets it, and not while a request holds
                    # the concurrency semaphore (every turn's events stay together, as a replay lays
                    # them out).
                    await asyncio.sleep(0)
                await self._unpaused.wait()
                reason = self._until_reason(sample.index, turn - 1)
                if reason is not None:            # stopped by design: the measurement needs no more turns
                    self._finish_sample(sample.index, EARLY, reason)
                    return
                record = await self._play_turn(sample, turn, gold[turn - 1], history)
                self._note_turn(sample.index, turn, record.correct)
                self.bus.emit(TurnFinished(record))
                failed_in_a_row = failed_in_a_row + 1 if record.provider_failed else 0
                if failed_in_a_row >= FAILED_TURNS_IN_A_ROW:
                    raise ProviderError(f"the provider failed {failed_in_a_row} turns in a row (turns "
                                        f"{turn - failed_in_a_row + 1}-{turn}); the last: {record.provider_error}")
                scripted = self._scripted.get(turn)
                if scripted is not None:
                    self.inject(sample.index, offset=scripted.offset, value=scripted.value, source="scripted")
        except ProviderError as exc:
            if exc.fatal:
                self.fail(str(exc))
            if self.horizon is not None:    # counted wrong from here on: it must not hold the decision back
                self.horizon.failed(sample.index)
            self._finish_sample(sample.index, "failed", str(exc))
            return
        except _OverBudget as exc:       # nothing sent: the run stops here, resumable with a new budget
            if self._halted is None:
                self._halted = str(exc)
            self._finish_sample(sample.index, "stopped", str(exc))
            return
        except StoreWriteError as exc:   # its turn is not stored: the run stops here, resumable
            self.halt(str(exc))
            self._finish_sample(sample.index, "stopped", str(exc))
            return
        except asyncio.CancelledError:
            if self._fatal is not None:
                self._finish_sample(sample.index, "failed", self._fatal)
            else:
                self._finish_sample(sample.index, "stopped", "stopped")
            return
        except Exception as exc:  # a bug must surface as a failed sample, not vanish in gather()
            self._finish_sample(sample.index, "failed",
                                redact(f"internal error: {exc.__class__.__name__}: {exc}", self.secrets))
            return
        self._finish_sample(sample.index, "finished")

    async def _play_turn(self, sample: Sample, turn: int, gold: int, history: list[HistoryEntry]) -> TurnRecord:
        keys = sample.turn_keys(turn)
        base = self.step_base[sample.index]
        seen = base.value   # taken before the request: an injection while it is in flight is not in this one
        messages = self.message_logs[sample.index].messages(history, keys)
        previous = self._last_record.get(sample.index)
        estimate: Estimate | None = None
        if self.budget is not None:
            estimate = self.budget.estimate(messages, previous)
            if not self.budget.admit(estimate, self.session_id):
                raise _OverBudget(self.budget.stopped or "budget reached")
        tokens = 0
        if self.limiter is not None:
            tokens = estimate.tokens_in if estimate is not None else estimate_tokens(messages, previous)[0]
        self.bus.emit(TurnStarted(sample=sample.index, turn=turn, keys=keys))
        started = time.time()
        try:
            reply, retries, empty_retries = await self._reply(sample.index, turn, messages, tokens)
        except ProviderError as exc:
            if estimate is not None and self.budget is not None:
                self.budget.settle(estimate, None)
            if not self.carry_on or exc.fatal:
                raise
            return self._failed_turn(sample, turn, gold, history, seen, started, exc)
        except BaseException:
            if estimate is not None and self.budget is not None:
                self.budget.settle(estimate, None)
            raise
        if self.secrets:
            reply.text, reply.reasoning = redact(reply.text, self.secrets), redact(reply.reasoning, self.secrets)
        distrusted = distrust_counts(reply)   # the reply is kept whatever its usage says
        if distrusted is not None:
            self.bus.emit(UsageIgnored(sample=sample.index, turn=turn, message=distrusted))
        if reply.cut_off is not None:
            cut_off_reply(reply)
            parsed = ParsedAnswer("format")
        else:
            parsed = self.protocol.parse(reply.text)
        turn_sum = sample.turn_sum(turn)
        shown = self.policy.history_answer(sample.index, turn, parsed.value, gold)
        record = TurnRecord(
            sample=sample.index, turn=turn, keys=keys, key_values=sample.turn_values(turn), turn_sum=turn_sum,
            gold_sum=gold, seen_previous=seen, expected_step=seen + turn_sum, raw_reply=reply.text,
            reasoning=reply.reasoning, answer_status=parsed.status, model_answer=parsed.value,
            correct=parsed.value == gold, step_correct=parsed.value == seen + turn_sum, history_answer=shown,
            tokens_in=reply.tokens_in, tokens_out=reply.tokens_out, latency_s=reply.latency_s, retries=retries,
            started_at=started, finished_at=time.time(), tokens_cached=reply.tokens_cached,
            tokens_cache_write=reply.tokens_cache_write, tokens_reasoning=reply.tokens_reasoning,
            empty_retries=empty_retries)
        history.append(HistoryEntry(turn=turn, keys=keys, reply_visible=reply.text, model_answer=parsed.value,
                                    history_answer=shown, gold_sum=gold))
        self._last_record[sample.index] = record
        if estimate is not None and self.budget is not None:
            self.budget.settle(estimate, record)
        base.advance(shown, turn_sum)
        return record

    def _failed_turn(self, sample: Sample, turn: int, gold: int, history: list[HistoryEntry], seen: int,
                     started: float, exc: ProviderError) -> TurnRecord:
        """A turn whose request failed after its retries (paper protocol): recorded with no answer (wrong, and
        step-wrong) and `provider_error`, shown in the history as an empty reply, as the reference does."""
        turn_sum = sample.turn_sum(turn)
        shown = self.policy.history_answer(sample.index, turn, None, gold)
        finished = time.time()
        record = TurnRecord(
            sample=sample.index, turn=turn, keys=sample.turn_keys(turn), key_values=sample.turn_values(turn),
            turn_sum=turn_sum, gold_sum=gold, seen_previous=seen, expected_step=seen + turn_sum, raw_reply="",
            reasoning="", answer_status=PROVIDER_FAILED, model_answer=None, correct=False, step_correct=False,
            history_answer=shown, latency_s=finished - started, retries=exc.retries, started_at=started,
            finished_at=finished, provider_error=str(exc) or exc.__class__.__name__)
        history.append(HistoryEntry(turn=turn, keys=record.keys, reply_visible="", model_answer=None,
                                    history_answer=shown, gold_sum=gold))
        self._last_record[sample.index] = record
        self.step_base[sample.index].advance(shown, turn_sum)
        return record

    async def _reply(self, sample: int, turn: int, messages: list, tokens: int) -> tuple[Reply, int, int]:
        """The turn's reply, its transient-error retries, and (paper protocol) how many times an empty one was
        asked for again (--empty-retries; each counted and told as a retry). The token counts are summed over
        the requests (each was paid for); the latency is the last one's."""
        reply, retries = await self._request(sample, turn, messages, tokens)
        empty = 0
        while (self.carry_on and empty < self.config.empty_retries and reply.cut_off is None
               and not reply.text.strip()):
            empty += 1
            self.bus.emit(RetryScheduled(sample=sample, turn=turn, attempt=empty, delay_s=0.0,
                                         message="empty reply, asked again"))
            spent = reply
            reply, more = await self._request(sample, turn, messages, tokens)
            retries += more
            for name in ("tokens_in", "tokens_out", "tokens_cached", "tokens_cache_write", "tokens_reasoning"):
                before, now = getattr(spent, name), getattr(reply, name)
                if before is not None:
                    setattr(reply, name, before + (now or 0))
        return reply, retries, empty

    def _redacted(self, exc: ProviderError) -> ProviderError:
        """`exc`, or a copy whose message has the API keys a server echoed replaced (its cause dropped)."""
        text = str(exc)
        clean = redact(text, self.secrets)
        if clean == text:
            return exc
        copy = ProviderError(clean, transient=exc.transient, retry_after=exc.retry_after, status=exc.status,
                             fatal=exc.fatal, refused=exc.refused, unreachable=exc.unreachable)
        copy.__suppress_context__ = True
        return copy

    async def _request(self, sample: int, turn: int, messages: list, tokens: int = 0) -> tuple:
        rng = None  # made on the first retry: seeding from a string costs ~20 us, and most turns need none
        attempt = 0
        first_failure = 0.0
        secrets = self.secrets

        # a key a server echoes in its stream may come split across deltas: redacted as a stream, per kind
        redactors: dict[str, StreamRedactor] = {}

        def emit_delta(kind: str, text: str) -> None:
            if secrets:
                redactor = redactors.get(kind) or redactors.setdefault(kind, StreamRedactor(secrets))
                text = redactor.feed(text)
                if not text:
                    return
            self.bus.emit(TokenDelta(sample=sample, turn=turn, kind=kind, text=text))

        on_delta = emit_delta if self.stream_deltas else None
        while True:
            redactors.clear()   # a retry streams its reply from the start
            try:
                async with self._semaphore:
                    if self.limiter is not None:   # held here, just before it is sent (retries too)
                        await self.limiter.acquire(tokens, lambda delay, limit: self.bus.emit(
                            Throttled(sample=sample, turn=turn, delay_s=delay, limit=limit)))
                    reply = await self.provider.complete(messages, RequestMeta(sample, turn, attempt), on_delta)
                for kind, redactor in redactors.items():   # the stream's end: what was held back
                    if held := redactor.flush():
                        self.bus.emit(TokenDelta(sample=sample, turn=turn, kind=kind, text=held))
                self._answered = True
                return reply, attempt
            except ProviderError as error:
                exc = self._redacted(error)
                if not self._answered and exc.dead_end and not exc.fatal:
                    # The run's first request: a wrong key, model or address. No other request will fare
                    # better, so the run ends here, failed, in one line (nothing is retried or recorded).
                    raise ProviderError(str(exc), status=exc.status, refused=exc.refused, fatal=True) from exc
                if not exc.transient or attempt >= self.config.max_retries:
                    if exc.transient:
                        raise ProviderError(f"{exc} (gave up after {attempt} retries)", status=exc.status,
                                            refused=exc.refused, retries=attempt) from exc
                    exc.retries = attempt
                    raise exc
                now = time.monotonic()
                first_failure = first_failure or now
                rng = rng or random.Random(f"backoff:{self.config.seed}:{sample}:{turn}")
                delay = self.backoff.delay(attempt + 1, rng, exc.retry_after)
                budget = self.config.retry_budget
                if now - first_failure + delay > budget:
                    raise ProviderError(f"{exc} (gave up after {attempt} retries: the next wait, {delay:.0f} s, "
                                        f"would pass this turn's retry budget of {budget:g} s)",
                                        status=exc.status, refused=exc.refused, retries=attempt) from exc
                attempt += 1
                self.bus.emit(RetryScheduled(sample=sample, turn=turn, attempt=attempt, delay_s=delay,
                                             message=str(exc)))
                await asyncio.sleep(delay)
