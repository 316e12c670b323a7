"""What a number or a JSON value given by the user may be: finite, and within what SQLite (64-bit integers,
strict JSON) and the task can hold. Each check raises ConfigError with one line naming the flag."""

from __future__ import annotations

import math
from typing import Any

from lhe_tui.common.errors import ConfigError

INT64_MAX = 2**63 - 1
VALUE_BOUND = 10**9
"""--min-value / --max-value: |value| at most this, so a running sum over the longest task (1,000,000 turns of
1,000 keys) stays far inside 64 bits."""
ANSWER_BOUND = 10**15
"""An answer set into a history (--set-answer, an offset from one): its sums with the task's values stay in 64 bits."""
MAX_REQUEST_TOKENS = 10**9
"""Tokens of one request at most: a bound on --max-tokens and --thinking-budget, and on the usage counts a server
reports (a count above it is not believed)."""
MAX_REPLY_MB = 1_000.0
"""--max-reply-mb: at most a billion characters of reply and reasoning."""
EXTRA_BODY_DEPTH = 32
"""--extra-body: nesting levels at most (a request body needs a few)."""
EXTRA_BODY_CHARS = 65_536
"""--extra-body: characters of JSON at most."""


def finite(value: float, flag: str) -> float:
    """`value` when it is a finite number; ConfigError otherwise (nan, inf, a number past a float)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{flag} must be a finite number, got {value!r}")
    return float(value)


def within(value: int, flag: str, low: int = -INT64_MAX, high: int = INT64_MAX) -> int:
    """`value` when it is a whole number within low..high; ConfigError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{flag} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{flag} must be within {low:,}..{high:,}, got {_short(value)}")
    return value


def _short(value: int) -> str:
    text = str(value)
    return text if len(text) <= 24 else f"{text[:10]}...({len(text)} digits)"


def check_json(value: Any, flag: str, *, depth: int = EXTRA_BODY_DEPTH) -> None:
    """A parsed JSON value that strict JSON (RFC 8259, UTF-8) can carry: no NaN or infinities, strings and
    keys UTF-8 can encode (no lone surrogates), integers within 64 bits, at most `depth` levels. Iterative:
    a deep value is refused, not a RecursionError."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if level > depth:
            raise ConfigError(f"{flag} is nested more than {depth} levels deep")
        if isinstance(item, dict):
            for key, inner in item.items():
                _text(key, flag)
                stack.append((inner, level + 1))
        elif isinstance(item, (list, tuple)):
            stack.extend((inner, level + 1) for inner in item)
        elif isinstance(item, str):
            _text(item, flag)
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ConfigError(f"{flag} holds {item!r}, not a finite number (JSON has no NaN or Infinity)")
        elif isinstance(item, bool) or item is None:
            pass
        elif isinstance(item, int):
            if not -INT64_MAX - 1 <= item <= INT64_MAX:
                raise ConfigError(f"{flag} holds an integer beyond 64 bits ({_short(item)})")
        else:
            raise ConfigError(f"{flag} holds a {type(item).__name__}, not a JSON value")


def _text(text: Any, flag: str) -> None:
    if not isinstance(text, str):
        raise ConfigError(f"{flag} has a key that is not a string: {text!r}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConfigError(f"{flag} holds text UTF-8 cannot encode (a lone surrogate, {text[exc.start]!r}, at "
                          f"{exc.start}: invalid UTF-8 given, or a \\ud800-style escape)") from None
