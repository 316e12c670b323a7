"""Skips are loud (issue 28): a test that skips and is not listed in tests/allowed_skips.txt fails the run, and
under CI (the CI environment variable set and not false) every skip fails it: CI has root and every extra, so
a skip there means it lost something (the [local] build, pandas, root) and would otherwise stay green.
`-rs` (pyproject.toml's addopts) lists every skip with its reason."""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

import pytest

ALLOWED_SKIPS = Path(__file__).with_name("allowed_skips.txt")

_skips: list[tuple[str, str]] = []


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def allowed_skips(path: Path = ALLOWED_SKIPS) -> list[str]:
    """The node id patterns of the file: the first word of each line that is not blank or a comment."""
    lines = (line.split("#", 1)[0].split() for line in path.read_text(encoding="utf-8").splitlines())
    return [words[0] for words in lines if words]


def unexpected(skips: list[tuple[str, str]], patterns: list[str], ci: bool) -> list[tuple[str, str]]:
    """The skips that fail the run: under CI every one, else those no pattern names."""
    return [(node, why) for node, why in skips
            if ci or not any(node == p or fnmatch.fnmatchcase(node, p) for p in patterns)]


def _reason(report) -> str:
    longrepr = report.longrepr
    return str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)


def pytest_runtest_logreport(report) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _skips.append((report.nodeid, _reason(report)))


def pytest_collectreport(report) -> None:   # a module-level importorskip skips the whole file
    if report.skipped:
        _skips.append((report.nodeid, _reason(report)))


def pytest_sessionfinish(session, exitstatus) -> None:
    bad = unexpected(_skips, allowed_skips(), in_ci())
    session.config.stash[_BAD] = bad
    if bad and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    bad = config.stash.get(_BAD, [])
    if not bad:
        return
    rule = ("CI=true: no test may skip" if in_ci()
            else f"only the tests in {ALLOWED_SKIPS.relative_to(ALLOWED_SKIPS.parents[1])} may skip")
    terminalreporter.section(f"unexpected skips fail the run ({rule})", sep="=", red=True, bold=True)
    for node, why in bad:
        terminalreporter.line(f"{node}: {why}", red=True)


_BAD = pytest.StashKey[list]()
