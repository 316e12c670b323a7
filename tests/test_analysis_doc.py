"""docs/analysis.md runs and prints what it says: its ```python blocks are executed in order in a fresh folder
(issue 16, notebook API), and what each prints is compared with the ```output block that follows it (none: it
prints nothing), as doctest compares (`...` stands for anything, runs of whitespace are equal; issue 28).
Blocks that use pandas are left out, with a reason, when pandas is not installed."""

from __future__ import annotations

import doctest
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "analysis.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.DOTALL | re.MULTILINE)
HAS_PANDAS = importlib.util.find_spec("pandas") is not None
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@dataclass(frozen=True)
class Block:
    index: int           # 1-based, among the python blocks
    code: str
    prints: str          # what the doc says it prints ("" when no output block follows it)

    @property
    def needs_pandas(self) -> bool:
        return "pandas" in self.code or "_frame(" in self.code


def blocks(text: str | None = None) -> list[Block]:
    text = DOC.read_text(encoding="utf-8") if text is None else text
    fences = list(FENCE.finditer(text))
    found: list[Block] = []
    for i, fence in enumerate(fences):
        if fence.group(1) != "python":
            continue
        after = fences[i + 1] if i + 1 < len(fences) else None
        shown = (after is not None and after.group(1) == "output"
                 and not text[fence.end():after.start()].strip())
        found.append(Block(len(found) + 1, fence.group(2), after.group(2) if shown else ""))
    return found


def run_blocks(chosen: list[Block], capsys) -> None:
    namespace: dict = {"__name__": "__analysis__"}
    checker = doctest.OutputChecker()
    for block in chosen:
        try:
            exec(compile(block.code, f"{DOC.name} block {block.index}", "exec"), namespace)
        except Exception as exc:   # name the block: the doc is what failed
            raise AssertionError(f"{DOC.name}: block {block.index} failed: {exc!r}\n{block.code}") from exc
        printed = capsys.readouterr().out
        if not checker.check_output(block.prints, printed, FLAGS):
            raise AssertionError(f"{DOC.name}: block {block.index} does not print what the doc says:\n"
                                 + checker.output_difference(doctest.Example("", block.prints), printed, FLAGS))


def test_the_doc_has_blocks_with_and_without_pandas_and_says_what_they_print():
    found = blocks()
    assert len(found) >= 5
    assert any(b.needs_pandas for b in found) and not found[0].needs_pandas
    assert sum(1 for b in found if b.prints) >= 5


def test_an_output_block_is_compared():
    doc = "```python\nprint(1 + 1)\n```\n\n```output\n3\n```\n```python\nx = 1\n```\n"
    found = blocks(doc)
    assert [(b.code, b.prints) for b in found] == [("print(1 + 1)\n", "3\n"), ("x = 1\n", "")]

    class Out:
        out = "2\n"

        @classmethod
        def readouterr(cls):
            return cls

    with pytest.raises(AssertionError, match="does not print what the doc says"):
        run_blocks(found[:1], Out)


def test_walkthrough_without_pandas_blocks(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "120")
    run_blocks([b for b in blocks() if not b.needs_pandas], capsys)
    assert (tmp_path / "curves.csv").exists()


@pytest.mark.skipif(not HAS_PANDAS, reason="pandas is not installed: docs/analysis.md's DataFrame blocks need it")
def test_walkthrough_in_full_with_pandas(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "120")
    run_blocks(blocks(), capsys)
