"""Entry from the CLI into the TUI. Everything that can fail on bad input fails here, before the app
starts, as a one-line LheError."""

from __future__ import annotations

import argparse
import sys

from lhe_tui.runner.config import RunConfig

DEMO_CONFIG = RunConfig(provider="sim", mode="thinking", samples=8, turns=200, seed=0, sim_delay=0.006)
"""`lhe-tui` with no command: a simulated run a newcomer can watch (about half a minute)."""


def launch_tui(args: argparse.Namespace, *, config: RunConfig | None = None, replay_id: str | None = None,
               resume_id: str | None = None, probe: tuple[int, tuple[float, ...]] | None = None) -> int:
    from lhe_tui.store.database import open_database
    from lhe_tui.ui.app import LheApp, start_live_run
    from lhe_tui.ui.live import NOT_STARTED
    from lhe_tui.ui.themes import load_themes, theme_search_dirs

    db_path = args.db
    live = replay = None
    if replay_id is not None:
        from lhe_tui.store.queries import resolve_session_id
        from lhe_tui.store.replay import SessionReplay

        db = open_database(db_path, create=False)
        replay = SessionReplay(db, resolve_session_id(db, replay_id))
    elif resume_id is not None:
        from lhe_tui.ui.app import resume_live_run

        live = resume_live_run(db_path, resume_id)
    elif probe is not None:
        assert config is not None
        live = start_live_run(config, db_path, probe=probe)
    else:
        live = start_live_run(config or DEMO_CONFIG, db_path)
    app = LheApp(db_path, live=live, replay=replay, theme=getattr(args, "theme", None),
                 themes=load_themes(theme_search_dirs()), new_run_defaults=config or DEMO_CONFIG)
    app.run()
    if live is not None and live.finished and (live.starting or live.status == NOT_STARTED):
        print("lhe-tui: the run never started (the local model server did not come up); nothing was stored",
              file=sys.stderr)
    elif live is not None and live.finished:
        status = live.status or "ended"
        print(f"lhe-tui: session {live.session_id} {status}; replay it with `lhe-tui replay {live.session_id}`",
              file=sys.stderr)
    return app.return_code or 0
