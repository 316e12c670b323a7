"""scripts/screenshot.py (the README's picture of the live view) still runs against today's app: it drives a
real seeded sim run in the TUI and writes an SVG of the live view."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "screenshot.py"


def load_script():
    spec = importlib.util.spec_from_file_location("screenshot_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_screenshot_script_writes_an_svg_of_the_live_view(tmp_path):
    script = load_script()
    out = tmp_path / "figures" / "live.svg"
    await script.take(out, turns_shown=3, timeout=60.0)
    svg = out.read_text(encoding="utf-8")
    assert svg.lstrip().startswith("<svg")
    text = re.sub(r"&#160;", " ", svg)
    assert "(simulated)" in text and "LIVE" in text    # the run view's status bar, not the sessions list
