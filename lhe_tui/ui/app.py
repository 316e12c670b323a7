"""The Textual app: themes, global keys and screen navigation. The screens do the work."""

from __future__ import annotations

import gc
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from lhe_tui.common.errors import LheError, StoreError
from lhe_tui.core.config import RunConfig
from lhe_tui.store.database import open_database, store_error
from lhe_tui.store.replay import SessionReplay
from lhe_tui.store.replay_player import ReplayPlayer
from lhe_tui.ui.live import LiveRun
from lhe_tui.ui.screens.run import RunScreen
from lhe_tui.ui.themes import DEFAULT_THEME, ThemeLoadResult, load_themes, register_themes, theme_search_dirs

if TYPE_CHECKING:
    from lhe_tui.ui.arms import ArmsLaunch, GroupReplayed


def start_live_run(config: RunConfig, db_path: Path, *, base_url: str | None = None, stream_deltas: bool = True,
                   probe: tuple[int, tuple[float, ...]] | None = None) -> LiveRun:
    """Check a run (or a target-turn probe) here, so that bad input fails before the app starts, and
    return it ready for the run screen, which starts it in its own process."""
    from lhe_tui.providers.factory import check_credentials
    from lhe_tui.providers.local_provider import prepare_own_server
    from lhe_tui.runs.run_process import RunJob
    from lhe_tui.runs.session import build_task, new_session_id

    config.validate()                      # bad flags fail before any file is created
    check_credentials(config)
    # --provider local: our own llama.cpp server, resolved now (a missing extra or GGUF fails here, before
    # the app), started when the run starts and stopped when it ends.
    server, config, _ = prepare_own_server(config)
    task = plan = None
    if probe is not None:
        from lhe_tui.runs.probe import plan_probe

        plan = plan_probe(config, *probe)  # a bad target turn or rate list fails here
    else:
        task = build_task(config)          # a malformed dataset fails here
    open_database(db_path).conn.close()    # creates the store (a foreign or corrupt file fails here)
    job = RunJob("probe" if probe is not None else "run", str(db_path), config, new_session_id(), base_url=base_url,
                 task=task, probe=plan, stream_deltas=stream_deltas)
    return LiveRun(job, server=server)


def resume_live_run(db_path: Path, session_id: str, overrides: dict | None = None) -> LiveRun:
    """`lhe-tui resume ID` in the TUI: continue a stored run (a local-model run gets its server back).
    `overrides`: RunConfig fields given again (a new --max-cost, --max-tokens-total, --rpm, --tpm)."""
    from lhe_tui.providers.factory import check_credentials
    from lhe_tui.providers.local_provider import prepare_own_server
    from lhe_tui.runs.run_process import RunJob
    from lhe_tui.runs.resume_state import load_resume_state

    db = open_database(db_path, create=False)
    try:
        state = load_resume_state(db, session_id)
    finally:
        db.conn.close()
    if overrides:
        from dataclasses import replace

        from lhe_tui.runner.budget import budget_for

        state.config = replace(state.config, **overrides).validate()
        budget_for(state.config)   # --max-cost on a model with no price: one line before the app starts
    check_credentials(state.config)
    server, config, _ = prepare_own_server(state.config)
    return LiveRun(RunJob("resume", str(db_path), config, session_id, resume_state=state), server=server,
                   resumed=True)


class LheApp(App[int]):
    TITLE = "lhe-tui"

    BINDINGS = [
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("s", "sessions", "Sessions"),
        Binding("n", "new_run", "New"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, db_path: Path, *, live: LiveRun | None = None, replay: SessionReplay | None = None,
                 theme: str | None = None, themes: ThemeLoadResult | None = None,
                 new_run_defaults: RunConfig | None = None, replay_speed: float = 1.0,
                 replay_autoplay: bool = True, open_form: bool = False, compare: list[str] | None = None,
                 compare_turns: list[int] | None = None, arms: ArmsLaunch | None = None,
                 group: GroupReplayed | None = None, sweep: tuple | None = None) -> None:
        """`arms`: a group's live arms, shown side by side; `group`: a stored group, replayed side by side."""
        super().__init__()
        self.db_path = Path(db_path)
        self.store_problem: str | None = None   # the store cannot be used (damaged...): said in place
        try:
            self.db = open_database(self.db_path, write=False)
        except StoreError as exc:
            self.db = None
            self.store_problem = str(exc)
        self._initial_live = live
        self.runs: list[LiveRun] = []     # every live run shown, in order (the quit message names the last)
        self._initial_replay = replay
        self._initial_arms = arms
        self._initial_group = group
        self._initial_sweep = sweep          # (engine, driver or None): a sweep's board (lhe_tui.ui.screens.sweep)
        self.replay_speed = replay_speed
        self.replay_autoplay = replay_autoplay
        self.new_run_defaults = new_run_defaults or RunConfig(samples=8, turns=200, sim_delay=0.01)
        self._open_form = open_form
        self._initial_compare = (compare or [], compare_turns)
        self.theme_result = themes if themes is not None else load_themes(theme_search_dirs())
        register_themes(self, self.theme_result)
        self._theme_notice = ""
        wanted = theme or DEFAULT_THEME
        if wanted in self.available_themes:
            self.theme = wanted
        else:
            if wanted != DEFAULT_THEME:
                self._theme_notice = f"unknown theme {wanted!r}; using {DEFAULT_THEME}"
            if DEFAULT_THEME in self.available_themes:
                self.theme = DEFAULT_THEME

    resume_gc = False
    """Garbage collection was paused for the start-up (lhe_tui.ui.launch): resume it once the first screen is drawn."""

    def on_mount(self) -> None:
        if self.resume_gc:
            self.call_later(self._resume_gc)     # (after the first screen's push, which on_mount queues below)
        for problem in self.theme_result.problems:
            self.notify(problem, title="theme file skipped", severity="warning", timeout=8, markup=False)
        if self._theme_notice:
            self.notify(self._theme_notice, title="theme", severity="warning", markup=False)
        # The run screen is pushed once the app runs: pushed while it starts, its first paint was dropped
        # (Textual writes nothing until then) and the next ones redrew only what changed, so the status
        # bar stayed blank until it changed (issue 6, replay first frame).
        if self._initial_sweep is not None:
            from lhe_tui.ui.screens.sweep import SweepBoard

            engine, driver = self._initial_sweep
            self.call_later(self.push_screen, SweepBoard(engine, driver))
            if driver is not None:
                driver.start()
        elif self._initial_arms is not None:
            from lhe_tui.ui.screens.arms import ArmsScreen

            self.runs.extend(self._initial_arms.runs)
            self.call_later(self.push_screen, ArmsScreen.live(self._initial_arms))
        elif self._initial_group is not None:
            from lhe_tui.ui.screens.arms import ArmsScreen

            self.call_later(self.push_screen, ArmsScreen.replay(self._initial_group, speed=self.replay_speed,
                                                                playing=self.replay_autoplay))
        elif self._initial_live is not None:
            self.call_later(self.push_screen, self._live_screen(self._initial_live))
        elif self._initial_replay is not None:
            self.call_later(self.push_screen, RunScreen(player=self._player(self._initial_replay)))
        else:
            from lhe_tui.ui.screens.sessions import SessionsScreen

            self.push_screen(SessionsScreen())
            if self._open_form:
                self.action_new_run()
            elif self._initial_compare[0]:
                self.open_compare(*self._initial_compare)

    def _resume_gc(self) -> None:
        self.screen.call_after_refresh(gc.enable)

    # ---- navigation -----------------------------------------------------------------------------------
    def live_runs(self) -> list[Screen]:
        """Screens with a live run going: a run view, or an arms view with an arm still running."""
        return [s for s in self.screen_stack
                if (isinstance(s, RunScreen) and s.live is not None and not s.live.finished)
                or any(not live.finished for live in getattr(s, "runs", ()))]

    def action_help(self) -> None:
        from lhe_tui.ui.screens.help import HelpScreen  # Markdown is slow to import: only when asked

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_sessions(self) -> None:
        # The sessions and new-run screens are imported when first shown (DataTable, the form's widgets
        # and the report code: not needed for `lhe-tui replay ID`'s first frame, issue 6).
        from lhe_tui.ui.screens.sessions import SessionsScreen

        for screen in self.screen_stack:
            if isinstance(screen, SessionsScreen):
                while self.screen is not screen:
                    self.pop_screen()
                return
        self.push_screen(SessionsScreen())

    def action_new_run(self) -> None:
        from lhe_tui.ui.screens.new_run import NewRunScreen

        if isinstance(self.screen, NewRunScreen):
            return
        self.push_screen(NewRunScreen(self.new_run_defaults), self.start_run)

    def start_run(self, config: RunConfig | None) -> None:
        if config is None:
            return
        running = self.live_runs()
        if running:
            self.notify("a run is already going: stop it first (x in its view)", severity="warning")
            self.push_screen_to(running[0])
            return
        try:
            live = start_live_run(config, self.db_path)
        except LheError as exc:
            self.notify(str(exc), title="cannot start", severity="error", markup=False)
            return
        self.new_run_defaults = config
        self.push_screen(self._live_screen(live))

    def _live_screen(self, live: LiveRun) -> RunScreen:
        self.runs.append(live)
        return RunScreen(live=live)

    def push_screen_to(self, screen: Screen) -> None:
        while self.screen is not screen and len(self.screen_stack) > 2:
            self.pop_screen()

    def open_compare(self, session_ids: list[str], turns: list[int] | None = None) -> None:
        """Runs overlay in the compare screen, probes in the probe view; a mix is refused with a notice."""
        from lhe_tui.ui.screens.compare import comparison_screen

        if self.store_problem is not None:
            self.notify(self.store_problem, title="cannot compare", severity="error", markup=False)
            return
        screen = comparison_screen(self.db, session_ids, turns)
        if isinstance(screen, str):
            self.notify(screen, title="cannot compare", severity="warning", markup=False)
        else:
            self.push_screen(screen)

    def start_fork(self, fork_id: str, replacing: Screen | None = None, description: str = "") -> bool:
        """Run a fork just created (the fork dialog, `F`): resuming it runs it. Its live view takes the place
        of `replacing` (the view it was forked from) when that is the current screen."""
        if not self.resume_session(fork_id, replacing=replacing, title="cannot start the fork"):
            return False
        if description:
            self.notify(description, title=f"fork {fork_id}", timeout=8, markup=False)
        return True

    def start_group(self, group_id: str, replacing: Screen | None = None, description: str = "") -> bool:
        """Run a group's unfinished arms live (a group fork just created, `F` in the arms view): the arms view
        of the new group takes the place of `replacing` when that is the current screen."""
        from lhe_tui.ui.arms import resume_arm_runs
        from lhe_tui.ui.screens.arms import ArmsScreen

        title = f"cannot run group {group_id}"
        if [screen for screen in self.live_runs() if screen is not replacing]:
            self.notify("a run is already going: stop it first (x in its view)", title=title, severity="warning")
            return False
        try:
            launch = resume_arm_runs(self.db_path, group_id)
        except Exception as exc:  # noqa: BLE001 - shown to the user instead of a traceback
            self.notify(self.describe_error(exc), title=title, severity="error", markup=False)
            return False
        self.runs.extend(launch.runs)
        screen = ArmsScreen.live(launch)
        if replacing is not None and self.screen is replacing:
            self.switch_screen(screen)
        else:
            self.push_screen(screen)
        if description:
            self.notify(description, title=f"group fork {group_id}", timeout=8, markup=False)
        return True

    def resume_session(self, session_id: str, *, replacing: Screen | None = None,
                       title: str = "cannot resume") -> bool:
        """What `lhe-tui resume ID` does, in the TUI; a refusal is a notification, never a traceback.
        `replacing`: the screen the run's live view replaces (else it is pushed)."""
        from lhe_tui.ui.resume import resume_problem

        if [screen for screen in self.live_runs() if screen is not replacing]:
            self.notify("a run is already going: stop it first (x in its view)", title=title,
                        severity="warning")
            return False
        if self.store_problem is not None:
            self.notify(self.store_problem, title=title, severity="error", markup=False)
            return False
        try:
            problem = resume_problem(self.db, session_id)
            if problem is not None:
                raise LheError(problem)
            live = resume_live_run(self.db_path, session_id)
        except LheError as exc:
            self.notify(str(exc), title=title, severity="warning", markup=False)
            return False
        except Exception as exc:  # noqa: BLE001 - shown to the user instead of a traceback
            self.notify(self.describe_error(exc), title=title, severity="error", markup=False)
            return False
        if replacing is not None and self.screen is replacing:
            self.switch_screen(self._live_screen(live))
        else:
            self.push_screen(self._live_screen(live))
        return True

    def open_replay(self, session_id: str) -> None:
        """Load the session in a thread, then show it. The replay keeps the connection: it reads turn
        records as it plays (the connection closes when the replay is dropped)."""
        def load() -> SessionReplay:
            db = open_database(self.db_path, create=False, write=False)
            try:
                return SessionReplay(db, session_id)
            except BaseException:
                db.conn.close()
                raise

        self.run_worker(load, name=f"load {session_id}", group="load-replay", exclusive=True, thread=True,
                        exit_on_error=False)

    def open_group_replay(self, group_id: str) -> None:
        """Load a stored group's arms in a thread, then replay them side by side (the arms view)."""
        from lhe_tui.ui.arms import load_group

        self.run_worker(lambda: load_group(self.db_path, group_id), name=f"load {group_id}", group="load-replay",
                        exclusive=True, thread=True, exit_on_error=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "load-replay":
            return
        if event.state == WorkerState.SUCCESS:
            from lhe_tui.ui.arms import GroupReplayed

            result = event.worker.result
            if isinstance(result, GroupReplayed):
                from lhe_tui.ui.screens.arms import ArmsScreen

                self.push_screen(ArmsScreen.replay(result, speed=self.replay_speed, playing=self.replay_autoplay))
                return
            self.push_screen(RunScreen(player=self._player(result)))
        elif event.state == WorkerState.ERROR:
            error = event.worker.error
            message = self.describe_error(error)
            self.notify(message, title="cannot replay", severity="error", markup=False)

    def describe_error(self, error: BaseException | None) -> str:
        """One line for an error met by a screen: the store's errors as the CLI says them."""
        if isinstance(error, LheError):
            return str(error)
        if isinstance(error, sqlite3.Error):
            return str(store_error(self.db_path, error))
        return f"{type(error).__name__}: {error}"

    def _player(self, replay: SessionReplay) -> ReplayPlayer:
        return ReplayPlayer(replay, speed=self.replay_speed, playing=self.replay_autoplay)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("New run", "Open the new-run form", self.action_new_run)
        yield SystemCommand("Sessions", "Stored sessions; Enter replays one", self.action_sessions)
        yield SystemCommand("Help", "What the screens show and every key", self.action_help)
