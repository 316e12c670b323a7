"""Write docs/figures/live-view.svg: a real screenshot of the live view, taken from a seeded sim run.

The run goes on in the TUI, headless (`App.run_test`) at a fixed size, until it has passed a number of
turns; then the app saves an SVG of its screen (`App.save_screenshot`) and the run is stopped. The sim's
answers are seeded, but its timing and the moment of the screenshot are not, so two runs give nearly, not
byte-for-byte, the same picture. Run it from the repository root after changing the run view:

    python scripts/screenshot.py [--out docs/figures/live-view.svg] [--turns-shown 80]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from lhe_tui.core.config import RunConfig
from lhe_tui.ui.app import LheApp, start_live_run
from lhe_tui.ui.screens.run import RunScreen

SIZE = (140, 40)
# 8 samples of a sim that errs now and then, slow enough that the screen shows a run in progress
CONFIG = dict(samples=8, turns=200, seed=7, mode="thinking", sim_base_error=0.004, sim_growth=0.0001,
              sim_delay=0.02)


def watched_turns(screen: RunScreen) -> int:
    return screen.table.row_count


async def take(out: Path, turns_shown: int, timeout: float) -> None:
    with tempfile.TemporaryDirectory() as folder:
        db_path = Path(folder) / "screenshot.db"
        live = start_live_run(RunConfig(**CONFIG), db_path)
        app = LheApp(db_path, live=live)
        async with app.run_test(size=SIZE) as pilot:
            deadline = time.monotonic() + timeout
            while True:
                screen = app.screen
                if isinstance(screen, RunScreen) and watched_turns(screen) >= turns_shown:
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"the run did not reach turn {turns_shown} in {timeout:.0f} s")
                await pilot.pause(0.2)
            await pilot.pause(1.0)       # the charts and metrics follow at their own pace
            out.parent.mkdir(parents=True, exist_ok=True)
            app.save_screenshot(filename=out.name, path=str(out.parent))
            await pilot.press("q")       # stops the live run (it is saved in the temporary store)
            await pilot.pause(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/figures/live-view.svg"))
    parser.add_argument("--turns-shown", type=int, default=80, help="turns of the watched sample before the shot")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    asyncio.run(take(args.out, args.turns_shown, args.timeout))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
