"""Set up a run: build the task and provider from a RunConfig, wire the store, return a ready Runner.

Shared by the headless CLI and the TUI, so both start runs the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lhe_tui.providers.base import Provider
from lhe_tui.providers.factory import make_provider
from lhe_tui.core.config import RunConfig
from lhe_tui.core.events import EventBus
from lhe_tui.core.lineage import Lineage, new_id
from lhe_tui.runner.runner import Runner
from lhe_tui.runs.resume_state import ResumeState, load_resume_state
from lhe_tui.store.writer import SessionWriter
from lhe_tui.task import Task, generate_task, load_dataset

if TYPE_CHECKING:
    from sqlite_utils import Database


def new_session_id() -> str:
    return new_id()


def build_task(config: RunConfig) -> Task:
    if config.dataset:
        return load_dataset(config.dataset, config.samples, config.turns, config.k, config.dataset_offset)
    if config.data == "paper":
        from lhe_tui.task.paper_data import paper_task

        return paper_task(config.samples, config.turns, config.k, config.dataset_offset)
    return generate_task(config.seed, config.samples, config.turns, config.k, config.dict_size,
                         config.min_value, config.max_value)


@dataclass
class PreparedRun:
    runner: Runner
    bus: EventBus
    provider: Provider
    session_id: str
    writer: SessionWriter | None = None

    async def run(self) -> str:
        """Run to the end (the runner's final status), then close the provider's connections."""
        try:
            return await self.runner.run()
        finally:
            await self.provider.aclose()


def prepare_run(config: RunConfig, db: Database, *, provider: Provider | None = None, base_url: str | None = None,
                session_id: str | None = None, stream_deltas: bool = True, task: Task | None = None,
                lineage: Lineage | None = None) -> PreparedRun:
    """Validate, build the task (unless given) and provider, and subscribe the store. Raises LheError on bad
    input."""
    config.validate()
    task = task or build_task(config)
    provider = provider or make_provider(config, base_url=base_url)
    session_id = session_id or new_session_id()
    bus = EventBus()
    writer = SessionWriter(db, session_id)
    bus.subscribe(writer)
    runner = Runner(config, task, provider, session_id, bus, stream_deltas=stream_deltas, lineage=lineage)
    writer.on_failure = runner.halt
    return PreparedRun(runner=runner, bus=bus, provider=provider, session_id=session_id, writer=writer)


def prepare_resume(db: Database, session_id: str, *, provider: Provider | None = None, base_url: str | None = None,
                   stream_deltas: bool = True, state: ResumeState | None = None) -> PreparedRun:
    """Continue a stored run from each sample's last committed turn, with the history it would have had.

    `state`: the session as `load_resume_state` read it, when the caller needed it first (its config
    decides whether a local model server must be started for the provider)."""
    state = state or load_resume_state(db, session_id)
    provider = provider or make_provider(state.config, base_url=base_url)
    bus = EventBus()
    writer = SessionWriter(db, session_id, first_errors=state.first_errors)   # refused if it is being run
    bus.subscribe(writer)
    budget = None
    if state.config.max_cost is not None or state.config.max_tokens_total is not None:
        from lhe_tui.runner.budget import budget_for
        from lhe_tui.store.queries import session_token_totals

        budget = budget_for(state.config, spent=session_token_totals(db, session_id))  # what it has spent
    runner = Runner(state.config, state.task, provider, session_id, bus, history=state.history,
                    stream_deltas=stream_deltas, pending_scripted=state.pending_scripted,
                    resumed=True, budget=budget, lineage=state.lineage)
    writer.on_failure = runner.halt
    return PreparedRun(runner=runner, bus=bus, provider=provider, session_id=session_id, writer=writer)
