"""What the model saw at one turn: the request of a stored turn, rebuilt from the store.

The history comes from `load_resume_state` (what resume and fork continue from) and the messages from the
run's own policy and prompt (`lhe_tui.runner.history.conversation`, as the runner builds them), so what is
shown is what was sent: injected and induced values, the sliding window, the protocol's placeholders. The
request options are the run's generation settings as the provider sends them.

One limit: an injection made by hand while turn T was in flight entered the history after T's request had
left; the rebuilt request of T shows it (the event log has the injection's time).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from lhe_tui.common.errors import ConfigError, StoreError
from lhe_tui.providers.factory import generation_settings
from lhe_tui.runs.resume_state import load_resume_state
from lhe_tui.runner.history import conversation
from lhe_tui.store.queries import load_turns

if TYPE_CHECKING:
    from sqlite_utils import Database

    from lhe_tui.providers.base import Message


@dataclass(frozen=True)
class PastTurn:
    """One earlier turn as the request carried it."""

    turn: int
    keys: tuple[str, ...]
    user: str                    # the user message (the turn's keys, as the template words them)
    assistant: str               # the assistant message the model saw
    model_answer: int | None     # what the model answered then
    shown_answer: int | None     # the answer its history showed (differs when injected, induced or healed)
    mark: str                    # "", "injected", "induced", "healed" or "placeholder" (no valid answer)


@dataclass(frozen=True)
class TurnRequest:
    session_id: str
    sample: int
    turn: int
    system: str
    history: tuple[PastTurn, ...]    # the turns in the request, oldest first (the window's, with one)
    left_out: int                    # earlier turns the sliding window left out
    keys: tuple[str, ...]            # this turn's keys
    user: str                        # this turn's user message
    options: dict[str, Any]          # the request options (model, sampling, thinking switch, extra body)
    messages: tuple[Message, ...]    # the request's messages, exactly

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self, *, system_lines: int = 3) -> list[str]:
        """As text: the system prompt collapsed to its first lines, each past turn on one line (its keys, then
        the assistant message as sent, with its mark), this turn's user message and the options."""
        system = self.system.splitlines()
        shown = system[:system_lines]
        out = [f"request of session {self.session_id} sample {self.sample} turn {self.turn} "
               f"({len(self.messages)} messages)", "system:"]
        out += [f"  {line}" for line in shown]
        if len(system) > len(shown):
            out.append(f"  … {len(system) - len(shown)} more lines ({len(self.system):,} characters)")
        if self.left_out:
            out.append(f"(turns 1-{self.left_out} left out by the sliding window)")
        for past in self.history:
            mark = f"   [{past.mark}{describe_mark(past)}]" if past.mark else ""
            out.append(f"t{past.turn:<5} {', '.join(past.keys):<12} → {one_line(past.assistant)}{mark}")
        out.append(f"t{self.turn:<5} {', '.join(self.keys):<12} ← this turn; its user message:")
        out += [f"  {line}" for line in self.user.splitlines()]
        out.append("options: " + json.dumps(self.options, sort_keys=True))
        return out


def describe_mark(past: PastTurn) -> str:
    if past.mark in ("injected", "induced", "healed") and past.shown_answer != past.model_answer:
        said = "no answer" if past.model_answer is None else str(past.model_answer)
        return f": model said {said}"
    return ""


def one_line(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


def request_options(config: Any) -> dict[str, Any]:
    """The options the run's requests carried: model and the settings that were set (None: left to the server)."""
    settings = generation_settings(config)
    options: dict[str, Any] = {"provider": config.provider, "model": config.model_label or config.model,
                               "mode": config.mode}
    for name in ("temperature", "top_p", "max_tokens"):
        value = getattr(settings, name)
        if value is not None:
            options[name] = value
    if config.mode == "thinking":
        options["reasoning_effort" if config.provider != "anthropic" else "thinking_budget"] = (
            settings.reasoning_effort if config.provider != "anthropic" else settings.thinking_budget)
    extra = settings.extra_fields()
    if extra:
        options["extra_body"] = extra
    return options


def _mark(record: Any, config: Any) -> str:
    if record.injected:
        return "injected"
    if record.history_answer != record.model_answer:
        return "healed" if config.heal and record.history_answer == record.gold_sum else "induced"
    return "placeholder" if record.model_answer is None else ""


def rebuild_request(db: Database, session_id: str, sample: int, turn: int) -> TurnRequest:
    """The request of `turn` of `sample` (0-based) of a stored run, as it was sent. StoreError (one line) for a
    probe, a sample or turn the session does not have, or a turn not played yet."""
    state = load_resume_state(db, session_id, sample=sample)   # a probe is refused: its history was synthetic
    task, config = state.task, state.config
    if not 0 <= sample < len(task.samples):
        raise ConfigError(f"session {session_id} has no sample {sample} (its samples are 0..{len(task.samples) - 1})")
    if not 1 <= turn <= task.turns:
        raise ConfigError(f"session {session_id} has no turn {turn} (its turns are 1..{task.turns})")
    history = state.history[sample]
    if turn > len(history) + 1:
        raise StoreError(f"session {session_id} sample {sample} has played {len(history)} turns: turn {turn} "
                         "was never requested")
    policy, system = conversation(config, task)
    keys = task.samples[sample].turn_keys(turn)
    past = history[:turn - 1]
    messages = policy.messages(system, past, keys)
    visible = past if config.window is None else past[-config.window:] if config.window else []
    records = {r.turn: r for r in load_turns(db, session_id, sample) if r.turn < turn}
    lines = tuple(PastTurn(turn=e.turn, keys=e.keys, user=policy.turn_text(e.keys), assistant=policy.assistant_content(e),
                           model_answer=e.model_answer, shown_answer=e.history_answer,
                           mark=_mark(records[e.turn], config)) for e in visible)
    return TurnRequest(session_id=session_id, sample=sample, turn=turn, system=system, history=lines,
                       left_out=len(past) - len(visible), keys=keys, user=policy.turn_text(keys),
                       options=request_options(config), messages=tuple(messages))
