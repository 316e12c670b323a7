"""The architecture (DESIGN §4, issue 27): only the TUI imports Textual, the CLI reaches the TUI only through
lhe_tui.ui.launch, imports run downward through the layers pyproject.toml lists (cli; ui; reports; sweep; analysis;
runs; runner; store | providers; core; task | metrics; common), and no sibling modules import each other in a circle."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_linter_contract_holds():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint_imports), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "KEPT" in result.stdout


def test_engine_imports_leave_textual_unloaded():
    code = ("import sys, lhe_tui.runner.runner, lhe_tui.runs.run_process, lhe_tui.store.writer, lhe_tui.metrics, "
            "lhe_tui.runs.session, lhe_tui.runs.arms, lhe_tui.analysis.compare, lhe_tui.reports.report, "
            "lhe_tui.cli.headless, lhe_tui.reports.api; print('textual' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
