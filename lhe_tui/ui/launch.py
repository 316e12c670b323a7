"""Entry from the CLI into the TUI. Everything that can fail on bad input fails here, before the app
starts, as a one-line LheError."""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from lhe_tui.core.config import RunConfig

if TYPE_CHECKING:
    from lhe_tui.ui.arms import ArmsLaunch
    from lhe_tui.ui.live import LiveRun

DEMO_CONFIG = RunConfig(provider="sim", mode="thinking", samples=8, turns=200, seed=0, sim_delay=0.006)
"""`lhe-tui` with no command: a simulated run a newcomer can watch (about half a minute)."""


def launch_compare(db_path: Path, session_ids: list[str], *, theme: str | None, turns: list[int] | None) -> int:
    """`lhe-tui compare … --tui`: the sessions side by side in the compare screen."""
    from lhe_tui.ui.app import LheApp

    app = LheApp(db_path, compare=session_ids, theme=theme, compare_turns=turns)
    app.run()
    return app.return_code or 0


def store_has_sessions(db_path: Path) -> bool:
    """Whether the store at `db_path` exists and holds a session (a foreign or damaged file fails as a
    one-line LheError here, before the app starts)."""
    from lhe_tui.store.database import open_database

    if not Path(db_path).exists():
        return False
    db = open_database(db_path, create=False, write=False)     # (a read-only store is read as the CLI reads it)
    try:
        return db.execute("SELECT 1 FROM sessions LIMIT 1").fetchone() is not None
    finally:
        db.conn.close()


def launch_tui(args: argparse.Namespace, *, config: RunConfig | None = None, replay_id: str | None = None,
               resume_id: str | None = None, probe: tuple[int, tuple[float, ...]] | None = None,
               demo: bool = False, resume_overrides: dict | None = None,
               arms: list[tuple[str, RunConfig]] | None = None, resume_group: str | None = None,
               sweep: str | None = None) -> int:
    """`_launch_tui`; `lhe-tui replay ID` with no garbage collection until its first frame is drawn (the
    collections of start-up, ~10% of its CPU, find next to nothing to free: issue 26, replay first frame)."""
    pause = replay_id is not None and gc.isenabled()
    if pause:
        gc.disable()
    try:
        return _launch_tui(args, config=config, replay_id=replay_id, resume_id=resume_id, probe=probe, demo=demo,
                           resume_overrides=resume_overrides, arms=arms, resume_group=resume_group, sweep=sweep,
                           resume_gc=pause)
    finally:
        if pause:
            gc.enable()


def _launch_tui(args: argparse.Namespace, *, config: RunConfig | None, replay_id: str | None,
                resume_id: str | None, probe: tuple[int, tuple[float, ...]] | None, demo: bool,
                resume_overrides: dict | None, arms: list[tuple[str, RunConfig]] | None, resume_group: str | None,
                sweep: str | None, resume_gc: bool) -> int:
    """`demo`: the simulated demo run. With nothing to run, replay or resume (a bare `lhe-tui`), the app opens
    on the store's sessions, or on the demo run when the store has none yet.

    `arms` (with `config`, the run's own): `lhe-tui run … --arm NAME:FLAGS …`, one live run per arm over one
    task, side by side (issue 15). `replay_id` may be a group id (`grp-…`): its arms replay side by side.
    `resume_group`: `lhe-tui resume grp-…` (or a group just forked): its unfinished arms go on live, side by
    side, each showing its stored turns first (`resume_overrides` apply to every arm)."""
    from lhe_tui.store.database import open_database
    from lhe_tui.store.groups import is_group_id
    from lhe_tui.ui.app import LheApp, start_live_run
    from lhe_tui.ui.themes import load_themes, theme_search_dirs

    db_path = args.db
    live = replay = launch = group = board = None
    from lhe_tui.store.sweeps import is_sweep_id

    if sweep is not None or (replay_id is not None and is_sweep_id(replay_id)):
        board = sweep_board(db_path, sweep, replay_id, resume_overrides, getattr(args, "parallel", None))
    elif arms is not None:
        from lhe_tui.ui.arms import start_arm_runs

        assert config is not None
        launch = start_arm_runs(config, arms, db_path)
    elif resume_group is not None:
        from lhe_tui.ui.arms import resume_arm_runs

        launch = resume_arm_runs(db_path, resume_group, resume_overrides)
    elif replay_id is not None and is_group_id(replay_id):   # `grp-…`: a session id never starts so
        from lhe_tui.ui.arms import load_group

        group = load_group(db_path, replay_id)
    elif replay_id is not None:
        from lhe_tui.store.queries import resolve_session_id
        from lhe_tui.store.replay import SessionReplay

        db = open_database(db_path, create=False, write=False)
        replay = SessionReplay(db, resolve_session_id(db, replay_id))
    elif resume_id is not None:
        from lhe_tui.ui.app import resume_live_run

        live = resume_live_run(db_path, resume_id, resume_overrides)
    elif probe is not None:
        assert config is not None
        live = start_live_run(config, db_path, probe=probe)
    elif config is not None or demo or not store_has_sessions(db_path):
        live = start_live_run(config or DEMO_CONFIG, db_path)
    app = LheApp(db_path, live=live, replay=replay, theme=getattr(args, "theme", None),
                 themes=load_themes(theme_search_dirs()), new_run_defaults=config or DEMO_CONFIG,
                 arms=launch, group=group, sweep=board)
    app.resume_gc = resume_gc
    try:
        app.run()
    finally:
        driver = board[1] if board is not None else None
        if driver is not None and not driver.finished:    # quitting stops every run, keeping its turns
            driver.stop()
            driver.wait(timeout=60)
    if board is not None:
        print(f"lhe-tui: {board[0].plan.sweep_id}: " + "; ".join(
            f"{n} {s.replace('_', ' ')}" for s, n in sorted(_count(p.status for p in board[0].progress.values()))),
            file=sys.stderr)
        return app.return_code or 0
    message = group_quit_message(launch, db_path) if launch is not None else quit_message(app.runs, db_path)
    if message:
        print(message, file=sys.stderr)
    return app.return_code or 0


def sweep_board(db_path: Path, sweep: str | None, replay_id: str | None, overrides: dict | None,
                parallel: int | None):
    """(engine, driver): a sweep to run on the board (driver started by the board), or (engine, None): a stored
    sweep replayed (its runs as the store has them)."""
    from lhe_tui.store.database import open_database
    from lhe_tui.store.sweeps import resolve_sweep_id
    from lhe_tui.sweep.engine import SweepEngine
    from lhe_tui.sweep.plan import load_plan

    if sweep is not None:
        from lhe_tui.sweep.live import SweepDriver

        driver = SweepDriver(db_path, sweep, max_cost=(overrides or {}).get("max_cost"), parallel=parallel)
        return driver.engine, driver
    db = open_database(db_path, create=False, write=False)
    return SweepEngine(load_plan(db, resolve_sweep_id(db, replay_id or "")), db), None


def _count(statuses) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    return [(status, n) for status, n in counts.items()]


def group_quit_message(launch: ArmsLaunch, db_path: Path) -> str:
    """What the terminal says after an arms run: each arm's session and status, and how to replay them."""
    parts = []
    for arm in launch.arms:
        live = arm.live
        if not live.finished:
            live.wait(timeout=10)
        status = stored_status(db_path, live.session_id) if live.status != "not started" else None
        parts.append(f"{arm.name} {live.session_id} {(status or live.status or 'not started').replace('_', ' ')}")
    return (f"lhe-tui: group {launch.group_id}: {'; '.join(parts)}; replay them side by side with "
            f"`lhe-tui replay {launch.group_id}`")


def quit_message(runs: list[LiveRun], db_path: Path) -> str | None:
    """What the terminal says once the app has quit: the last run the app ran (the one a quit stopped, if
    any) and its status as the store has it now."""
    from lhe_tui.ui.live import NOT_STARTED

    if not runs:
        return None
    live = runs[-1]
    if not live.finished:
        live.wait(timeout=10)
    if live.status == NOT_STARTED or (live.finished and live.starting):
        return "lhe-tui: the run never started (the local model server did not come up); nothing was stored"
    status = stored_status(db_path, live.session_id) or live.status or "ended"
    what = "probe" if live.kind == "probe" else "session"
    more = f" (and {len(runs) - 1} more run{'s' if len(runs) > 2 else ''} this time: `lhe-tui sessions`)" \
        if len(runs) > 1 else ""
    return (f"lhe-tui: {what} {live.session_id} {status.replace('_', ' ')}; replay it with "
            f"`lhe-tui replay {live.session_id}`{more}")


def stored_status(db_path: Path, session_id: str) -> str | None:
    from lhe_tui.common.errors import LheError
    from lhe_tui.store.database import open_database

    try:
        db = open_database(db_path, create=False, write=False)
    except LheError:
        return None
    try:
        row = db.execute("SELECT status FROM sessions WHERE id = ?", [session_id]).fetchone()
        return row[0] if row else None
    except Exception:   # noqa: BLE001 - a message after the app: the live run's own status stands in
        return None
    finally:
        db.conn.close()
