"""Arms side by side (issue 15): the live runs of a group's arms, or a stored group replayed, in one view.

Each arm has its own event feed and RunModel, filled by its own source: a LiveRun (its own run process and
session) or a ReplayPlayer of the group's GroupPlayer. A 10 Hz timer drains every feed and brings the view
up to date: a status line per arm, the watched sample's turns of every arm in one table aligned by turn
(first errors and differences marked), and one decay chart overlaying the arms (recomputed at most twice a
second, in a thread for large runs). Nothing is drawn per event.

Keys act on the focused arm (tab / shift+tab move the focus, `▶` marks it) or, after `a`, on every arm:
space pauses or resumes, x stops, i injects into the watched sample's latest finished turn, I asks what to
inject. In a replay, space, speed, step and restart act on every arm together.

Each arm is an `ArmPane` (_arms_pane.py); the keys that steer live arms are `ArmsSteering` (_arms_steering.py),
the chart's curves `ArmsCurves` (_arms_curves.py), both mixed into `ArmsScreen`.
"""

from __future__ import annotations

import functools
import time

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from lhe_tui.core.events import Event, Injected, RunFinished
from lhe_tui.ui.screens._replay_keys import ReplayKeys
from lhe_tui.ui.screens._arms_pane import ArmPane
from lhe_tui.ui.screens._arms_curves import ArmsCurves
from lhe_tui.ui.screens._arms_steering import ArmsSteering
from lhe_tui.ui.arms import ArmRun, ArmsLaunch, GroupPlayer, GroupReplayed
from lhe_tui.ui.footer import QuickFooter
from lhe_tui.ui.live import NOT_STARTED, LiveRun
from lhe_tui.ui.widgets.arms_plot import ArmsDecayPlot
from lhe_tui.ui.widgets.arms_status import ArmLine, ArmsStatus
from lhe_tui.ui.widgets.arms_table import ArmColumn, ArmsTable
from lhe_tui.ui.widgets.replay_controls import ReplayControls, speed_label

FLUSH_HZ = 10
METRICS_HZ = 2
BUSY_FLUSH_EVENTS = 100      # as RunScreen: a flush this busy makes the next tick rest (5 Hz under load)
MAX_EVENTS_PER_FLUSH = 200_000
WIDE = 120                   # from this width the chart sits beside the table, below it under
TABLE_SHARE = 0.6            # wide: the most of the width the table takes


class ArmsScreen(ArmsSteering, ArmsCurves, ReplayKeys, Screen):
    """`ArmsScreen.live(launch)` for a group's live runs, `ArmsScreen.replay(group, ...)` for a stored one."""

    DEFAULT_CSS = """
    ArmsScreen { layout: vertical; }
    ArmsScreen #arms-body { height: 1fr; layout: horizontal; }
    ArmsScreen #arms-table { width: 1fr; }
    ArmsScreen #arms-plot { width: 1fr; height: 1fr; border-left: vkey $panel-lighten-1; }
    ArmsScreen.-narrow #arms-body { layout: vertical; }
    ArmsScreen.-narrow #arms-plot { width: 1fr; height: 50%; border-left: none; border-top: hkey $panel-lighten-1; }
    ArmsScreen Footer.-compact FooterLabel { margin: 0 1 0 0; }
    """

    SAMPLE = Binding.Group("Sample")
    STEP = Binding.Group("Step")
    SPEED = Binding.Group("Speed")
    BINDINGS = [
        Binding("space", "play_pause", "Pause/Play"),
        Binding("x", "stop", "Stop"),
        Binding("i", "inject", "Inject"),
        Binding("tab", "next_arm", "Arm", priority=True),   # short: the footer keeps q Quit at 100 columns
        Binding("shift+tab", "prev_arm", "Previous arm", show=False, priority=True),
        Binding("a", "all_arms", "All"),
        Binding("[", "prev_sample", "Previous sample", key_display="[", group=SAMPLE),
        Binding("]", "next_sample", "Next sample", key_display="]", group=SAMPLE),
        Binding("e", "first_error", "1st err"),
        Binding("comma", "step_back", "Step back", key_display=",", group=STEP),
        Binding("full_stop", "step_forward", "Step forward", key_display=".", group=STEP),
        Binding("minus", "slower", "Slower", key_display="-", group=SPEED),
        Binding("plus,equals_sign", "faster", "Faster", key_display="+", group=SPEED),
        Binding("I", "inject_dialog", "Inject…", key_display="I", show=False),
        Binding("F", "fork", "Fork…", key_display="F", show=False),
        Binding("home", "restart", "Restart replay", show=False, priority=True),
        Binding("escape", "back", "Back", show=False),
    ]

    LIVE_ONLY = {"stop", "inject", "inject_dialog"}
    REPLAY_ONLY = {"step_back", "step_forward", "slower", "faster", "restart"}

    def __init__(self, group_id: str, names: list[str], *, runs: list[ArmRun] | None = None,
                 player: GroupPlayer | None = None, name: str | None = None, resumed: bool = False,
                 note: str = "") -> None:
        """`resumed`: the live arms continue stored sessions (their stored turns are shown first); `note`:
        said once the view is up."""
        if (runs is None) == (player is None):
            raise ValueError("ArmsScreen needs exactly one of runs= or player=")
        count = len(runs) if runs is not None else len(player.players)  # type: ignore[union-attr]
        if count != len(names) or not names:
            raise ValueError("ArmsScreen needs one name per arm")
        super().__init__(name=name)
        self.group_id = group_id
        self.player = player
        self.arm_runs = runs or []
        self.resumed = resumed
        self.note = note
        self.panes = [ArmPane(i, n, live=runs[i].live if runs is not None else None) for i, n in enumerate(names)]
        self.watched = 0
        self.focused_arm = 0
        self.all_arms = False
        self.redraws = 0
        self._force = True
        self._rest = False
        self._metrics_busy = False
        self._announced_group_end = False
        self._table_width: int | None = None     # wide: the table's width in cells (None: the CSS's)

    @classmethod
    def live(cls, launch: ArmsLaunch) -> ArmsScreen:
        return cls(launch.group_id, [arm.name for arm in launch.arms], runs=launch.arms, resumed=launch.resumed,
                   note=launch.note)

    @classmethod
    def replay(cls, group: GroupReplayed, *, speed: float = 1.0, playing: bool = True) -> ArmsScreen:
        player = GroupPlayer([replay for _name, replay in group.arms], speed=speed, playing=playing)
        return cls(group.group_id, [name for name, _replay in group.arms], player=player)

    @property
    def is_live(self) -> bool:
        return self.player is None

    @property
    def runs(self) -> list[LiveRun]:
        return [pane.live for pane in self.panes if pane.live is not None]

    # ---- layout -------------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        width, _height = self.app.size
        self.set_class(bool(width) and width < WIDE, "-narrow")
        yield ArmsStatus(id="arms-status")
        with Container(id="arms-body"):
            yield ArmsTable(id="arms-table")
            yield ArmsDecayPlot(id="arms-plot")
        if self.player is not None:
            yield ReplayControls(id="replay-controls")
        yield QuickFooter(compact=bool(width) and width < WIDE, show_command_palette=width >= WIDE)

    def on_mount(self) -> None:
        self.status = self.query_one(ArmsStatus)
        self.table = self.query_one(ArmsTable)
        self.plot = self.query_one(ArmsDecayPlot)
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._force_redraw())
        if self.player is not None:
            # The replays' own seek: the player's would pause it (it plays from the start if asked to).
            self._rebuild([p.replay.seek(p.position) for p in self.player.players])
        else:
            if self.resumed:
                self._preload_resumed()
            for pane, arm in zip(self.panes, self.arm_runs):
                after = self.arm_runs[pane.index - 1] if pane.index else None
                self.run_worker(functools.partial(arm.drive, after), name=f"arm {pane.name}",
                                group=f"arm-{pane.index}", exclusive=True, exit_on_error=False, thread=True,
                                description=f"arm {pane.name}: run {arm.live.session_id}")
        self.set_interval(1 / FLUSH_HZ, self.flush, name="flush")
        self.set_interval(1 / METRICS_HZ, self.refresh_metrics, name="metrics")
        self.table.focus()
        self.flush()
        if self.note:
            self.notify(self.note, title=f"group {self.group_id}", timeout=8, markup=False)

    def _preload_resumed(self) -> None:
        """Each resumed arm's stored turns, shown before its live events arrive (as the run view does for a
        resumed session): the table and chart show the whole run, not only the new turns."""
        from lhe_tui.store.queries import load_turns

        db = getattr(self.app, "db", None)
        if db is None:
            return
        for pane in self.panes:
            assert pane.live is not None
            session_id = pane.live.session_id
            row = db.execute("SELECT wall_time_s FROM sessions WHERE id = ?", [session_id]).fetchone()
            pane.model.preload(load_turns(db, session_id), wall_time_s=row[0] if row else None)

    def on_resize(self) -> None:
        narrow = self.size.width < WIDE
        self.set_class(narrow, "-narrow")
        footer = self.query_one(QuickFooter)
        footer.compact = narrow
        footer.show_command_palette = not narrow
        self._force_redraw()

    def on_screen_resume(self) -> None:
        self._force_redraw()

    def _force_redraw(self) -> None:
        self._force = True
        if self.is_mounted:
            self.call_later(self.flush)

    # ---- the flush (10 Hz) ---------------------------------------------------------------------------------
    def flush(self) -> None:
        if self.player is not None:
            for pane, events in zip(self.panes, self.player.tick(time.monotonic())):
                for event in events:
                    pane.feed.push(event)
        elif self._rest and not self._force:
            self._rest = False
            return
        drained = 0
        for pane in self.panes:
            events = pane.feed.drain(MAX_EVENTS_PER_FLUSH)
            drained += len(events)
            self._apply(pane, events)
        self._rest = self.is_live and drained >= BUSY_FLUSH_EVENTS
        if not self.is_current:
            return
        force, self._force = self._force, False
        if drained or force:
            self.redraws += 1
        self.render_visible(force=force)

    def _apply(self, pane: ArmPane, events: list[Event]) -> None:
        injected: list[Injected] = []
        for event in events:
            pane.model.apply(event)
            if isinstance(event, Injected) and pane.live is not None and event.source != "scripted":
                injected.append(event)
            elif isinstance(event, RunFinished) and pane.live is not None:
                self._on_arm_finished(pane, event)
        if pane.model.watched != self.watched and pane.model.samples:
            pane.model.watch(self.watched)
        for event in injected[:1]:
            more = f" (and {len(injected) - 1} more samples)" if len(injected) > 1 else ""
            self.notify(f"arm {pane.name}, s{event.sample}: the history now shows {event.injected} for turn "
                        f"{event.turn}{more}", title="injected", markup=False)

    def _on_arm_finished(self, pane: ArmPane, event: RunFinished) -> None:
        if pane.announced_end:
            return
        pane.announced_end = True
        if event.status not in ("finished", "interrupted"):
            self.notify(f"arm {pane.name} ended {event.status.replace('_', ' ')}: {event.message}",
                        title="arm ended", severity="error", timeout=10, markup=False)
        if all(p.announced_end or p.failure for p in self.panes) and not self._announced_group_end:
            self._announced_group_end = True
            self.notify(f"every arm has ended; replay them together with `lhe-tui replay {self.group_id}`",
                        title="group ended", timeout=8, markup=False)

    def render_visible(self, *, force: bool = False) -> None:
        self.status.sync(self._head(), [self._arm_line(pane) for pane in self.panes])
        if self.table.sync([ArmColumn(p.name, p.colour, p.model.sample(self.watched), self._targeted(p),
                                      p.model.step_rule) for p in self.panes], self.watched, force=force) or force:
            self._fit_table()
        if self.player is not None:
            self.query_one(ReplayControls).sync(self.player)  # type: ignore[arg-type]
        if force:
            self._draw_plot(force=True)

    def _fit_table(self) -> None:
        """Wide: the table as wide as its columns (at most TABLE_SHARE of the screen), the chart takes the rest.
        Narrow: the table takes the width, the chart sits under it. A layout only when the width changes
        (a column gets a digit wider: a few times a run)."""
        if self.has_class("-narrow"):
            width = None
        else:
            width = min(self.table.natural_width, int(self.size.width * TABLE_SHARE))
        if width != self._table_width:
            self._table_width = width
            self.table.styles.width = width

    def _targeted(self, pane: ArmPane) -> bool:
        return self.all_arms or pane.index == self.focused_arm

    def _head(self) -> Text:
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append("arms ", Style(bold=True))
        t.append(self.group_id, Style(dim=True))
        if self.player is None:
            t.append(" · LIVE", Style(bold=True))
        else:
            state = "playing ▶" if self.player.playing else ("ended ■" if self.player.at_end else "paused ‖")
            t.append(f" · REPLAY {state} {speed_label(self.player.speed)}", Style(bold=True))
        samples = max((len(p.model.samples) for p in self.panes), default=0)
        t.append(f" · sample s{self.watched}" + (f" of {samples}" if samples else ""))
        target = "all arms" if self.all_arms else self.panes[self.focused_arm].name
        t.append(" · keys act on ")
        t.append(target, Style(bold=True, underline=True))
        t.append(" (tab: next arm, a: all)" if self.player is None else " (tab: next arm)", Style(dim=True))
        return t

    def _arm_line(self, pane: ArmPane) -> ArmLine:
        model = pane.model
        if self.player is not None:
            player = self.player.players[pane.index]
            replay = player.replay
            elapsed = replay.times[replay.position - 1] if replay.position else 0.0
        else:
            elapsed = model.elapsed()
        return ArmLine(pane.name, pane.colour, model, pane.decay.summary if pane.decay else None,
                       self._targeted(pane), elapsed, pane.failure)

    # ---- workers: the arms' runs and their curves (ArmsCurves) ----------------------------------------------
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group == "arms-metrics":
            self._curves_computed(event)
            return
        if not worker.group.startswith("arm-"):
            return
        pane = self.panes[int(worker.group[4:])]
        if event.state == WorkerState.SUCCESS and worker.result == NOT_STARTED:
            pane.model.status = NOT_STARTED
            pane.model.message = "stopped before its local model server answered; nothing was stored"
            pane.announced_end = True
            self._force_redraw()
        elif event.state == WorkerState.ERROR:
            pane.failure = f"{type(worker.error).__name__}: {worker.error}"
            pane.announced_end = True
            self.notify(f"arm {pane.name} stopped with an error: {worker.error}", title="arm failed",
                        severity="error", timeout=10, markup=False)
            self._force_redraw()

    # ---- actions -------------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.LIVE_ONLY and self.player is not None:
            return False
        if action in self.REPLAY_ONLY and self.player is None:
            return False
        if action == "all_arms" and self.player is not None:
            return False
        if action == "back" and len(self.app.screen_stack) <= 2:
            return False
        return True

    def watch_sample(self, index: int) -> None:
        samples = max((len(p.model.samples) for p in self.panes), default=0)
        if not samples:
            return
        self.watched = index % samples
        for pane in self.panes:
            if pane.model.samples:
                pane.model.watch(self.watched)
        self._force_redraw()

    def action_prev_sample(self) -> None:
        self.watch_sample(self.watched - 1)

    def action_next_sample(self) -> None:
        self.watch_sample(self.watched + 1)

    def action_play_pause(self) -> None:
        if self.player is not None:
            if self.player.at_end and not self.player.playing:
                self._rebuild(self.player.seek(0))
            self.player.toggle()
            self.flush()
            return
        self._pause_or_resume_targets()

    def action_first_error(self) -> None:
        pane = self.panes[self.focused_arm]
        if self.player is not None:
            replay = self.player.players[pane.index].replay
            position = replay.first_error_position(self.watched)
            if position is not None and position > replay.position:
                turn = replay.frame(position - 1).turn
                for other, events in zip(self.panes, self.player.forward_to_turn(self.watched, turn)):
                    other.model.apply_all(events)
                self._force = True
                self.flush()
        state = pane.model.sample(self.watched)
        if state is None or state.first_error is None:
            self.notify(f"arm {pane.name}: s{self.watched} has no wrong answer yet", severity="warning")
            return
        self.table.go_to_turn(state.first_error)

    def _step(self, direction: int) -> None:
        assert self.player is not None
        moves = self.player.step_turn(self.watched, direction)
        if moves is None:
            self.notify("no more turns of this sample that way", severity="warning", timeout=2)
            return
        for pane, (events, backward) in zip(self.panes, moves):
            if backward:
                pane.model.undo_all(events)
            else:
                pane.model.apply_all(events)
        self._force = True
        self.flush()
        self.table.go_to_newest()

    def _rebuild(self, per_arm: list[list[Event]]) -> None:
        for pane, events in zip(self.panes, per_arm):
            pane.model.reset()
            pane.model.apply_all(events)
            if pane.model.samples:
                pane.model.watch(min(self.watched, len(pane.model.samples) - 1))
        self._force = True

    # ---- fork (F) ----------------------------------------------------------------------------------------
    def action_fork(self) -> None:
        """`F`: fork every arm at the cursor's turn (a dialog), then run the new group live in this view's place.
        In a replay, or once every live arm has ended."""
        from lhe_tui.ui.screens.fork import ForkDefaults, GroupForkScreen, refuse_or_hold

        running = [screen for screen in self.app.live_runs() if screen is not self]  # type: ignore[attr-defined]
        turn = self.table.cursor_turn
        pane = self.panes[self.focused_arm]
        problem = getattr(self.app, "store_problem", None)
        if problem is not None:
            why = problem
        elif any(p.running for p in self.panes):
            why = "the arms are still running: stop them first (a, x), then fork"
        elif running:
            why = "a run is already going: stop it first (x in its view), then fork"
        elif turn is None or not pane.model.samples:
            why = "no turn under the cursor yet: nothing to fork"
        else:
            why = None
        if refuse_or_hold(self, why):
            return
        defaults = ForkDefaults.of_run(pane.model.config, parent_id=self.group_id, turn=turn,  # type: ignore[arg-type]
                                       sample=self.watched, n_samples=len(pane.model.samples), turns=pane.model.n_turns)
        dialog = GroupForkScreen(defaults, self.app.db_path, [p.name for p in self.panes])  # type: ignore[attr-defined]

        def created(group_id: str | None) -> None:
            if group_id is not None:
                self.app.call_later(self.app.start_group, group_id, self, dialog.description)  # type: ignore[attr-defined]

        self.app.push_screen(dialog, created)

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()

    # ---- teardown ------------------------------------------------------------------------------------------
    def on_unmount(self) -> None:
        """Leaving the screen (or the app) mid-run stops every arm: each session ends interrupted."""
        runs = [p.live for p in self.panes if p.live is not None and not p.live.finished]
        for live in runs:
            live.stop()
        for live in runs:
            live.wait(timeout=10)
        if self.player is not None:
            self.player.close()
