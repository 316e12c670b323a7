"""The shipped five-letter word list (generated from Debian's wamerican, see scripts/make_wordlist.py)."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def load_words() -> tuple[str, ...]:
    text = resources.files("lhe_tui.task").joinpath("data/words.txt").read_text(encoding="utf-8")
    return tuple(line for line in text.splitlines() if line and not line.startswith("#"))
