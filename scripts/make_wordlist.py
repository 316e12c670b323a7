"""Regenerate lhe_tui/task/data/words.txt from Debian's `wamerican` word list.

    apt-get install wamerican && python scripts/make_wordlist.py

Keeps lowercase, ASCII-only, five-letter words (no proper nouns, no apostrophes).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

SOURCE = Path("/usr/share/dict/american-english")
TARGET = Path(__file__).resolve().parent.parent / "lhe_tui" / "task" / "data" / "words.txt"


def main() -> int:
    if not SOURCE.exists():
        print(f"error: {SOURCE} not found (apt-get install wamerican)", file=sys.stderr)
        return 1
    words = sorted({w for w in SOURCE.read_text(encoding="utf-8").split() if re.fullmatch(r"[a-z]{5}", w)})
    header = "# Five-letter lowercase words from Debian's wamerican list; regenerate with scripts/make_wordlist.py\n"
    TARGET.write_text(header + "\n".join(words) + "\n", encoding="utf-8")
    print(f"{len(words)} words -> {TARGET}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
