"""--paper and --paper-settings: the paper's run, filled into the RunConfig fields a user left unset.

`--paper` sets the paper's data, settings and protocol: 100 samples of the reference generator's data
(seed 42), the paper's sampling (below), `chat_template_kwargs.enable_thinking` off in direct/CoT and on in
thinking mode for an OpenAI-compatible server (a base URL), reasoning effort high in thinking mode where the
provider takes one (the OpenAI API), and the paper protocol. `--paper-settings` sets the sampling only.
A flag given beside either wins. What was filled in is kept in `RunConfig.paper_choices` (stored with the
session) and printed once by `describe`.

The paper's sampling, as each provider takes it:
- OpenAI-compatible and local: temperature 0.6, top_p 0.95, 10,000 tokens a reply outside thinking mode;
- Anthropic, direct/CoT: temperature 0.6 and 10,000 tokens, no top_p (current Claude models refuse
  temperature and top_p together); thinking mode: top_p 0.95 only (extended thinking refuses any
  temperature but 1, and takes top_p 0.95..1).
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import fields, replace
from typing import Any
from urllib.parse import urlsplit

from lhe_tui.core.config import PAPER_MAX_TOKENS, PAPER_SETTINGS, RunConfig

KINDS = ("paper", "settings")       # RunConfig.paper: --paper, --paper-settings
FLAG = {"paper": "--paper", "settings": "--paper-settings"}
PAPER_SAMPLES = 100
PAPER_SEED = 42
PAPER_REASONING_EFFORT = "high"
TASK_FIELDS = ("samples", "data", "seed")   # a run's --paper sets these; an arm's or a fork's cannot
OPENAI_API_HOST = "api.openai.com"
_DEFAULTS = {f.name: f.default for f in fields(RunConfig) if not callable(f.default_factory)}  # type: ignore[arg-type]


def sampling(provider: str, mode: str) -> dict[str, Any]:
    """The paper's temperature, top_p and token cap, as `provider` takes them in `mode`."""
    if provider == "anthropic":
        if mode == "thinking":
            return {"top_p": PAPER_SETTINGS["top_p"]}
        return {"temperature": PAPER_SETTINGS["temperature"], "max_tokens": PAPER_MAX_TOKENS}
    values: dict[str, Any] = dict(PAPER_SETTINGS)
    if mode != "thinking":
        values["max_tokens"] = PAPER_MAX_TOKENS
    return values


def compatible_base_url(config: RunConfig) -> str | None:
    """The OpenAI-compatible server an `openai` run talks to (vLLM, SGLang, ...), if not the OpenAI API."""
    if config.provider != "openai":
        return None
    url = config.base_url or os.environ.get("OPENAI_BASE_URL")
    return url if url and (urlsplit(url).hostname or "").lower() != OPENAI_API_HOST else None


def paper_values(kind: str, config: RunConfig, *, task: bool) -> dict[str, Any]:
    """Every field `kind` sets for `config`'s provider and mode, before the flags given win; the task's
    fields (samples, data, seed) only with `task`."""
    values: dict[str, Any] = {}
    if kind == "paper" and task:
        values["samples"] = PAPER_SAMPLES
        if not config.dataset:           # --dataset names the paper's published file: it is used as it is
            values["data"] = "paper"
        values["seed"] = PAPER_SEED
    values.update(sampling(config.provider, config.mode))
    if kind == "paper":
        if compatible_base_url(config):
            values["enable_thinking"] = config.mode == "thinking"
        if config.mode == "thinking" and config.provider == "openai" and not compatible_base_url(config):
            values["reasoning_effort"] = PAPER_REASONING_EFFORT
        values["protocol"] = "paper"
    return values


def with_paper(config: RunConfig, kind: str | None, given: Collection[str], *, task: bool = True) -> RunConfig:
    """`config` with `kind`'s values in every field not in `given`; `paper_choices` says which it filled."""
    if kind is None:
        return config
    chosen = {name: value for name, value in paper_values(kind, config, task=task).items() if name not in given}
    return replace(config, **chosen, paper=kind, paper_choices=chosen)


def rechoose(base: RunConfig, fields: dict[str, Any]) -> RunConfig:
    """`base` with an arm's or a fork's `fields` over it, the paper's choices made again for the result's
    provider and mode (an arm in thinking mode gets enable_thinking on). The task's choices stay."""
    kind = fields.get("paper") or base.paper
    config = replace(base, **fields)
    if kind is None:
        return config
    task_choices = {name: value for name, value in base.paper_choices.items() if name in TASK_FIELDS}
    reset = {name: _DEFAULTS[name] for name in base.paper_choices
             if name not in fields and name not in TASK_FIELDS and name in _DEFAULTS}
    config = replace(config, **reset)
    # Given: the fields the arm or fork sets, and those the base set by hand (a value that is not the default).
    given = set(fields) | {name for name, default in _DEFAULTS.items() if getattr(config, name) != default}
    config = with_paper(config, kind, given, task=False)
    return replace(config, paper_choices={**task_choices, **config.paper_choices})


def describe(config: RunConfig) -> str | None:
    """One line: what --paper or --paper-settings set (None when neither was given)."""
    if not config.paper:
        return None
    shown = []
    for name, value in config.paper_choices.items():
        if name == "enable_thinking":
            shown.append(f"chat_template_kwargs.enable_thinking={'true' if value else 'false'}")
        elif name == "data":
            last = config.dataset_offset + config.samples - 1
            shown.append(f"data=paper (the reference generator's rows {config.dataset_offset}..{last})")
        elif name == "max_tokens":
            shown.append(f"max_tokens={value:,}")
        else:
            shown.append(f"{name}={value}")
    flag = FLAG.get(config.paper, config.paper)
    return f"{flag} set: {', '.join(shown)}" if shown else f"{flag} set nothing: every setting was given"
