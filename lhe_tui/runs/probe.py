"""Target-turn probe (paper Fig. 5): synthetic histories with error rate r, the model queried at turn T only.

For each rate and sample, turns 1..T-1 show gold answers in the model's answer format, each replaced by a
wrong one with probability r (seeded); the model answers turn T. One probe is one stored session of kind
`probe`, whose samples carry their rate; it reloads with `probe_table`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from lhe_tui.common.errors import ConfigError
from lhe_tui.metrics import bootstrap_ci
from lhe_tui.providers.base import Provider
from lhe_tui.providers.factory import make_provider
from lhe_tui.core.config import RunConfig
from lhe_tui.core.events import EventBus
from lhe_tui.runner.history import HistoryEntry, wrong_value
from lhe_tui.runner.runner import Runner
from lhe_tui.runs.session import PreparedRun, build_task, new_session_id
from lhe_tui.store.writer import SessionWriter
from lhe_tui.task.model import Sample, Task

if TYPE_CHECKING:
    from sqlite_utils import Database

DEFAULT_RATES = (0.0, 0.25, 0.5, 0.75, 1.0)


def parse_rates(text: str) -> tuple[float, ...]:
    try:
        rates = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"--rates expects comma-separated numbers, got {text!r}") from None
    if not rates or any(not 0.0 <= r <= 1.0 for r in rates):
        raise ConfigError(f"--rates must be numbers within 0..1, got {text!r}")
    return rates


def synthetic_history(sample: Sample, target_turn: int, rate: float, seed: int) -> list[HistoryEntry]:
    gold = sample.gold_sums()
    rng = random.Random(f"probe:{seed}:{rate}:{sample.index}")
    entries = []
    for turn in range(1, target_turn):
        shown = wrong_value(gold[turn - 1], rng) if rng.random() < rate else gold[turn - 1]
        entries.append(HistoryEntry(turn=turn, keys=sample.turn_keys(turn), reply_visible=f"<answer>{shown}</answer>",
                                    model_answer=shown, history_answer=shown, gold_sum=gold[turn - 1]))
    return entries


@dataclass(frozen=True)
class ProbePlan:
    config: RunConfig                        # the session's: len(rates) * samples samples, turns = T
    task: Task
    history: dict[int, list[HistoryEntry]]   # each sample's synthetic history up to T - 1
    rates: dict[int, float]                  # each sample's error rate


def check_target_turn(target_turn: int) -> None:
    """A probe conditions turn T on a synthetic history of turns 1..T-1: T = 1 has none (one line)."""
    if target_turn < 2:
        raise ConfigError(f"--target-turn must be at least 2 (the probe conditions turn T on the history of "
                          f"turns 1..T-1; turn 1 has none), got {target_turn}")


def plan_probe(config: RunConfig, target_turn: int, rates: tuple[float, ...]) -> ProbePlan:
    """`config.samples` samples per rate, each with its synthetic history. Raises LheError on bad input."""
    check_target_turn(target_turn)
    per_rate = config.samples
    config = replace(config, turns=target_turn, samples=per_rate * len(rates), extra={
        **config.extra, "probe": {"target_turn": target_turn, "rates": list(rates), "samples_per_rate": per_rate}})
    config.validate()
    base = build_task(replace(config, samples=per_rate))
    samples, history, probe_rates = [], {}, {}
    for r_index, rate in enumerate(rates):
        for sample in base.samples:
            index = r_index * per_rate + sample.index
            clone = Sample(index=index, keys=sample.keys, values=sample.values, k=sample.k)
            samples.append(clone)
            history[index] = synthetic_history(clone, target_turn, rate, config.seed)
            probe_rates[index] = rate
    task = Task(dictionary=base.dictionary, samples=tuple(samples), k=base.k, turns=target_turn, source=base.source)
    return ProbePlan(config, task, history, probe_rates)


def prepare_probe(config: RunConfig, db: Database, target_turn: int, rates: tuple[float, ...], *,
                  provider: Provider | None = None, base_url: str | None = None,
                  stream_deltas: bool = False, session_id: str | None = None) -> PreparedRun:
    """The probe as a session of kind `probe` whose samples carry their rate (see `plan_probe`)."""
    return prepare_planned_probe(plan_probe(config, target_turn, rates), db, provider=provider, base_url=base_url,
                                 stream_deltas=stream_deltas, session_id=session_id)


def prepare_planned_probe(plan: ProbePlan, db: Database, *, provider: Provider | None = None,
                          base_url: str | None = None, stream_deltas: bool = False,
                          session_id: str | None = None) -> PreparedRun:
    """`prepare_probe` for a plan already made (the TUI makes it to check the input before the app starts)."""
    config, task, history, probe_rates = plan.config, plan.task, plan.history, plan.rates
    provider = provider or make_provider(config, base_url=base_url)
    session_id = session_id or new_session_id()
    bus = EventBus()
    writer = SessionWriter(db, session_id, probe_rates=probe_rates)
    bus.subscribe(writer)
    runner = Runner(config, task, provider, session_id, bus, history=history, stream_deltas=stream_deltas,
                    kind="probe")
    writer.on_failure = runner.halt
    return PreparedRun(runner=runner, bus=bus, provider=provider, session_id=session_id, writer=writer)


@dataclass(frozen=True)
class ProbeRow:
    rate: float
    n: int
    accuracy: float | None             # answer accuracy at the target turn (answer = gold)
    ci_low: float | None
    ci_high: float | None
    turn_accuracy: float | None        # turn accuracy: the update from the (synthetic) history is right


def probe_table(db: Database, session_id: str) -> list[ProbeRow]:
    rows = db.execute("SELECT s.probe_rate, t.correct, t.step_correct FROM samples s JOIN turns t "
                      "ON t.session_id = s.session_id AND t.sample = s.sample WHERE s.session_id = ? "
                      "ORDER BY s.probe_rate, s.sample", [session_id]).fetchall()
    by_rate: dict[float, list[tuple[bool, bool]]] = {}
    for rate, correct, step in rows:
        by_rate.setdefault(rate, []).append((bool(correct), bool(step)))
    table = []
    for rate, flags in sorted(by_rate.items()):
        correct = [[c] for c, _ in flags]
        low, high = bootstrap_ci(correct, "answer", n_boot=1000, seed=0)
        table.append(ProbeRow(rate=rate, n=len(flags), accuracy=sum(c for c, _ in flags) / len(flags),
                              ci_low=low[0], ci_high=high[0], turn_accuracy=sum(s for _, s in flags) / len(flags)))
    return table
