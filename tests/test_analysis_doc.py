"""docs/analysis.md runs: its ```python blocks are executed in order in a fresh folder (issue 16, notebook API).
Blocks that use pandas are left out, with a reason, when pandas is not installed."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "analysis.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)
HAS_PANDAS = importlib.util.find_spec("pandas") is not None


def blocks() -> list[str]:
    return BLOCK.findall(DOC.read_text(encoding="utf-8"))


def needs_pandas(code: str) -> bool:
    return "pandas" in code or "_frame(" in code


def run_blocks(codes: list[str]) -> None:
    namespace: dict = {"__name__": "__analysis__"}
    for index, code in enumerate(codes):
        try:
            exec(compile(code, f"{DOC.name} block {index + 1}", "exec"), namespace)
        except Exception as exc:   # name the block: the doc is what failed
            raise AssertionError(f"{DOC.name}: block {index + 1} failed: {exc!r}\n{code}") from exc


def test_the_doc_has_blocks_with_and_without_pandas():
    codes = blocks()
    assert len(codes) >= 5
    assert any(needs_pandas(c) for c in codes) and not needs_pandas(codes[0])


def test_walkthrough_without_pandas_blocks(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run_blocks([c for c in blocks() if not needs_pandas(c)])
    assert (tmp_path / "curves.csv").exists()


@pytest.mark.skipif(not HAS_PANDAS, reason="pandas is not installed: docs/analysis.md's DataFrame blocks need it")
def test_walkthrough_in_full_with_pandas(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run_blocks(blocks())
