"""The run flags: the argparse options a run takes (one-line errors for bad values) and reading them into a RunConfig. Used by the CLI's commands and by arms, forks and sweeps, which read flags of their own."""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import replace
from pathlib import Path

from lhe_tui.common.errors import ConfigError
from lhe_tui.core.bounds import INT64_MAX
from lhe_tui.core.config import (DATA_SOURCES, MODES, PROVIDERS, Injection, RunConfig, base_url_fields,
                                 parse_extra_body, parse_inject_at, thinking_switch)
from lhe_tui.core.paper import with_paper
from lhe_tui.core.step_rules import DEFAULT_STEP_RULE, STEP_RULES
from lhe_tui.runner.retry import BASE_S, CAP_S, MAX_RETRY_AFTER_S, RETRY_BUDGET_S
from lhe_tui.store.database import DEFAULT_DB
from lhe_tui.task.dataset import dataset_turns
from lhe_tui.task.protocol import DEFAULT_PROTOCOL, PROTOCOLS
from lhe_tui.task.templates import DEFAULT_PROMPT

DB_ENV = "LHE_TUI_DB"


def default_db() -> Path:
    """The store every command uses unless `--db` says otherwise: $LHE_TUI_DB, else sessions/lhe.db."""
    return Path(os.environ.get(DB_ENV) or DEFAULT_DB)


class DefaultsFormatter(argparse.HelpFormatter):
    """`--help` says each option's default, unless its help already does or there is none worth saying
    (None, off, an empty list)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (not action.option_strings or "default" in text or default is argparse.SUPPRESS
                or default is None or default is False or default == [] or default == ""):
            return text
        shown = str(default).replace("%", "%%")     # argparse %-formats the help text
        return f"{text} (default {shown})".strip()


class OneLineParser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(message)


def finite_float(text: str) -> float:
    """An argparse type: a finite number (nan, inf and 1e999 are refused in one line)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def int64(text: str) -> int:
    """An argparse type: a whole number SQLite can store (64 bits)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if not -INT64_MAX <= value <= INT64_MAX:
        raise argparse.ArgumentTypeError(f"must be within ±{INT64_MAX:,} (64 bits), got {len(str(abs(value)))} digits")
    return value


def _inject_at(text: str) -> Injection:
    try:
        return parse_inject_at(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _thinking_switch(text: str) -> bool:
    try:
        return thinking_switch(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


STEP_RULE_HELP = ("how turn accuracy scores the turn after one with no answer: own (the last answer the history "
                  "shows plus the keys of every turn since), reference-live (the reference's per-turn evaluator: "
                  "the last answer plus only the current turn's keys) or reference-final (its final evaluator: "
                  "that turn is wrong); see docs/protocol.md")


def add_step_rule(parser: argparse.ArgumentParser) -> None:
    """`--step-rule` at read time: a scoring choice, so `show`, `export`, `compare` and `plot` may change it."""
    parser.add_argument("--step-rule", default=None, choices=STEP_RULES,
                        help=STEP_RULE_HELP + " (default: the rule stored with the session)")


def probability(text: str) -> float:
    """A number in [0, 1] (--assume-p); NaN and infinities are not."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:     # NaN fails this too
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}")
    return value


def add_db(parser: argparse.ArgumentParser, top: bool = False) -> None:
    # Subcommands suppress the default so `lhe-tui --db X sessions` keeps X.
    parser.add_argument("--db", type=Path, default=default_db() if top else argparse.SUPPRESS,
                        help=f"session store (default ${DB_ENV} if set, else {DEFAULT_DB}; now {default_db()})")
    parser.add_argument("--prices", type=Path, default=None if top else argparse.SUPPRESS, metavar="PATH",
                        help="a price file (TOML, dollars per million tokens) over the shipped prices and "
                             "~/.config/lhe-tui/prices.toml")


def add_run_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--provider", default="sim", choices=PROVIDERS, help="sim (offline, simulated), openai, anthropic, local")
    g.add_argument("--model", default="", help="model name (required for openai/anthropic)")
    g.add_argument("--base-url", action="append", default=None, metavar="URL",
                   help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1; repeat it (or give a comma-"
                        "separated list) for replicas of one model: each sample stays on one of them")
    g.add_argument("--endpoint-concurrency", type=int64, default=None, metavar="N",
                   help="with several --base-url: requests in flight per server at most (default: no limit)")
    g.add_argument("--model-path", default=None, help="GGUF file for --provider local")
    g.add_argument("--mode", default="direct", choices=MODES,
                   help="direct: the answer only; cot: step by step, then the answer; thinking: provider-native reasoning")
    g.add_argument("--temperature", type=finite_float, default=None, help="sampling temperature (default: the provider's)")
    g.add_argument("--top-p", type=finite_float, default=None, help="nucleus sampling (default: the provider's)")
    g.add_argument("--max-tokens", type=int64, default=None, help="cap per reply (default: the provider's)")
    g.add_argument("--paper", action="store_true",
                   help="the paper's run: 100 samples of the reference generator's data (--data paper), its sampling "
                        "(--paper-settings), enable_thinking off in direct/CoT and on in thinking mode for an "
                        "OpenAI-compatible --base-url, reasoning effort high in thinking mode on the OpenAI API, the "
                        "paper protocol; prints what it set (flags given alongside win; see docs/protocol.md)")
    g.add_argument("--paper-settings", action="store_true",
                   help="the paper's sampling only: temperature 0.6, top-p 0.95, max tokens 10,000 outside thinking "
                        "mode (Anthropic: temperature 0.6 only; thinking mode: top-p 0.95 only); flags given win")
    g.add_argument("--enable-thinking", type=_thinking_switch, default=None, metavar="on|off",
                   help="OpenAI-compatible servers (vLLM, SGLang): send chat_template_kwargs.enable_thinking")
    g.add_argument("--extra-body", default=None, metavar="JSON",
                   help='JSON object merged into every request body, e.g. \'{"top_k": 20, "min_p": 0}\'')
    g.add_argument("--reasoning-effort", default=None,
                   help="OpenAI reasoning effort in thinking mode (default medium; high with --paper)")
    g.add_argument("--thinking-budget", type=int64, default=2048, help="Anthropic thinking budget (tokens)")
    g.add_argument("--timeout", type=finite_float, default=120.0,
                   help="seconds without data before a request is given up (default 120)")
    g.add_argument("--retries", type=int64, default=6,
                   help=f"retries per turn on transient errors (default 6); waits back off from {BASE_S:g} s "
                        f"to {CAP_S:g} s with jitter, a server's Retry-After honoured up to {MAX_RETRY_AFTER_S:g} s")
    g.add_argument("--empty-retries", type=int, default=3, metavar="N",
                   help="paper protocol: an empty reply is asked for again up to N times (default 3, as the "
                        "reference); a turn whose request still fails is recorded as one the provider failed")
    add_network_options(g)
    g.add_argument("--no-cache", dest="prompt_cache", action="store_false",
                   help="no prompt-cache breakpoints in Anthropic requests (by default the system prompt and the "
                        "growing history are marked cache_control; see docs/prompt-caching.md)")
    g.add_argument("--protocol", default=None, choices=PROTOCOLS,
                   help="how replies are read and shown back: paper (the reference implementation's rules: first "
                        "<answer> tag, strict integer, compacted history; default) or lenient (last tag, commas "
                        "allowed, verbatim history); see docs/protocol.md")
    g.add_argument("--step-rule", default=DEFAULT_STEP_RULE, choices=STEP_RULES,
                   help=STEP_RULE_HELP + f" (default {DEFAULT_STEP_RULE}); stored with the session")
    g.add_argument("--prompt", default=DEFAULT_PROMPT, metavar="NAME|PATH",
                   help=f"prompt template: a name from prompts/ (default {DEFAULT_PROMPT}; lhe-v1 is lhe-tui's "
                        "first prompt) or a .toml file; see prompts/README.md")
    add_budget_options(p.add_argument_group("budget and rate limits"))
    t = p.add_argument_group("task")
    t.add_argument("--turns", type=int64, default=None,
                   help="turns per sample (default 100; with --dataset, what its rows hold at K, at most 100)")
    t.add_argument("--samples", type=int64, default=None, help="samples, run concurrently (default 1; 100 with --paper)")
    t.add_argument("--k", type=int64, default=1, help="keys per turn (turn complexity)")
    t.add_argument("--seed", type=int64, default=None, help="task and history seed (default 0; 42 with --paper)")
    t.add_argument("--dict-size", type=int64, default=100, help="words in the dictionary")
    t.add_argument("--min-value", type=int64, default=-99, help="smallest word value")
    t.add_argument("--max-value", type=int64, default=99, help="largest word value")
    t.add_argument("--data", default=None, choices=DATA_SOURCES,
                   help="keys without --dataset: generated from --seed (default), or paper: the reference "
                        "repository's generator (seed 42), its dictionary and rows exactly (the default with --paper)")
    t.add_argument("--dataset", default=None, help="the paper's dataset JSON (prefix of it is used)")
    t.add_argument("--dataset-offset", type=int64, default=0, metavar="N",
                   help="start at row N of --dataset or --data paper")
    t.add_argument("--concurrency", type=int64, default=16, help="requests in flight at most")
    h = p.add_argument_group("history")
    h.add_argument("--induced-error-rate", type=finite_float, default=0.0,
                   help="each past answer in the history is replaced by a wrong one with this probability")
    h.add_argument("--heal", action="store_true", help="history always shows gold answers")
    h.add_argument("--window", type=int64, default=None, help="keep only the last W turns in the context")
    p.add_argument_group("early stopping").add_argument("--until", default=None, metavar="RULE",
                   help="stop early once the measurement is known: first-error[+N] (each sample N turns after its "
                        "first error; task accuracy, first errors and H_s stay exact) or horizon[:S] (the run, "
                        "once H_S is decided; S default 0.5)")
    h.add_argument("--inject-at", type=_inject_at, action="append", default=[], metavar="TURN[:OFFSET]",
                   help="inject a wrong answer (OFFSET from it, random if none) into every sample's history at TURN; repeatable")
    s = p.add_argument_group("simulated model")
    s.add_argument("--sim-error", type=finite_float, default=0.005, help="base per-step error probability")
    s.add_argument("--sim-growth", type=finite_float, default=0.0004, help="added error probability per turn")
    s.add_argument("--sim-conditioning", type=finite_float, default=0.6, help="weight of errors seen in history")
    s.add_argument("--sim-delay", type=finite_float, default=0.002, help="seconds per streamed token")


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= INT64_MAX:
        raise argparse.ArgumentTypeError(f"must be within 1..{INT64_MAX:,}, got {text!r}")
    return value


def add_budget_options(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--max-cost", type=positive_float, default=None, metavar="USD",
                   help="stop before a request would take the session's cost past USD (priced from the price "
                        "files; the model needs a price); the session ends interrupted and resumes with a new budget")
    g.add_argument("--max-tokens-total", type=positive_int, default=None, metavar="N",
                   help="stop before a request would take the session's tokens (input + output) past N")
    g.add_argument("--rpm", type=positive_int, default=None, metavar="N",
                   help="send at most N requests per minute (client-side token bucket)")
    g.add_argument("--tpm", type=positive_int, default=None, metavar="N",
                   help="send at most N input tokens per minute, counted before each request is sent")


def budget_fields(a: argparse.Namespace) -> dict:
    return {"max_cost": a.max_cost, "max_tokens_total": a.max_tokens_total, "rpm": a.rpm, "tpm": a.tpm}


def add_network_options(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--deadline", type=finite_float, default=1800.0, metavar="SECONDS",
                   help="seconds for a whole request, its stream included; past it the request is retried "
                        "(default 1800)")
    g.add_argument("--retry-budget", type=finite_float, default=RETRY_BUDGET_S, metavar="SECONDS",
                   help=f"seconds one turn may spend retrying, waits included, before its sample fails "
                        f"(default {RETRY_BUDGET_S:g})")
    g.add_argument("--max-reply-mb", type=finite_float, default=4.0, metavar="MB",
                   help="reply and reasoning beyond this many million characters are not read: the turn is "
                        "a format miss (default 4)")


def network_fields(a: argparse.Namespace) -> dict[str, float]:
    return {"deadline": a.deadline, "retry_budget": a.retry_budget, "max_reply_mb": a.max_reply_mb}


# run options whose argparse default is None so that a given value is told from an unset one (--paper fills
# the unset ones), with the RunConfig field each sets
_PAPER_FLAGS = {"samples": "samples", "seed": "seed", "data": "data", "temperature": "temperature",
                "top_p": "top_p", "max_tokens": "max_tokens", "enable_thinking": "enable_thinking",
                "reasoning_effort": "reasoning_effort", "protocol": "protocol"}


def config_from_args(a: argparse.Namespace) -> RunConfig:
    # --paper / --paper-settings fill the flags left unset (they default to None, so an explicit value,
    # even one equal to a default, is told apart from an unset one and wins).
    given = {field for dest, field in _PAPER_FLAGS.items() if getattr(a, dest, None) is not None}
    config = RunConfig(
        provider=a.provider, model=a.model, **base_url_fields(a.base_url),
        endpoint_concurrency=a.endpoint_concurrency, mode=a.mode, k=a.k,
        turns=100 if a.turns is None else a.turns, samples=1 if a.samples is None else a.samples,
        seed=0 if a.seed is None else a.seed,
        dict_size=a.dict_size, min_value=a.min_value, max_value=a.max_value,
        dataset=a.dataset, dataset_offset=a.dataset_offset, data=a.data or "generated", concurrency=a.concurrency,
        temperature=a.temperature, top_p=a.top_p, max_tokens=a.max_tokens,
        reasoning_effort=a.reasoning_effort or "medium", thinking_budget=a.thinking_budget, timeout=a.timeout,
        max_retries=a.retries, empty_retries=a.empty_retries, enable_thinking=a.enable_thinking,
        prompt_cache=a.prompt_cache, protocol=a.protocol or DEFAULT_PROTOCOL, prompt=a.prompt, step_rule=a.step_rule,
        extra_body=parse_extra_body(a.extra_body) if a.extra_body is not None else {},
        induced_error_rate=a.induced_error_rate, heal=a.heal,
        window=a.window, inject_at=tuple(a.inject_at), until=a.until, sim_base_error=a.sim_error, sim_growth=a.sim_growth,
        sim_conditioning=a.sim_conditioning, sim_delay=a.sim_delay, model_path=a.model_path,
        **network_fields(a), **budget_fields(a),
    )
    kind = "paper" if a.paper else "settings" if a.paper_settings else None
    config = with_paper(config, kind, given)
    if a.turns is None and config.dataset:
        # --turns unset with a dataset: what its rows hold at K (read once the other flags are checked).
        config.validate()
        turns = dataset_turns(config.dataset, config.samples, config.k, config.dataset_offset)
        config = replace(config, turns=turns)
    return config.validate()
