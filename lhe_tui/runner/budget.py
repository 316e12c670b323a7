"""--max-cost and --max-tokens-total: stop a run before a request would pass its budget.

The rule: before a sample's request is sent, its cost (and tokens) are estimated; if what the session has
spent, plus the estimates of the requests already in flight, plus this one, would pass the budget, the sample
sends nothing more and the run ends `interrupted`. Once one request is refused, every sample stops before its
next request (requests in flight finish and are stored: they are paid for).

Estimate of a request: input = the sample's previous turn's input + its output + the new messages' characters
/ 4 (on a sample's first request in this process, and when the server reported no usage: all the messages'
characters / 4); output = the previous turn's output (0 before the first). The estimate is priced as uncached
input (conservative where a prompt cache would make it cheaper). Spent = the summed stored turns priced from
the price file; a turn whose counts were not reported counts as its estimate. Tokens = input (all of it,
cached included) + output.
"""

from __future__ import annotations

from dataclasses import dataclass

from lhe_tui.core.events import TurnRecord
from lhe_tui.core.prices import ModelPrice, TokenTotals, fmt_cost
from lhe_tui.runner.rate_limit import message_tokens


@dataclass(frozen=True)
class Estimate:
    tokens_in: int
    tokens_out: int
    cost: float

    @property
    def tokens(self) -> int:
        return self.tokens_in + self.tokens_out


def estimate_tokens(messages: list, previous: TurnRecord | None) -> tuple[int, int]:
    """A request's (input, output) tokens estimated from the sample's previous turn (see the module doc)."""
    if previous is not None and previous.tokens_in is not None and previous.tokens_out is not None:
        return previous.tokens_in + previous.tokens_out + message_tokens(messages[-1:]), previous.tokens_out
    return message_tokens(messages), (previous.tokens_out or 0) if previous is not None else 0


class Budget:
    def __init__(self, max_cost: float | None, max_tokens: int | None, price: ModelPrice | None,
                 spent: TokenTotals | None = None) -> None:
        if max_cost is not None and price is None:
            raise ValueError("--max-cost needs the model's price")
        self.max_cost = max_cost
        self.max_tokens = max_tokens
        self.price = price
        spent = spent or TokenTotals()
        self.spent_tokens = (spent.tokens_in or 0) + (spent.tokens_out or 0)
        self.spent_cost = (spent.cost(price) or 0.0) if price is not None else 0.0
        self.reserved_cost = 0.0
        self.reserved_tokens = 0
        self.stopped: str | None = None   # why the run stops (the first refusal's message)
        self._over: tuple[str, float] | None = None   # which budget was reached, and the refused estimate

    @property
    def active(self) -> bool:
        return self.max_cost is not None or self.max_tokens is not None

    def estimate(self, messages: list, previous: TurnRecord | None) -> Estimate:
        tokens_in, tokens_out = estimate_tokens(messages, previous)
        cost = self.price.cost(tokens_in, tokens_out) if self.price is not None else 0.0
        return Estimate(tokens_in, tokens_out, cost or 0.0)

    def admit(self, estimate: Estimate, session_id: str) -> bool:
        """Reserve `estimate` and say True, or (once over the budget) record why and say False."""
        if self.stopped is not None:
            return False
        if self.max_cost is not None:
            spent = self.spent_cost + self.reserved_cost
            if not spent + estimate.cost <= self.max_cost:   # a NaN anywhere is over, never under
                self._over = ("cost", estimate.cost)
                self.stopped = (f"budget of {fmt_cost(self.max_cost)} reached after {fmt_cost(self.spent_cost)} "
                                f"(the next request would cost about {fmt_cost(estimate.cost)}): "
                                f"`lhe-tui resume {session_id} --max-cost {self.max_cost * 2:g}` continues "
                                f"(any amount above {fmt_cost(self.spent_cost + estimate.cost)})")
                return False
        if self.max_tokens is not None:
            spent = self.spent_tokens + self.reserved_tokens
            if not spent + estimate.tokens <= self.max_tokens:
                self._over = ("tokens", estimate.tokens)
                self.stopped = (f"budget of {self.max_tokens:,} tokens reached after {self.spent_tokens:,} "
                                f"(the next request would take about {estimate.tokens:,}): "
                                f"`lhe-tui resume {session_id} --max-tokens-total {self.max_tokens * 2}` continues")
                return False
        self.reserved_cost += estimate.cost
        self.reserved_tokens += estimate.tokens
        return True

    def final_message(self, session_id: str) -> str | None:
        """Why the run stopped, with what the session spent in the end (requests in flight when the budget was
        reached finished after the refusal); None when it was not stopped."""
        if self._over is None:
            return None
        kind, next_request = self._over
        if kind == "cost":
            assert self.max_cost is not None
            return (f"budget of {fmt_cost(self.max_cost)} reached after {fmt_cost(self.spent_cost)} (the next "
                    f"request would cost about {fmt_cost(next_request)}): `lhe-tui resume {session_id} --max-cost "
                    f"{self.max_cost * 2:g}` continues (any amount above "
                    f"{fmt_cost(self.spent_cost + next_request)})")
        assert self.max_tokens is not None
        return (f"budget of {self.max_tokens:,} tokens reached after {self.spent_tokens:,} (the next request would "
                f"take about {int(next_request):,}): `lhe-tui resume {session_id} --max-tokens-total "
                f"{self.max_tokens * 2}` continues")

    def settle(self, estimate: Estimate, record: TurnRecord | None) -> None:
        """The reserved request is over: count what it spent (its estimate when not reported; nothing when
        it was not answered, `record` None)."""
        self.reserved_cost -= estimate.cost
        self.reserved_tokens -= estimate.tokens
        if record is None:
            return
        if record.tokens_in is None or record.tokens_out is None:
            self.spent_cost += estimate.cost
            self.spent_tokens += estimate.tokens
            return
        self.spent_tokens += record.tokens_in + record.tokens_out
        if self.price is not None:
            self.spent_cost += self.price.cost(record.tokens_in, record.tokens_out, record.tokens_cached,
                                               record.tokens_cache_write) or 0.0


def budget_for(config, spent: TokenTotals | None = None, prices=None) -> Budget | None:
    """The run's Budget (None without --max-cost / --max-tokens-total); ConfigError (one line) for --max-cost
    on a model no price file has."""
    from lhe_tui.core.prices import load_prices
    from lhe_tui.common.errors import ConfigError

    if config.max_cost is None and config.max_tokens_total is None:
        return None
    price = None
    if config.max_cost is not None:
        price = (prices or load_prices()).for_model(config.model_label)
        if price is None:
            raise ConfigError(f"--max-cost needs a price for model {config.model_label!r}: add it to a price file "
                              "(~/.config/lhe-tui/prices.toml or --prices PATH), or use --max-tokens-total")
    return Budget(config.max_cost, config.max_tokens_total, price, spent)


class BudgetPool:
    """One budget shared by several runs (a sweep's --max-cost): what they have spent and reserved together.
    `resume_id` is what the stop message tells the user to resume (the sweep's id)."""

    def __init__(self, max_cost: float | None, max_tokens: int | None, resume_id: str) -> None:
        self.max_cost = max_cost
        self.max_tokens = max_tokens
        self.resume_id = resume_id
        self.spent_cost = 0.0
        self.spent_tokens = 0
        self.reserved_cost = 0.0
        self.reserved_tokens = 0
        self.stopped: str | None = None
        self.over: tuple[str, float] | None = None

    def add_spent(self, spent: TokenTotals, price: ModelPrice | None) -> None:
        """Count a run's stored turns (a resumed sweep's runs) against the pool."""
        self.spent_tokens += (spent.tokens_in or 0) + (spent.tokens_out or 0)
        if price is not None:
            self.spent_cost += spent.cost(price) or 0.0


def _pooled(name: str) -> property:
    return property(lambda self: getattr(self.pool, name), lambda self, value: setattr(self.pool, name, value))


class PooledBudget(Budget):
    """One run's view of a BudgetPool: its requests priced at its own model's price, spent and reserved in the
    pool, so that once one run is refused every run of the pool stops before its next request."""

    spent_cost = _pooled("spent_cost")
    spent_tokens = _pooled("spent_tokens")
    reserved_cost = _pooled("reserved_cost")
    reserved_tokens = _pooled("reserved_tokens")
    stopped = _pooled("stopped")
    _over = _pooled("over")

    def __init__(self, pool: BudgetPool, price: ModelPrice | None) -> None:  # noqa: D107 - no Budget.__init__:
        if pool.max_cost is not None and price is None:                     # its counters live in the pool
            raise ValueError("--max-cost needs the model's price")
        self.pool = pool
        self.max_cost = pool.max_cost
        self.max_tokens = pool.max_tokens
        self.price = price

    def admit(self, estimate: Estimate, session_id: str) -> bool:
        return super().admit(estimate, self.pool.resume_id)

    def final_message(self, session_id: str) -> str | None:
        return super().final_message(self.pool.resume_id)
