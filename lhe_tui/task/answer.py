"""Parse the model's reply: the last `<answer>…</answer>` tag wins.

Outcomes stay distinct: `ok` (an integer in the tag), `format` (no complete tag: a format miss),
`invalid` (a tag whose content is not an integer). Both misses count as wrong. (A turn whose request failed
has no reply to parse: the runner stores it as `failed`, also wrong.)

`<think>…</think>` blocks are removed before parsing, case-insensitively (`<THINK>`, `<Think>` too).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

AnswerStatus = Literal["ok", "format", "invalid", "failed"]
PROVIDER_FAILED = "failed"
"""The answer status of a turn whose request failed after its retries (paper protocol): no reply to read."""

_TAG = re.compile(r"<answer>(.*?)</answer>", re.IGNORECASE | re.DOTALL)
_THINK = re.compile(r"<think>.*?(</think>|$)", re.IGNORECASE | re.DOTALL)
_INT = re.compile(r"[+-]?\d{1,60}")


@dataclass(frozen=True)
class ParsedAnswer:
    status: AnswerStatus
    value: int | None = None


def strip_think(text: str) -> str:
    """Remove `<think>…</think>` blocks (an unclosed one runs to the end)."""
    return _THINK.sub("", text)


def parse_answer(text: str) -> ParsedAnswer:
    tags = _TAG.findall(strip_think(text or ""))
    if not tags:
        return ParsedAnswer("format")
    content = tags[-1].strip().replace(",", "").replace("_", "")
    if content.endswith("."):
        content = content[:-1]
    if not _INT.fullmatch(content):
        return ParsedAnswer("invalid")
    return ParsedAnswer("ok", int(content))


def render_answer(reply_visible: str, value: int) -> str:
    """The reply as the model will see it in its history, with its (last) answer set to `value`."""
    matches = list(_TAG.finditer(reply_visible))
    if not matches:
        return f"<answer>{value}</answer>"
    last = matches[-1]
    return f"{reply_visible[:last.start()]}<answer>{value}</answer>{reply_visible[last.end():]}"
