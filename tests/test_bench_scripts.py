"""Every bench/ script still starts: `--help` imports all it needs (a renamed helper broke request_cpu.py
once without any test noticing). The figures themselves are printed by the scripts, never asserted."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
SCRIPTS = sorted(p.name for p in BENCH.glob("*.py") if not p.name.startswith("_"))


def test_the_bench_folder_has_its_scripts():
    assert {"overhead.py", "per_turn_cost.py", "request_cpu.py", "store.py", "ui_lag.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_bench_script_starts(script):
    out = subprocess.run([sys.executable, str(BENCH / script), "--help"], capture_output=True, text=True,
                         cwd=BENCH, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "usage" in out.stdout.lower(), out.stdout[:500]
