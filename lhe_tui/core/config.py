"""Everything that defines a run. Serialised into the store (never with an API key)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from lhe_tui.core.bounds import (ANSWER_BOUND, EXTRA_BODY_CHARS, INT64_MAX, MAX_REPLY_MB, MAX_REQUEST_TOKENS,
                                 VALUE_BOUND, check_json, finite, within)
from lhe_tui.core.urls import check_base_url
from lhe_tui.core.step_rules import DEFAULT_STEP_RULE, STEP_RULES
from lhe_tui.core.until import Until
from lhe_tui.common.errors import ConfigError
from lhe_tui.task.protocol import DEFAULT_PROTOCOL, LEGACY_PROTOCOL, PROTOCOLS
from lhe_tui.task.templates import DEFAULT_PROMPT, LEGACY_PROMPT, PromptTemplate, template_for

PROVIDERS = ("sim", "openai", "anthropic", "local")
MODES = ("direct", "cot", "thinking")
DATA_SOURCES = ("generated", "paper")  # --data: from --seed, or the reference generator's (lhe_tui.task.paper_data)
# Upper bounds keep a typo (an extra zero or ten) from allocating a run that can never finish.
LIMITS = {"k": 1_000, "turns": 1_000_000, "samples": 10_000, "concurrency": 1_024, "dict_size": 100_000}


@dataclass(frozen=True)
class Injection:
    """A scripted injection: after `turn` finishes, the history shows answer + offset (or `value`)."""

    turn: int
    offset: int | None = None
    value: int | None = None


def parse_inject_at(text: str) -> Injection:
    """`TURN` or `TURN:OFFSET`, the --inject-at syntax; ValueError with a one-line reason otherwise."""
    turn, _, offset = text.strip().partition(":")
    try:
        return Injection(turn=int(turn), offset=int(offset) if offset.strip() else None)
    except ValueError:
        raise ValueError(f"--inject-at expects TURN or TURN:OFFSET, got {text.strip()!r}") from None


# Request body keys --extra-body may not set: lhe-tui sends them itself and the run depends on them.
RESERVED_BODY_KEYS = ("messages", "model", "stream", "stream_options")
PAPER_SETTINGS: dict[str, float] = {"temperature": 0.6, "top_p": 0.95}  # the paper's sampling (lhe_tui.core.paper)
PAPER_MAX_TOKENS = 10_000  # the reference's per-turn cap outside thinking mode


def parse_extra_body(text: str) -> dict[str, Any]:
    """The --extra-body JSON object; ConfigError (one line) for anything else: invalid or non-strict JSON
    (NaN, Infinity, a number past a float such as 1e999), too long or too deep, text UTF-8 cannot encode."""
    if len(text) > EXTRA_BODY_CHARS:
        raise ConfigError(f"--extra-body is {len(text):,} characters long; at most {EXTRA_BODY_CHARS:,}")
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise ConfigError("--extra-body is nested too deep") from None
    except ValueError as exc:
        raise ConfigError(f"--extra-body must be a JSON object, got invalid JSON ({exc.__class__.__name__}: "
                          f"{str(exc).splitlines()[0]})") from None
    check_json(value, "--extra-body")
    if not isinstance(value, dict):
        shown = json.dumps(value)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise ConfigError(f"--extra-body must be a JSON object, got {type(value).__name__} {shown}")
    return value


def base_urls(values: list[str] | None) -> tuple[str, ...]:
    """Every URL --base-url gave (repeated, or comma-separated), in order, duplicates dropped."""
    urls = (url.strip() for value in values or () for url in value.split(","))
    return tuple(dict.fromkeys(url for url in urls if url))


def base_url_fields(values: list[str] | None) -> dict[str, Any]:
    """RunConfig's `base_url` (the first URL) and `endpoints` (all of them when more than one) from --base-url."""
    urls = base_urls(values)
    return {"base_url": urls[0] if urls else None, "endpoints": urls if len(urls) > 1 else ()}


def _no_constant(name: str) -> Any:
    raise ConfigError(f"--extra-body holds {name}, not a finite number (strict JSON has no NaN or Infinity)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ConfigError(f"--extra-body holds {text[:24]}, past what a number can be (a float)")
    return value


def thinking_switch(text: str) -> bool:
    """--enable-thinking on|off (also true/false, yes/no, 1/0)."""
    word = text.strip().lower()
    if word in ("on", "true", "yes", "1"):
        return True
    if word in ("off", "false", "no", "0"):
        return False
    raise ValueError(f"--enable-thinking expects on or off, got {text.strip()!r}")


# RunConfig's numeric fields and the flags that set them (for one-line errors).
_FLOAT_FLAGS = {"temperature": "--temperature", "top_p": "--top-p", "timeout": "--timeout", "deadline": "--deadline",
                "max_reply_mb": "--max-reply-mb", "retry_budget": "--retry-budget", "max_cost": "--max-cost",
                "induced_error_rate": "--induced-error-rate", "sim_base_error": "--sim-error",
                "sim_growth": "--sim-growth", "sim_conditioning": "--sim-conditioning",
                "sim_format_miss": "sim_format_miss", "sim_delay": "--sim-delay"}
_INT_FLAGS = {"dataset_offset": "--dataset-offset", "concurrency": "--concurrency", "max_tokens": "--max-tokens",
              "thinking_budget": "--thinking-budget", "max_retries": "--retries", "max_tokens_total":
              "--max-tokens-total", "rpm": "--rpm", "tpm": "--tpm", "window": "--window"}


@dataclass(frozen=True)
class RunConfig:
    provider: str = "sim"
    model: str = ""
    base_url: str | None = None
    # several servers of one model (--base-url repeated): each sample pinned to one (providers.endpoints);
    # empty with one URL. endpoint_concurrency: requests in flight per server at most (None: no limit)
    endpoints: tuple[str, ...] = ()
    endpoint_concurrency: int | None = None
    mode: str = "direct"
    k: int = 1
    turns: int = 100
    samples: int = 1
    seed: int = 0
    dict_size: int = 100
    min_value: int = -99
    max_value: int = 99
    dataset: str | None = None
    dataset_offset: int = 0               # first dataset row used (the reference's start_at), of --dataset or --data paper
    data: str = "generated"               # without --dataset: generated from --seed, or paper (the reference generator's)
    concurrency: int = 16
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    reasoning_effort: str = "medium"
    thinking_budget: int = 2048
    timeout: float = 120.0
    max_retries: int = 6
    empty_retries: int = 3                # paper protocol: an empty reply is asked for again this many times
    # network bounds (issue 14): whole request incl. its stream; reply + reasoning size; retrying per turn
    deadline: float = 1800.0
    max_reply_mb: float = 4.0
    retry_budget: float = 600.0
    # OpenAI-compatible request options: None sends no chat_template_kwargs; extra_body is merged into
    # every request body (anthropic: extra_body only)
    enable_thinking: bool | None = None
    extra_body: dict[str, Any] = field(default_factory=dict)
    # prompt caching (docs/prompt-caching.md): anthropic gets cache_control breakpoints unless --no-cache
    prompt_cache: bool = True
    # what the model is sent and how its replies are read (lhe_tui.task.protocol, lhe_tui.task.templates)
    protocol: str = DEFAULT_PROTOCOL
    step_rule: str = DEFAULT_STEP_RULE     # how turn accuracy scores the turn after a miss (core.step_rules)
    prompt: str = DEFAULT_PROMPT          # a template name or a path to a .toml file
    prompt_text: str | None = None        # the template's full text, stored with the session (set by the Runner)
    # budget and client-side rate limits (lhe_tui.runner.budget, lhe_tui.runner.rate_limit); None: none
    max_cost: float | None = None         # US dollars, priced from the price files
    max_tokens_total: int | None = None   # input (cached included) + output tokens
    rpm: int | None = None                # requests per minute
    tpm: int | None = None                # input tokens per minute (estimated before sending)
    # history policy
    induced_error_rate: float = 0.0
    heal: bool = False
    window: int | None = None
    inject_at: tuple[Injection, ...] = ()
    # early stopping (lhe_tui.core.until): None runs every turn
    until: str | None = None
    # simulated model
    sim_base_error: float = 0.005
    sim_growth: float = 0.0004
    sim_conditioning: float = 0.6
    sim_format_miss: float = 0.003
    sim_delay: float = 0.002
    model_path: str | None = None
    # --paper / --paper-settings (lhe_tui.core.paper): which one, and the fields it filled in (explicit flags win)
    paper: str | None = None
    paper_choices: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> "RunConfig":
        if self.provider not in PROVIDERS:
            raise ConfigError(f"unknown provider {self.provider!r} (choose from {', '.join(PROVIDERS)})")
        if self.mode not in MODES:
            raise ConfigError(f"unknown mode {self.mode!r} (choose from {', '.join(MODES)})")
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"unknown protocol {self.protocol!r} (choose from {', '.join(PROTOCOLS)})")
        self._validate_numbers()
        for name, value in vars(self).items():   # a lone surrogate (invalid UTF-8 in argv) cannot be stored or sent
            if isinstance(value, str):
                check_json(value, f"--{name.replace('_', '-')}")
        check_base_url(self.base_url)
        if self.step_rule not in STEP_RULES:
            raise ConfigError(f"unknown step rule {self.step_rule!r} (choose from {', '.join(STEP_RULES)})")
        self.template()  # a bad template is a one-line ConfigError now, before anything starts
        self.until_rule()
        for name, most in LIMITS.items():
            value = getattr(self, name)
            if not 1 <= value <= most:
                raise ConfigError(f"--{name.replace('_', '-')} must be within 1..{most:,}, got {value}")
        if self.provider in ("openai", "anthropic") and not self.model:
            raise ConfigError(f"--model is required with --provider {self.provider}")
        if not 0.0 <= self.induced_error_rate <= 1.0:
            raise ConfigError(f"--induced-error-rate must be within 0..1, got {self.induced_error_rate}")
        if self.window is not None and self.window < 1:
            raise ConfigError(f"--window must be at least 1, got {self.window}")
        if self.min_value > self.max_value:
            raise ConfigError(f"--min-value ({self.min_value}) is greater than --max-value ({self.max_value})")
        if self.max_retries < 0 or self.timeout <= 0:
            raise ConfigError("--retries must be >= 0 and --timeout > 0")
        if isinstance(self.empty_retries, bool) or not isinstance(self.empty_retries, int) or not 0 <= self.empty_retries <= 100:
            raise ConfigError(f"--empty-retries must be a whole number within 0..100, got {self.empty_retries}")
        if self.base_url is not None:
            try:
                check_base_url(self.base_url)
            except ValueError as exc:
                raise ConfigError(f"--base-url {exc}") from None
        self._validate_network()
        self._validate_limits()
        self._validate_endpoints()
        for rate, name in ((self.temperature, "--temperature"), (self.top_p, "--top-p")):
            if rate is not None and rate < 0:
                raise ConfigError(f"{name} must not be negative, got {rate}")
        if self.dataset_offset < 0:
            raise ConfigError(f"--dataset-offset must not be negative, got {self.dataset_offset}")
        self._validate_data()
        if not isinstance(self.extra_body, dict):
            raise ConfigError(f"--extra-body must be a JSON object, got {type(self.extra_body).__name__}")
        check_json(self.extra_body, "--extra-body")
        reserved = [key for key in RESERVED_BODY_KEYS if key in self.extra_body]
        if reserved:
            raise ConfigError(f"--extra-body must not set {', '.join(map(repr, reserved))} (lhe-tui sends it)")
        if self.enable_thinking is not None and self.provider == "anthropic":
            raise ConfigError("--enable-thinking is for OpenAI-compatible servers (chat_template_kwargs); "
                              "with --provider anthropic use --mode thinking")
        for inj in self.inject_at:
            if not 1 <= inj.turn < self.turns:
                raise ConfigError(f"--inject-at turn {inj.turn} is outside 1..{self.turns - 1}")
        return self

    def _validate_numbers(self) -> None:
        """Every number finite and within what the store (64-bit integers, strict JSON) and the task hold:
        from flags, a TUI form, a fork's or an arm's overrides alike."""
        for name, flag in _FLOAT_FLAGS.items():
            value = getattr(self, name)
            if value is not None:
                finite(value, flag)
        for name, flag in _INT_FLAGS.items():
            value = getattr(self, name)
            if value is not None:
                within(value, flag)
        within(self.seed, "--seed", 0, INT64_MAX)
        for value, flag in ((self.max_tokens, "--max-tokens"), (self.thinking_budget, "--thinking-budget")):
            if value is not None:
                within(value, flag, 1, MAX_REQUEST_TOKENS)
        for value, flag in ((self.min_value, "--min-value"), (self.max_value, "--max-value")):
            within(value, flag, -VALUE_BOUND, VALUE_BOUND)
        for inj in self.inject_at:
            within(inj.turn, "--inject-at turn")
            for value in (inj.offset, inj.value):
                if value is not None:
                    within(value, "--inject-at offset", -ANSWER_BOUND, ANSWER_BOUND)
        if self.max_reply_mb > MAX_REPLY_MB:
            raise ConfigError(f"--max-reply-mb must be at most {MAX_REPLY_MB:g}, got {self.max_reply_mb:g}")

    def until_rule(self) -> Until | None:
        """The --until rule (ConfigError, one line, for a bad one); None: every turn is played."""
        if self.until is None:
            return None
        try:
            return Until.parse(self.until)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def template(self) -> PromptTemplate:
        """The prompt template: from the stored text when there is one, else from the name or path."""
        return template_for(self.prompt, self.prompt_text)

    def _validate_limits(self) -> None:
        if self.max_cost is not None and not 0 < self.max_cost < float("inf"):
            raise ConfigError(f"--max-cost must be a positive number of dollars, got {self.max_cost}")
        for value, name in ((self.max_tokens_total, "--max-tokens-total"), (self.rpm, "--rpm"), (self.tpm, "--tpm")):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"{name} must be a whole number >= 1, got {value}")

    def _validate_endpoints(self) -> None:
        value = self.endpoint_concurrency
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"--endpoint-concurrency must be a whole number >= 1, got {value}")
        if self.endpoints and self.provider == "sim":
            raise ConfigError("several --base-url servers need --provider openai, anthropic or local (sim has none)")
        for url in self.endpoints:
            check_base_url(url)

    def _validate_data(self) -> None:
        if self.data not in DATA_SOURCES:
            raise ConfigError(f"unknown --data {self.data!r} (choose from {', '.join(DATA_SOURCES)})")
        if self.data == "paper":
            from lhe_tui.task.paper_data import PAPER_DICT_SIZE, PAPER_MAX_VALUE, PAPER_MIN_VALUE, check_rows

            if self.dataset:
                raise ConfigError("--data paper and --dataset are two sources of keys: give one")
            if (self.dict_size, self.min_value, self.max_value) != (PAPER_DICT_SIZE, PAPER_MIN_VALUE, PAPER_MAX_VALUE):
                raise ConfigError(f"--data paper has its own dictionary ({PAPER_DICT_SIZE} words, {PAPER_MIN_VALUE}.."
                                  f"{PAPER_MAX_VALUE}): drop --dict-size, --min-value and --max-value")
            check_rows(self.samples, self.turns * self.k, self.dataset_offset)
        elif self.dataset_offset and not self.dataset:
            raise ConfigError("--dataset-offset needs --dataset or --data paper")

    def _validate_network(self) -> None:
        for value, name in ((self.deadline, "--deadline"), (self.max_reply_mb, "--max-reply-mb")):
            if not 0 < value < float("inf"):
                raise ConfigError(f"{name} must be a positive number, got {value}")
        if not 0 <= self.retry_budget < float("inf"):
            raise ConfigError(f"--retry-budget must be a number of seconds >= 0, got {self.retry_budget}")

    @property
    def uses_prefix_cache(self) -> bool:
        """The provider may read earlier turns from a prefix cache: OpenAI-compatible servers' automatic one
        (OpenAI's, vLLM's, llama.cpp's), Anthropic's breakpoints unless --no-cache."""
        return self.provider in ("openai", "local") or (self.provider == "anthropic" and self.prompt_cache)

    def prefix_cache_notice(self) -> str | None:
        """One line when the history policy rewrites messages already sent every turn (a sliding window), so a
        provider's prefix cache (OpenAI's automatic one, Anthropic's breakpoints) cannot reuse them; None when
        nothing does."""
        if not self.uses_prefix_cache:
            return None
        if self.window is not None:
            return (f"prompt cache: --window {self.window} drops the oldest turn from the history every turn, so "
                    "past the window only the system prompt is read from the provider's cache "
                    "(docs/prompt-caching.md)")
        # --inject-at rewrites answer T before any request has sent it (the prefix stays intact); a manual
        # injection may rewrite one already sent: the TUI says so when it happens.
        return None

    @property
    def max_reply_chars(self) -> int:
        return max(1, int(self.max_reply_mb * 1_000_000))

    @property
    def model_label(self) -> str:
        return self.model or ("sim-1" if self.provider == "sim" else "")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["inject_at"] = [asdict(i) for i in self.inject_at]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        # Stored before the protocol switch and prompt templates: run with the rules and prompt of then.
        values.setdefault("protocol", LEGACY_PROTOCOL)
        values.setdefault("prompt", LEGACY_PROMPT)
        values["inject_at"] = tuple(Injection(**i) for i in values.get("inject_at", ()))
        values["endpoints"] = tuple(values.get("endpoints") or ())
        return cls(**values)
