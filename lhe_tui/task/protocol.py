"""The two answer protocols: how a reply is read, and what the model sees of it in its history.

`paper` (the default) follows the reference implementation of arXiv 2509.09677
(github long-horizon-execution/measuring-execution); `lenient` is lhe-tui's older rules, kept so old
sessions (stored before the switch existed, and read as `lenient`) and comparisons stay reproducible.
docs/protocol.md puts each rule beside the reference's and says what it changes in the numbers.

paper
  parse    the FIRST `<answer>…</answer>` (case-sensitive, may span lines); its content after
           `str.strip()` must be what Python's `int()` reads: an optional sign then decimal digits, with
           single underscores allowed between digits (`+5`, `-3`, `1_000` are read; `1,234`, `42.`, `_5`,
           `5_`, `1 000`, `0x1F`, `` are invalid; so are non-ASCII digits, which int() would read). The value
           must be below 10**18 in size (the store's int64 column) and the content at most 64 characters: a
           larger number is invalid (the reference reads it as a wrong integer: the turn is wrong either way).
           No complete tag: a format miss. Case matters: `<ANSWER>5</ANSWER>` is a format miss.
  history  direct and thinking mode: only `<answer>X</answer>`, X the first tag's stripped content (or the
           value the history policy put there: injected, induced or healed). CoT: the visible reply, outer
           whitespace stripped, with the first tag's content replaced where the policy replaced it. A reply
           with no tag becomes NO_ANSWER, an empty one (or none: the provider failed) EMPTY_REPLY, unless the
           policy put a value there; a template's `no_answer` / `empty_reply` replace those (Placeholders).
lenient
  parse    the LAST tag, case-insensitive; commas and underscores dropped, one trailing `.` allowed.
  history  the visible reply verbatim (the last tag replaced where the policy replaced it); an empty reply
           becomes `(no reply)`, or the template's `empty_reply`.

In both, `<think>…</think>` blocks (matched case-insensitively: `<THINK>` too) (an unclosed one runs to the end) are removed before parsing and from the
history; the providers already move reasoning out of the visible text, so this only matters for a reply
that carries its reasoning inline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from lhe_tui.task.answer import ParsedAnswer, parse_answer, render_answer, strip_think

ProtocolName = Literal["paper", "lenient"]
PROTOCOLS: tuple[str, ...] = ("paper", "lenient")
DEFAULT_PROTOCOL = "paper"
LEGACY_PROTOCOL = "lenient"
"""What a stored session without a `protocol` in its config was run with."""

NO_ANSWER = "No answer given."
EMPTY_REPLY = "Empty reply."
LENIENT_EMPTY_REPLY = "(no reply)"

_FIRST_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
# What int() reads after strip(), in ASCII; non-ASCII digits (which int() also reads) are invalid here.
_INT = re.compile(r"[+-]?[0-9]+(?:_[0-9]+)*", re.ASCII)
MAX_DIGITS = 18
MAX_CHARS = 64


@dataclass(frozen=True)
class Placeholders:
    """What the history shows for a reply with no answer tag and for an empty one, when a prompt template sets
    them (its `no_answer` and `empty_reply` strings); None: the protocol's own."""

    no_answer: str | None = None
    empty_reply: str | None = None


NO_PLACEHOLDERS = Placeholders()


def protocol_of(config: dict) -> str:
    """The protocol a stored config ran with (older sessions have none: they ran with `lenient`)."""
    return config.get("protocol") or LEGACY_PROTOCOL


@dataclass(frozen=True)
class Protocol:
    name: str

    def parse(self, text: str) -> ParsedAnswer:
        raise NotImplementedError

    def history_text(self, reply_visible: str, mode: str, model_answer: int | None,
                     history_answer: int | None, placeholders: Placeholders = NO_PLACEHOLDERS) -> str:
        """The assistant message the model sees next for a finished turn.

        `history_answer` is the answer the history policy decided to show (None: nothing to show); it
        counts as a replacement when it differs from `model_answer`. `placeholders`: the template's."""
        raise NotImplementedError


class PaperProtocol(Protocol):
    def parse(self, text: str) -> ParsedAnswer:
        match = _FIRST_TAG.search(strip_think(text or ""))
        if match is None:
            return ParsedAnswer("format")
        return _read_int(match.group(1))

    def history_text(self, reply_visible: str, mode: str, model_answer: int | None,
                     history_answer: int | None, placeholders: Placeholders = NO_PLACEHOLDERS) -> str:
        visible = strip_think(reply_visible or "").strip()
        replaced = history_answer is not None and history_answer != model_answer
        match = _FIRST_TAG.search(visible)
        if replaced:
            if mode == "cot" and match is not None:
                return f"{visible[:match.start(1)]}{history_answer}{visible[match.end(1):]}"
            return f"<answer>{history_answer}</answer>"
        if match is None:
            if visible:
                return NO_ANSWER if placeholders.no_answer is None else placeholders.no_answer
            return EMPTY_REPLY if placeholders.empty_reply is None else placeholders.empty_reply
        if mode == "cot":
            return visible
        return f"<answer>{match.group(1).strip()}</answer>"


class LenientProtocol(Protocol):
    def parse(self, text: str) -> ParsedAnswer:
        return parse_answer(text)

    def history_text(self, reply_visible: str, mode: str, model_answer: int | None,
                     history_answer: int | None, placeholders: Placeholders = NO_PLACEHOLDERS) -> str:
        visible = strip_think(reply_visible) if "<" in (reply_visible or "") else reply_visible
        if history_answer is None or history_answer == model_answer:
            if visible:
                return visible
            return LENIENT_EMPTY_REPLY if placeholders.empty_reply is None else placeholders.empty_reply
        return render_answer(visible, history_answer)


def _read_int(content: str) -> ParsedAnswer:
    content = content.strip()
    if len(content) > MAX_CHARS or not _INT.fullmatch(content):
        return ParsedAnswer("invalid")
    value = int(content)
    if abs(value) >= 10 ** MAX_DIGITS:
        return ParsedAnswer("invalid")
    return ParsedAnswer("ok", value)


_PROTOCOLS: dict[str, Protocol] = {"paper": PaperProtocol("paper"), "lenient": LenientProtocol("lenient")}


def get_protocol(name: str) -> Protocol:
    try:
        return _PROTOCOLS[name]
    except KeyError:
        from lhe_tui.common.errors import ConfigError

        raise ConfigError(f"unknown protocol {name!r} (choose from {', '.join(PROTOCOLS)})") from None
