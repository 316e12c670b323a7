"""Command-line parser: one-line errors, never a usage dump and a traceback."""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import replace
from pathlib import Path

from lhe_tui.core.bounds import INT64_MAX
from lhe_tui.common.errors import ConfigError
from lhe_tui.core.config import (DATA_SOURCES, MODES, PROVIDERS, Injection, RunConfig, base_url_fields,
                                  parse_extra_body, parse_inject_at, thinking_switch)
from lhe_tui.core.paper import with_paper
from lhe_tui.runner.retry import BASE_S, CAP_S, MAX_RETRY_AFTER_S, RETRY_BUDGET_S
from lhe_tui.store.database import DEFAULT_DB
from lhe_tui.task.dataset import dataset_turns
from lhe_tui.core.step_rules import DEFAULT_STEP_RULE, STEP_RULES
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


def _probability(text: str) -> float:
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


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= INT64_MAX:
        raise argparse.ArgumentTypeError(f"must be within 1..{INT64_MAX:,}, got {text!r}")
    return value


def add_budget_options(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--max-cost", type=_positive_float, default=None, metavar="USD",
                   help="stop before a request would take the session's cost past USD (priced from the price "
                        "files; the model needs a price); the session ends interrupted and resumes with a new budget")
    g.add_argument("--max-tokens-total", type=_positive_int, default=None, metavar="N",
                   help="stop before a request would take the session's tokens (input + output) past N")
    g.add_argument("--rpm", type=_positive_int, default=None, metavar="N",
                   help="send at most N requests per minute (client-side token bucket)")
    g.add_argument("--tpm", type=_positive_int, default=None, metavar="N",
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


THEME_HELP = "theme name (see themes/; default lhe-dark)"
ID_HELP = ("a session id, its start (20261123-1154), its end (115417-5b3c, as the TUI shows it) when only one "
           "session matches, or latest")


def build_parser() -> OneLineParser:
    from lhe_tui import __version__

    parser = OneLineParser(prog="lhe-tui", description="Watch, steer and replay long-horizon execution runs of LLMs. "
                           "With no command: the sessions list, or a simulated demo run when the store is empty.")
    parser.add_argument("--version", action="version", version=f"lhe-tui {__version__}")
    parser.add_argument("--theme", default=None, help=THEME_HELP)
    add_db(parser, top=True)
    sub = parser.add_subparsers(dest="command", parser_class=OneLineParser)
    demo = sub.add_parser("demo", help="watch a simulated run (8 samples x 200 turns, thinking mode; stored like any run)")
    add_db(demo)
    demo.add_argument("--theme", default=argparse.SUPPRESS, help=THEME_HELP)
    run = sub.add_parser("run", help="run a session (TUI, or --headless)")
    add_run_options(run)
    add_db(run)
    run.add_argument("--headless", action="store_true", help="no TUI: a progress bar, then a summary")
    run.add_argument("--arm", action="append", default=[], metavar="NAME:FLAGS",
                     help="run arms side by side over the same task (dictionary and keys), each its own session in "
                          "one group: NAME, a colon, then run flags over the run's own (not task flags), e.g. "
                          "--arm plain: --arm inj:--inject-at=20:5; repeat for each arm (two or more)")
    run.add_argument("--estimate", action="store_true",
                     help="print the run's expected input/output tokens and cost (with and without prompt caching) "
                          "and exit: nothing is run or stored")
    run.add_argument("--estimate-reply-tokens", type=int64, default=None, metavar="N",
                     help="--estimate: output tokens a reply (default per mode: direct 8, cot 150, thinking 1000)")
    run.add_argument("--assume-p", type=_probability, default=None, metavar="P",
                     help="--estimate with --until: the per-step accuracy the expected saving assumes (default: "
                          "the p before the first error of the newest stored run of the same model)")
    run.add_argument("--estimate-latency", type=_positive_float, default=None, metavar="SECONDS",
                     help="--estimate: seconds a reply takes, for the run's duration (default: not counted; the "
                          "duration is then a lower bound from --rpm / --tpm alone)")
    run.add_argument("--theme", default=argparse.SUPPRESS, help=THEME_HELP)
    ls = sub.add_parser("sessions", help="list stored sessions")
    add_db(ls)
    show = sub.add_parser("show", help="one session's per-turn accuracy table")
    show.add_argument("session_id", help=ID_HELP)
    show.add_argument("--every", type=int64, default=None, metavar="N",
                      help="one row every N turns (default: about 50 rows; the first and last turns always)")
    show.add_argument("--all", action="store_true", help="every turn (same as --every 1)")
    add_step_rule(show)
    show.add_argument("--turn", type=int, default=None, metavar="T",
                      help="one turn of one sample (--sample, default 0): its keys, answer against gold, reply, "
                           "reasoning, retries and latency")
    show.add_argument("--sample", type=int, default=0, metavar="S", help="--turn: the sample (0-based)")
    show.add_argument("--request", action="store_true",
                      help="--turn: what the model was sent at that turn (system prompt, history as sent with "
                           "injected values, window and placeholders marked, the user message, the options)")
    show.add_argument("--json", action="store_true", help="--turn: as JSON")
    add_db(show)
    export = sub.add_parser("export", help="write a session's turns as JSON or CSV, or its per-turn curves (--curves)")
    export.add_argument("session_id", help=ID_HELP)
    export.add_argument("--format", choices=("json", "csv", "curves"), default="json",
                        help="json (default): session, config, prompt, summary, curves, samples, turns and events; "
                             "csv: one row a turn (with session_id; a probe's with probe_rate); "
                             "curves: the same as --curves --format csv (kept for scripts)")
    export.add_argument("--curves", action="store_true",
                        help="the per-turn curves instead: turn, steps (turn*K), n samples counted, task, turn and "
                             "answer accuracy and their 95%% bootstrap bounds, as CSV or JSON (--format)")
    export.add_argument("-o", "--output", type=Path, default=None, help="file (default: standard output)")
    add_step_rule(export)
    add_db(export)
    replay = sub.add_parser("replay", help="replay a stored session in the TUI")
    replay.add_argument("session_id", help=ID_HELP)
    replay.add_argument("--theme", default=argparse.SUPPRESS, help=THEME_HELP)
    add_db(replay)
    probe = sub.add_parser("probe", help="target-turn probe: accuracy at turn T per history error rate")
    add_run_options(probe)
    add_db(probe)
    probe.add_argument("--target-turn", type=int64, required=True, help="the turn T the model is queried at")
    probe.add_argument("--rates", default="0,0.25,0.5,0.75,1", help="history error rates (default 0,0.25,0.5,0.75,1)")
    probe.add_argument("--headless", action="store_true", help="no TUI: a progress bar, then the results")
    probe.add_argument("--theme", default=argparse.SUPPRESS, help=THEME_HELP)
    compare = sub.add_parser("compare", help="compare sessions' accuracy curves; a group's arms (or two sessions "
                             "over the same keys) with paired bootstrap CIs of their difference")
    compare.add_argument("session_ids", nargs="+", metavar="session_id",
                         help=ID_HELP + "; or a group id (grp-…) to compare its arms")
    compare.add_argument("--at", default=None, help="turns to report accuracy at, e.g. 10,50,100")
    compare.add_argument("--arms", default=None, metavar="A,B",
                         help="a group's arms to compare (the first against each other; default: all, the first "
                              "given at the run against each other)")
    compare.add_argument("--tui", action="store_true", help="open the TUI's compare screen instead of printing")
    add_step_rule(compare)
    compare.add_argument("--theme", default=argparse.SUPPRESS, help=THEME_HELP)
    add_db(compare)
    plot = sub.add_parser("plot", help="write a publication figure of sessions (png, svg or pdf; needs the "
                                       "figures extra: matplotlib)")
    plot.add_argument("session_ids", nargs="+", metavar="session_id", help=ID_HELP + " A group id (grp-…) "
                      "draws its arms overlaid; a sweep id (swp-…) its figures (--kind, --by).")
    plot.add_argument("--kind", choices=("decay", "sum", "compare", "probe", "horizon", "k"), default=None,
                      help="decay: task and turn accuracy (answer accuracy dotted) with the task curve's 95%% band, p^t and H_0.5; sum: one "
                           "sample's model vs gold running sum; compare: sessions' task curves; probe: accuracy "
                           "at the target turn per error rate (default: probe for a probe session, compare for "
                           "several, else decay)")
    plot.add_argument("--sample", type=int64, default=0, metavar="N", help="--kind sum: the sample drawn")
    plot.add_argument("--by", default=None, metavar="AXIS",
                      help="a sweep (swp-…): the axis on the x axis (horizon) or the colours (decay); default model. "
                           "A sweep draws --kind horizon (H_0.5 with 95%% CIs per run, default), probe, decay or k "
                           "(H in steps against K); see docs/sweeps.md")
    add_step_rule(plot)
    plot.add_argument("--out", "-o", type=Path, required=True, metavar="FILE",
                      help="the figure file: .png, .svg or .pdf (vector)")
    plot.add_argument("--title", default=None, metavar="TEXT", help="the figure's title (default: what was run)")
    plot.add_argument("--label", action="append", default=[], metavar="ID=TEXT",
                      help="name a session (or a group's arm, by its session id) in the legend; repeatable "
                           "(default: what differs between the plotted sessions; a group's arms: their names)")
    add_db(plot)
    doctor = sub.add_parser("doctor", help="check a store's integrity; --recover writes what is readable to a new file")
    doctor.add_argument("--recover", type=Path, default=None, metavar="OUT",
                        help="write a recovered copy to OUT (a new file; the store itself is never changed)")
    add_db(doctor)
    resume = sub.add_parser("resume", help="continue an unfinished session from its last committed turns")
    resume.add_argument("session_id", help=ID_HELP + "; or a group id (grp-…): its unfinished arms together "
                        "(--headless)")
    resume.add_argument("--headless", action="store_true", help="no TUI: a progress bar, then a summary")
    add_budget_options(resume.add_argument_group("budget and rate limits (replace the stored ones)"))
    resume.add_argument("--theme", default=argparse.SUPPRESS, help=THEME_HELP)
    add_db(resume)
    add_web_commands(sub)
    from lhe_tui.cli.fork_cmd import add_fork_command

    add_fork_command(sub)
    add_sweep_command(sub)
    return parser


def add_web_commands(sub: argparse._SubParsersAction) -> None:
    """`datasette` and `serve`: the store and the TUI in a browser (optional extras; lhe_tui.cli.web)."""
    from lhe_tui.cli.web import DATASETTE_PORT, LOOPBACK, MAX_APPS, SERVE_PORT, TOKEN_ENV

    datasette = sub.add_parser("datasette", help="browse the store in Datasette (read-only; tables described, canned "
                               "queries: curves, first_errors, injections); needs the [datasette] extra")
    datasette.add_argument("--host", default=LOOPBACK, help="address to listen on (a non-loopback one is warned about)")
    datasette.add_argument("--port", type=int, default=DATASETTE_PORT, help="port to listen on")
    datasette.add_argument("--print-metadata", action="store_true",
                           help="print the Datasette metadata (JSON, keyed for --db) and exit, for "
                                "`datasette -i DB --metadata FILE` by hand")
    add_db(datasette)
    serve = sub.add_parser("serve", help="serve the TUI in a browser through textual-serve (one app per tab, on "
                           "the sessions list); needs the [serve] extra")
    serve.add_argument("--host", default=LOOPBACK, help="address to listen on (a non-loopback one is warned about)")
    serve.add_argument("--port", type=int, default=SERVE_PORT, help="port to listen on")
    serve.add_argument("--public-url", default=None, metavar="URL",
                       help="the URL browsers reach the server at, when not http://HOST:PORT (a proxy, 0.0.0.0); "
                            "a socket's Origin must be this address")
    serve.add_argument("--token", default=None, metavar="TOKEN",
                       help=f"the login in the printed URL (at least 16 URL-safe characters; default: ${TOKEN_ENV}, "
                            "else a new random one each start)")
    serve.add_argument("--max-apps", type=int, default=MAX_APPS, metavar="N",
                       help="app processes (browser tabs) at once; one more is refused")
    serve.add_argument("--base-url", action="append", default=[], metavar="URL", dest="base_urls",
                       help="a base URL served apps may run against (repeat for more; besides it only the "
                            "providers' own and $OPENAI_BASE_URL / $ANTHROPIC_BASE_URL)")
    serve.add_argument("--allow-any-base-url", action="store_true",
                       help="let served apps run against any base URL (sending the server's API keys there)")
    serve.add_argument("--theme", default=argparse.SUPPRESS, help=THEME_HELP)
    add_db(serve)


def add_sweep_command(sub: argparse._SubParsersAction) -> None:
    sweep = sub.add_parser("sweep", help="run a sweep file (TOML: base run flags and axes; see docs/sweeps.md): "
                                         "the board, or --headless")
    sweep.add_argument("file", type=Path, help="the sweep file (.toml), e.g. sweeps/sim-offline.toml")
    sweep.add_argument("--estimate", action="store_true",
                       help="print each run's tokens, cost (with and without caching) and least duration under the "
                            "rate limits, and the total, then exit: nothing is run or stored")
    sweep.add_argument("--headless", action="store_true", help="no TUI: a table refreshing in place, then the final one")
    sweep.add_argument("--max-cost", type=_positive_float, default=None, metavar="USD",
                       help="one budget for the whole sweep: no run starts, and running ones stop, before a request "
                            "would take the sweep's cost past USD (over the file's max_cost)")
    sweep.add_argument("--parallel", type=_positive_int, default=None, metavar="N",
                       help="runs at once (default: the file's parallel, else 4)")
    sweep.add_argument("--theme", default=argparse.SUPPRESS, help=THEME_HELP)
    add_db(sweep)
