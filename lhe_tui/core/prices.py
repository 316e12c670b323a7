"""Token prices (a TOML file per million tokens) and the cost of turns and sessions computed from them.

The shipped `lhe_tui/prices.toml` is read first, then the user's `~/.config/lhe-tui/prices.toml`, then a file
given with `--prices`; a later file replaces a model's whole entry. A model in no file has no price: its
tokens are shown, its cost is None ("no price"), never a guess. Costs are computed when shown, not stored, so
a corrected price file re-prices old sessions too.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from lhe_tui.common.files import PRICES_LIMIT, UnreadableFile, read_bounded
from lhe_tui.common.errors import ConfigError

NOT_REPORTED = "not reported"
NO_PRICE = "no price"
PRICES_ENV = "LHE_TUI_PRICES"   # a price file over the others (what --prices sets)
_PRICE_FIELDS = ("input", "cached_input", "cache_write", "output")
MAX_PRICE = 100_000
"""Dollars per million tokens at most (the dearest models cost hundreds): more is a typo, not a price."""
_DATE_SUFFIX = re.compile(r"-(\d{8}|\d{4}-\d{2}-\d{2})$")


@dataclass(frozen=True)
class ModelPrice:
    """US dollars per million tokens. `cached_input` / `cache_write` None: billed at the input price."""

    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None

    def cost(self, tokens_in: int | None, tokens_out: int | None, cached: int | None = None,
             cache_write: int | None = None) -> float | None:
        """The cost of these counts (tokens_in is all the input, cached and cache-written included); None
        when the input or output count was not reported."""
        if tokens_in is None or tokens_out is None:
            return None
        cached, cache_write = cached or 0, cache_write or 0
        uncached = max(0, tokens_in - cached - cache_write)
        dollars = (uncached * self.input + cached * _or(self.cached_input, self.input)
                   + cache_write * _or(self.cache_write, self.input) + tokens_out * self.output)
        return dollars / 1_000_000


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


@dataclass
class PriceTable:
    models: dict[str, ModelPrice] = field(default_factory=dict)
    as_of: str | None = None
    source: str | None = None
    files: list[str] = field(default_factory=list)

    def for_model(self, model: str | None) -> ModelPrice | None:
        """The price of `model` (an exact id, or the id without a date suffix); None: unknown."""
        if not model:
            return None
        price = self.models.get(model)
        if price is None:
            price = self.models.get(_DATE_SUFFIX.sub("", model))
        return price

    def merge(self, other: PriceTable) -> None:
        self.models.update(other.models)
        self.as_of = other.as_of or self.as_of
        self.source = other.source or self.source
        self.files += other.files


def _price(path: str, name: str, entry: Any) -> ModelPrice:
    if not isinstance(entry, dict):
        raise ConfigError(f"{path}: bad price file: models.{name} is not a table")
    unknown = set(entry) - set(_PRICE_FIELDS)
    if unknown:
        raise ConfigError(f"{path}: bad price file: models.{name} has unknown field {sorted(unknown)[0]!r} "
                          f"(known: {', '.join(_PRICE_FIELDS)})")
    values: dict[str, float] = {}
    for key, value in entry.items():
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_PRICE):
            raise ConfigError(f"{path}: bad price file: models.{name}.{key} must be a number from 0 to "
                              f"{MAX_PRICE:,} (dollars per million tokens), not {_shown(value)}")
        values[key] = float(value)
    for key in ("input", "output"):
        if key not in values:
            raise ConfigError(f"{path}: bad price file: models.{name} needs `{key}` (dollars per million tokens)")
    return ModelPrice(**values)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 24 else text[:21] + "..."


def parse_prices(text: str, path: str) -> PriceTable:
    """One price file; anything wrong is a one-line ConfigError naming the file."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: bad price file: {exc}") from None
    unknown = set(data) - {"as_of", "source", "models"}
    if unknown:
        raise ConfigError(f"{path}: bad price file: unknown key {sorted(unknown)[0]!r} "
                          f"(known: as_of, source, models)")
    models = data.get("models", {})
    if not isinstance(models, dict):
        raise ConfigError(f"{path}: bad price file: `models` must be a table of models")
    as_of, source = data.get("as_of"), data.get("source")
    return PriceTable({name: _price(path, name, entry) for name, entry in models.items()},
                      as_of=None if as_of is None else str(as_of), source=None if source is None else str(source),
                      files=[path])


def _read(path: Path) -> PriceTable:
    try:
        text = read_bounded(path, PRICES_LIMIT).decode("utf-8")
    except UnreadableFile as exc:
        raise ConfigError(f"{path}: cannot use the price file: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: cannot use the price file: not UTF-8 text (byte {exc.start})") from None
    return parse_prices(text, str(path))


def user_prices_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "lhe-tui" / "prices.toml"


def shipped_prices() -> PriceTable:
    text = resources.files("lhe_tui").joinpath("prices.toml").read_text(encoding="utf-8")
    return parse_prices(text, "lhe_tui/prices.toml")


def load_prices(path: str | Path | None = None) -> PriceTable:
    """The shipped prices, overridden by the user's file (if there is one), overridden by `path` (default
    $LHE_TUI_PRICES; it must exist)."""
    if path is None:
        path = os.environ.get(PRICES_ENV) or None
    table = shipped_prices()
    user = user_prices_path()
    if user.is_file():
        table.merge(_read(user))
    if path is not None:
        table.merge(_read(Path(path)))
    return table


@dataclass(frozen=True)
class TokenTotals:
    """Summed token counts of some turns. A sum is None when no turn reported that count ("not reported");
    `unreported` counts the turns whose input or output count was missing."""

    turns: int = 0
    tokens_in: int | None = None
    tokens_out: int | None = None
    cached: int | None = None
    cache_write: int | None = None
    reasoning: int | None = None
    unreported: int = 0

    def cost(self, price: ModelPrice | None) -> float | None:
        """The cost of the reported counts (linear, so the sum of the turns' costs); None without a price or
        with nothing reported."""
        if price is None or self.tokens_in is None and self.tokens_out is None:
            return None
        return price.cost(self.tokens_in or 0, self.tokens_out or 0, self.cached, self.cache_write)


SUMMED_TOKEN_COLUMNS = ("tokens_in", "tokens_out", "tokens_cached", "tokens_cache_write", "tokens_reasoning")
# TOTAL() sums in floating point: SQL's SUM() fails the whole query ("integer overflow") once a sum passes 64 bits,
# which counts a server made up (or an older lhe-tui stored) could make it do. COUNT(c) tells "none reported".
TOTALS_SQL = ("SELECT COUNT(*), " + ", ".join(f"COUNT({c}), TOTAL({c})" for c in SUMMED_TOKEN_COLUMNS)
              + ", TOTAL(tokens_in IS NULL OR tokens_out IS NULL) FROM turns")


def totals_from_row(row: tuple) -> TokenTotals:
    """A TokenTotals from a row of TOTALS_SQL (a sum is None when no turn reported that count)."""
    turns, *pairs, unreported = row
    sums = [int(pairs[i + 1]) if pairs[i] else None for i in range(0, len(pairs), 2)]
    return TokenTotals(int(turns or 0), *sums, int(unreported or 0))


def fmt_tokens(count: int | None) -> str:
    return NOT_REPORTED if count is None else f"{count:,}"


def fmt_cost(cost: float | None, *, missing: str = NO_PRICE) -> str:
    """`$0.0123` below a dollar, `$12.35` above; `missing` when there is no cost."""
    if cost is None:
        return missing
    return f"${cost:.4f}" if cost < 1 else f"${cost:,.2f}"


def cost_cell(totals: TokenTotals, price: ModelPrice | None) -> str:
    """A session's cost in a list or a table: `$0.0123`; "-" without a price or without turns; "not reported"
    when no turn reported its counts."""
    if totals.tokens_in is None and totals.tokens_out is None:
        return "-" if not totals.turns else NOT_REPORTED
    return fmt_cost(totals.cost(price), missing="-")


def describe_totals(totals: TokenTotals) -> str:
    """One line: in (cached, cache writes) / out (reasoning), each 'not reported' where missing."""
    if totals.tokens_in is None and totals.tokens_out is None:
        return NOT_REPORTED
    parts = [f"in {fmt_tokens(totals.tokens_in)}"]
    extra = []
    if totals.cached is not None:
        extra.append(f"{totals.cached:,} cached")
    if totals.cache_write is not None:
        extra.append(f"{totals.cache_write:,} cache writes")
    if extra:
        parts[0] += f" ({', '.join(extra)})"
    out = f"out {fmt_tokens(totals.tokens_out)}"
    if totals.reasoning is not None:
        out += f" ({totals.reasoning:,} reasoning)"
    parts.append(out)
    line = " / ".join(parts)
    if totals.unreported:
        line += f"; {totals.unreported:,} turn{'s' if totals.unreported != 1 else ''} not reported"
    return line
