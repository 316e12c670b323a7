"""The forecast of a run's tokens and cost (`lhe-tui run ... --estimate`, and `show`'s "forecast vs actual").

From the real prompt sizes: the run's task is built and the system prompt and every user turn rendered with the
session's template, and the history's assistant messages as the protocol shows them: `<answer>X</answer>` in
direct and thinking mode (X the gold running sum: a wrong answer has about the same length), the whole visible
reply in CoT mode (the reply length, in characters). Tokens are approximated as characters / 4 of the messages'
text (no per-message overhead, no real tokenizer), unless stored sessions calibrate it. Stored sessions of the same model whose server reported its token
counts calibrate the ratio (`measured_ratio`); the forecast says which it used. A request sends the system
prompt, the history (the last W
turns with --window) and the turn; the input of a sample is the sum of these prefixes over its turns, computed
in one pass (running sums), so 100 samples x 1,000 turns take milliseconds.

Caching (providers that cache: anthropic unless --no-cache, OpenAI-compatible automatically): each request reads
the previous request of its sample from cache (the first turn of a sample reads nothing), Anthropic writes the
rest (its breakpoint is on the last message). Past a --window only the system prompt is read (the window drops a
turn every request). The providers' minimum cacheable lengths and OpenAI's 128-token steps apply
(lhe_tui.core.cache_rules): a prompt shorter than the minimum is neither read nor written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from itertools import accumulate

from lhe_tui.core.cache_rules import min_cacheable_tokens, readable_tokens
from lhe_tui.core.config import RunConfig
from lhe_tui.core.prices import ModelPrice, PriceTable, fmt_cost
from lhe_tui.analysis.run_duration import Duration, duration_lines, fmt_duration, run_duration
from lhe_tui.common.errors import ConfigError
from lhe_tui.runner.rate_limit import CHARS_PER_TOKEN
from lhe_tui.runs.session import build_task
from lhe_tui.task.protocol import get_protocol

DEFAULT_REPLY_TOKENS = {"direct": 8, "cot": 150, "thinking": 1000}
"""Output tokens a reply, per mode, when --estimate-reply-tokens is not given (thinking: reasoning included)."""


def default_reply_tokens(mode: str) -> int:
    return DEFAULT_REPLY_TOKENS.get(mode, DEFAULT_REPLY_TOKENS["direct"])


@dataclass(frozen=True)
class TokenRatio:
    """How characters become tokens in the forecast: the default guess (characters / 4), or what stored
    sessions of the same model measured against the token counts their server reported (`measured_ratio`)."""

    prompt: float = CHARS_PER_TOKEN        # characters per input token
    completion: float = CHARS_PER_TOKEN    # characters per output token
    reply_tokens: float | None = None      # measured output tokens a reply in this mode (None: the default)
    source: str = ""                       # what it was measured on ("": the default guess)

    def input_note(self) -> str:
        if not self.source:
            return ("characters / 4 of the messages sent: a guess; a real tokenizer can count up to twice as many "
                    "on this task's numbers and braces (SmolLM2's: 1.97 characters a token); a stored run of the "
                    "model with reported counts calibrates it")
        return f"characters / {self.prompt:.2f} of the messages sent, measured on {self.source}"


@dataclass(frozen=True)
class Forecast:
    samples: int
    turns: int
    reply_tokens: int
    reply_given: bool
    system_tokens: float
    input_tokens: int
    output_tokens: int
    caches: bool                 # the provider reads a prefix cache (anthropic with prompt_cache, openai, local)
    cached_tokens: int           # of input_tokens, read from the cache (0 when the provider does not cache)
    cache_write_tokens: int      # Anthropic: written to the cache (0 otherwise)
    window: int | None
    price: ModelPrice | None
    rpm: int | None = None
    tpm: int | None = None
    limited_tokens: int = 0      # the input tokens the --tpm bucket is charged (each request capped at --tpm)
    parallel: int = 1            # samples in flight at once: --concurrency, at most the samples
    first_cached_turn: int | None = None   # the first turn whose request reads from the cache (None: none)
    ratio: TokenRatio = TokenRatio()       # characters per token: the default guess or measured
    expected_requests: int | None = None   # under an --until rule's expected stopping; None: every turn

    @property
    def requests(self) -> int:
        return self.samples * self.turns if self.expected_requests is None else self.expected_requests

    @property
    def cost_uncached(self) -> float | None:
        return None if self.price is None else self.price.cost(self.input_tokens, self.output_tokens)

    @property
    def cost_cached(self) -> float | None:
        if self.price is None or not self.caches:
            return None
        return self.price.cost(self.input_tokens, self.output_tokens, self.cached_tokens, self.cache_write_tokens)

    def duration(self, latency_s: float | None = None) -> Duration:
        """The least time the run takes under --rpm / --tpm (and `latency_s` a reply, when given)."""
        return run_duration(self.requests, self.limited_tokens, rpm=self.rpm, tpm=self.tpm, latency_s=latency_s,
                            parallel=self.parallel)

    def duration_lines(self, latency_s: float | None = None) -> list[str]:
        return duration_lines(self.duration(latency_s), requests=self.requests, limited_tokens=self.limited_tokens,
                              rpm=self.rpm, tpm=self.tpm, latency_s=latency_s, parallel=self.parallel)

    def lines(self, config: RunConfig, latency_s: float | None = None) -> list[str]:
        source = ("--estimate-reply-tokens" if self.reply_given else
                  f"measured on {self.ratio.source}" if self.ratio.reply_tokens is not None else
                  f"the default for {config.mode} mode; set it with --estimate-reply-tokens")
        reply = f"{self.reply_tokens:,} a reply, {source}"
        out = [f"forecast: {self.samples:,} sample{'s' if self.samples != 1 else ''} x {self.turns:,} turns = {self.requests:,} requests "
               f"({config.model_label or config.provider}, mode {config.mode}, K={config.k}, protocol "
               f"{config.protocol}, prompt {config.prompt})",
               f"  input tokens   {self.input_tokens:,}  ({self.ratio.input_note()}; system prompt "
               f"{round(self.system_tokens):,} tokens, then the history grows every turn"
               + (f", the last {self.window} turns of it" if self.window else "") + ")",
               f"  output tokens  {self.output_tokens:,}  ({reply})"]
        if self.caches:
            write = f", {self.cache_write_tokens:,} written to it" if self.cache_write_tokens else ""
            least = min_cacheable_tokens(config.provider, config.model)
            start = ("no request is long enough to be cached" if self.first_cached_turn is None
                     else f"from turn {self.first_cached_turn}, when the prompt passes {least:,} tokens")
            out.append(f"  prompt cache   {self.cached_tokens:,} of the input read from cache{write} "
                       f"(each request reads its sample's previous one, {start})")
            if self.window is not None:
                out.append(f"  (--window {self.window} breaks the cached prefix: past the window only the system "
                           "prompt is read from cache)")
        else:
            why = "--no-cache" if config.provider == "anthropic" else f"provider {config.provider}"
            out.append(f"  prompt cache   none ({why})")
        if self.price is None:
            out.append(f"  cost           no price for model {config.model_label or '-'!r}: tokens only "
                       "(add it to a price file, --prices)")
        else:
            cost = f"  cost           {fmt_cost(self.cost_uncached)} without caching"
            if self.caches:
                cost += f", {fmt_cost(self.cost_cached)} with caching"
            out.append(cost)
        return out + self.duration_lines(latency_s)


    def form_lines(self, config: RunConfig) -> list[str]:
        """Three short lines for the TUI's new-run form: tokens, cost (with and without caching), duration."""
        out = [f"tokens ≈ {self.input_tokens:,} in + {self.output_tokens:,} out ({self.requests:,} requests, "
               f"{self.reply_tokens:,}/reply)"]
        if self.price is None:
            out.append(f"cost: no price for model {config.model_label or '-'!r} (tokens only)")
        elif self.caches:
            out.append(f"cost: {fmt_cost(self.cost_uncached)} without caching, {fmt_cost(self.cost_cached)} with")
        else:
            out.append(f"cost: {fmt_cost(self.cost_uncached)} (no prompt cache)")
        took = self.duration()
        if took.binding is None:
            out.append("time: no client-side limit (rpm, tpm)")
        else:
            out.append(f"time: at least {fmt_duration(took.seconds)}, {took.binding} binds (reply time not counted)")
        return out


def assistant_chars(config: RunConfig, reply_tokens: int, gold: int, chars_per_token: float = CHARS_PER_TOKEN) -> float:
    """The length of a finished turn's assistant message in the history."""
    if config.mode == "cot":
        return reply_tokens * chars_per_token
    return len(f"<answer>{gold}</answer>")   # paper: the tag only; lenient: the visible reply, about the tag


def forecast(config: RunConfig, *, reply_tokens: int | None = None, prices: PriceTable | None = None,
             first_turn: int = 1, running: Callable[[int], float] | None = None,
             ratio: TokenRatio | None = None) -> Forecast:
    """The expected tokens (and cost, with `prices` and a priced model) of the configured run. Raises
    ConfigError (one line) for a config that cannot run. `first_turn`: the first turn sent (a fork's
    T + 1: its inherited turns are in every request's history, but not requests of its own; the first
    request it sends reads nothing from a cache). `running(t)`: the expected share of samples still sent
    turn t (an --until rule: lhe_tui.core.until.running_share); default every sample every turn."""
    running = running or (lambda t: 1.0)
    ratio = ratio or TokenRatio()
    per = ratio.prompt
    config.validate()
    if reply_tokens is not None and reply_tokens < 1:
        raise ConfigError(f"--estimate-reply-tokens must be at least 1, got {reply_tokens}")
    given = reply_tokens is not None
    reply = reply_tokens if given else round((ratio or TokenRatio()).reply_tokens or default_reply_tokens(config.mode))
    get_protocol(config.protocol)
    template = config.template()
    task = build_task(config)
    system = len(template.system(task.dictionary, task.k, config.mode))
    turn_text = template.turn_renderer(task.dictionary, task.k, config.mode)
    window = config.window
    caches = config.uses_prefix_cache
    anthropic = config.provider == "anthropic"
    least = min_cacheable_tokens(config.provider, config.model) * per   # in characters
    total_in = cached = written = limited = 0.0
    first_cached_turn: int | None = None
    tpm_chars = None if config.tpm is None else config.tpm * per
    for sample in task.samples:
        turns = sample.turns
        users = [len(turn_text(sample.turn_keys(t))) for t in range(1, turns + 1)]
        answers = [assistant_chars(config, reply, gold, ratio.completion) for gold in sample.gold_sums()]
        pair = list(accumulate((u + a for u, a in zip(users, answers)), initial=0))  # pair[j]: turns 1..j
        previous = 0
        for t in range(first_turn, turns + 1):
            first = 0 if window is None else max(0, t - 1 - window)    # entries first+1 .. t-1 are shown
            request = system + pair[t - 1] - pair[first] + users[t - 1]
            share = running(t)
            total_in += share * request
            if tpm_chars is not None:
                limited += share * min(request, tpm_chars)
            if caches:
                # the prefix this request shares with its sample's previous one, read if the cache kept it
                shared = (previous if first == 0 else system) if t > first_turn else 0
                read = per * readable_tokens(config.provider, config.model, shared / per)
                cached += share * read
                if anthropic and request >= least:      # the breakpoint's prefix is written when long enough
                    written += share * (request - read)
                if read and first_cached_turn is None:
                    first_cached_turn = t
            previous = request
    input_tokens = round(total_in / per)
    cached_tokens = round(cached / per)
    write = round(written / per) if caches and anthropic else 0
    price = prices.for_model(config.model_label) if prices is not None else None
    played = max(0, config.turns - first_turn + 1)
    sent = sum(running(t) for t in range(first_turn, config.turns + 1))     # expected turns a sample sends
    return Forecast(samples=len(task.samples), turns=played, reply_tokens=reply, reply_given=given,
                    system_tokens=system / per, input_tokens=input_tokens, ratio=ratio,
                    output_tokens=round(reply * len(task.samples) * sent), caches=caches,
                    first_cached_turn=first_cached_turn, expected_requests=round(len(task.samples) * sent),
                    cached_tokens=cached_tokens, cache_write_tokens=write, window=window, price=price,
                    rpm=config.rpm, tpm=config.tpm, limited_tokens=round(limited / per),
                    parallel=max(1, min(config.concurrency, len(task.samples))))


def forecast_stored(config_dict: dict, prices: PriceTable | None = None, *, fork_turn: int | None = None) -> Forecast:
    """The forecast of a stored session's run, from its stored config (template text included), with the
    default reply length of its mode; a fork's from the turn after its fork turn."""
    config = RunConfig.from_dict(config_dict)
    return forecast(replace(config, inject_at=()), prices=prices, first_turn=(fork_turn or 0) + 1)


def stored_model(config: RunConfig) -> str:
    """The model name a run of `config` is stored under (--provider local without --model: the bundled one)."""
    if config.provider == "local" and not config.model:
        from lhe_tui.providers.local_install import BUNDLED_MODEL_NAME

        return BUNDLED_MODEL_NAME
    return config.model_label


CALIBRATION_SESSIONS = 3
"""Stored sessions (the newest finished ones of the same model) a measured ratio is taken from."""


def measured_ratio(db, config: RunConfig) -> TokenRatio:
    """Characters per token measured on stored runs of the same provider and model whose server reported
    every turn's token counts: prompt (the forecast's characters of each finished run against the input
    tokens it was billed) and completion (reply and reasoning characters against output tokens) apart,
    and the output tokens a reply in this mode. The default guess when there are none."""
    rows = db.execute(
        "SELECT s.id, s.config_json, s.fork_turn, s.mode, COUNT(t.turn), COUNT(t.tokens_in), TOTAL(t.tokens_in), "
        "TOTAL(t.tokens_out), TOTAL(LENGTH(t.raw_reply) + LENGTH(COALESCE(t.reasoning, ''))), TOTAL(LENGTH(t.raw_reply)), "
        "s.n_samples * s.turns FROM sessions s JOIN turns t ON t.session_id = s.id AND NOT t.inherited "
        "WHERE s.kind = 'run' AND s.status = 'finished' AND s.provider = ? AND s.model = ? "
        "GROUP BY s.id ORDER BY s.created_at DESC, s.rowid DESC", [config.provider, stored_model(config)]).fetchall()
    prompt_chars = prompt_tokens = reply_chars = reply_tokens = mode_tokens = mode_turns = 0.0
    used = 0
    for sid, config_json, fork_turn, mode, played, reported, tokens_in, tokens_out, chars, visible, expected in rows:
        if used == CALIBRATION_SESSIONS:
            break
        if played == 0 or reported != played or tokens_in <= 0 or tokens_out <= 0:
            continue                       # counts not reported (or not all): nothing to measure
        if fork_turn is None and played != expected:
            continue                       # stopped short: the forecast of its config is of other turns
        try:
            import json

            stored = replace(RunConfig.from_dict(json.loads(config_json)), inject_at=())
            # the characters it sent: its history as the replies it got were long (CoT keeps them whole)
            guess = forecast(stored, reply_tokens=max(1, round(visible / played / CHARS_PER_TOKEN)),
                             first_turn=(fork_turn or 0) + 1)
        except (ConfigError, ValueError, TypeError, OSError):
            continue
        prompt_chars += guess.input_tokens * CHARS_PER_TOKEN
        prompt_tokens += tokens_in
        reply_chars += chars
        reply_tokens += tokens_out
        if mode == config.mode:
            mode_tokens += tokens_out
            mode_turns += played
        used += 1
    if not used:
        return TokenRatio()
    name = stored_model(config) or config.provider
    return TokenRatio(prompt=prompt_chars / prompt_tokens, completion=reply_chars / reply_tokens,
                      reply_tokens=mode_tokens / mode_turns if mode_turns else None,
                      source=f"{used} stored session{'s' if used != 1 else ''} of {name}")


def stored_p(db, config: RunConfig) -> tuple[float, str] | None:
    """The p before the first error (per turn) of the newest stored run of the same model with turns, and
    which run it is; None when there is none."""
    from lhe_tui.store.summary import session_summary

    row = db.execute("SELECT id FROM sessions WHERE kind = 'run' AND provider = ? AND model = ? AND EXISTS "
                     "(SELECT 1 FROM turns WHERE session_id = sessions.id) ORDER BY created_at DESC, rowid DESC "
                     "LIMIT 1", [config.provider, stored_model(config)]).fetchone()
    if row is None:
        return None
    p = session_summary(db, row[0]).p_before_first_error
    return None if p is None else (p, f"the p before the first error of session {row[0]}")


def until_lines(config: RunConfig, full: Forecast, *, reply_tokens: int | None, prices: PriceTable | None,
                ratio: TokenRatio, assume_p: float | None, store=None) -> list[str]:
    """`--estimate` of a run with --until: its expected requests and cost beside the full run's, under an
    assumed per-step accuracy (--assume-p, else the stored p of the same model), or why there is none."""
    from lhe_tui.core.until import running_share

    rule = config.until_rule()
    assert rule is not None
    source = "--assume-p"
    p = assume_p
    if p is None and store is not None:
        found = stored_p(store, config)
        if found is not None:
            p_turn, source = found
            p = p_turn ** (1.0 / config.k)
    if p is None:
        return [f"  --until {rule.text()}: no expected saving without an assumed step accuracy (--assume-p P; "
                "or a stored run of the same model)"]
    share = running_share(rule, p ** config.k, config.turns)
    early = forecast(config, reply_tokens=reply_tokens, prices=prices, ratio=ratio, running=lambda t: share[t - 1])
    def cost(f: Forecast) -> str:
        value = f.cost_cached if f.caches and f.cost_cached is not None else f.cost_uncached
        return "-" if value is None else fmt_cost(value)
    return [f"  --until {rule.text()} (expected, step accuracy p = {p:.4f} from {source}): "
            f"{early.requests:,} of {full.requests:,} requests ({100 * early.requests / max(full.requests, 1):.0f}%), "
            f"{early.input_tokens:,} of {full.input_tokens:,} input tokens, cost {cost(early)} of {cost(full)}"
            + (" (horizon: every sample to the theory's H, an approximation)" if rule.kind == "horizon" else "")]


def total_line(forecasts: list[Forecast], *, what: str) -> str:
    """One line summing several forecasts (a group's arms): requests, tokens and cost ("-" when a member has
    no price; with caching where every member caches)."""
    requests = sum(f.requests for f in forecasts)
    tokens_in = sum(f.input_tokens for f in forecasts)
    tokens_out = sum(f.output_tokens for f in forecasts)
    uncached = [f.cost_uncached for f in forecasts]
    cached = [f.cost_cached if f.caches else f.cost_uncached for f in forecasts]
    cost = "-" if None in uncached else fmt_cost(sum(uncached))  # type: ignore[arg-type]
    with_cache = "" if None in cached or cached == uncached else f", {fmt_cost(sum(cached))} with caching"  # type: ignore[arg-type]
    return (f"total of {what}: {requests:,} requests, {tokens_in:,} input and {tokens_out:,} output tokens, "
            f"cost {cost} without caching{with_cache}")
