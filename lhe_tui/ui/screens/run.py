"""The run view: one screen fed by a live run or by a replay, through the same events (DESIGN §4).

Events land in an EventFeed; a 10 Hz timer drains it into a RunModel and brings the visible widgets up
to date (hidden ones are skipped and catch up when shown). Metrics (the two fits of p, H_0.5, the decay curves
and their bootstrap CI) are recomputed at most twice a second, in a thread for large runs.

This module composes the screen, mounts it and runs the flush; its other jobs are mixins beside it: the layout
(_run_layout), the metrics (_run_metrics), playback keys (_run_playback), injecting (_run_injection) and the
keys that fork, show a request or save a figure (_run_dialogs).
"""

from __future__ import annotations

import gc
import time

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from lhe_tui.core.events import Event, Injected, RunFinished
from lhe_tui.store.replay_player import ReplayPlayer
from lhe_tui.ui.screens._replay_keys import ReplayKeys
from lhe_tui.ui.screens._run_dialogs import RunDialogs
from lhe_tui.ui.screens._run_injection import RunInjection
from lhe_tui.ui.screens._run_layout import RunLayout, shown
from lhe_tui.ui.screens._run_metrics import RunMetrics
from lhe_tui.ui.screens._run_playback import RunPlayback, reads_store
from lhe_tui.ui.feed import EventFeed, RunModel, SampleState, StreamState
from lhe_tui.ui.turn_records import RecordLoader
from lhe_tui.ui.footer import QuickFooter
from lhe_tui.ui.heap import HeapFreezer
from lhe_tui.ui.live import NOT_STARTED, LiveRun
from lhe_tui.analysis.decay_curves import DecayData
from lhe_tui.ui.widgets.decay_plot import DecayPlot
from lhe_tui.ui.widgets.replay_controls import ReplayControls, speed_label
from lhe_tui.ui.widgets.reply_view import ReplyView
from lhe_tui.ui.widgets.sample_list import SampleList
from lhe_tui.ui.widgets.status_bar import SourceInfo, StatusBar
from lhe_tui.ui.widgets.sum_chart import SumChart
from lhe_tui.ui.widgets.turn_table import TurnTable

FLUSH_HZ = 10          # widget updates per second at most
BUSY_FLUSH_EVENTS = 100   # a live flush that drains this many events makes the next tick rest: 5 Hz while
                          # a run is that fast (64 samples at 50 ms: ~380 a flush), so the screen's
                          # repaints take less of the cores the run process needs (issue 6)
METRICS_HZ = 2         # decay plot / p / H_0.5 recomputations per second at most
MAX_EVENTS_PER_FLUSH = 200_000
FREEZE_EVERY_S = 2.0
"""A run's turns, events and drawn frames live for the whole run; a full garbage collection walked them
all (300 ms stalls every few seconds by 6,400 turns, longer as runs grow). Every few seconds the heap
so far is frozen, so a collection walks only what came since (gc.freeze)."""


class RunScreen(RunPlayback, ReplayKeys, RunInjection, RunDialogs, RunMetrics, RunLayout, Screen):
    """Pass `live=` (a LiveRun, started here in a worker) or `player=` (a ReplayPlayer)."""

    DEFAULT_CSS = """
    RunScreen { layout: vertical; }
    RunScreen #body { height: 1fr; }
    RunScreen #main { width: 1fr; }
    RunScreen #charts { width: 1fr; display: none; }
    RunScreen.-wide #charts { width: 42%; border-left: vkey $panel-lighten-1; }
    RunScreen #sum-chart { height: 1fr; }
    RunScreen #decay-plot { height: 1fr; }
    RunScreen.-tall ReplyView { height: 9; }
    RunScreen Footer.-compact FooterLabel { margin: 0 1 0 0; }
    """

    SAMPLE = Binding.Group("Sample")
    STEP = Binding.Group("Step")
    SPEED = Binding.Group("Speed")
    BINDINGS = [
        Binding("space", "play_pause", "Pause/Play"),
        Binding("x", "stop", "Stop"),
        Binding("e", "first_error", "1st err"),
        Binding("[", "prev_sample", "Previous sample", key_display="[", group=SAMPLE),
        Binding("]", "next_sample", "Next sample", key_display="]", group=SAMPLE),
        Binding("comma", "step_back", "Step back", key_display=",", group=STEP),
        Binding("full_stop", "step_forward", "Step forward", key_display=".", group=STEP),
        Binding("minus", "slower", "Slower", key_display="-", group=SPEED),
        Binding("plus,equals_sign", "faster", "Faster", key_display="+", group=SPEED),
        Binding("g", "toggle_charts", "Charts"),
        Binding("i", "inject", "Inject"),
        Binding("F", "fork", "Fork", key_display="F"),
        # Secondary keys: not in the footer (fewer keys to compose and style before the first frame,
        # issue 6), all in the help screen (`?`) and working as before.
        Binding("I", "inject_dialog", "Inject…", key_display="I", show=False),
        Binding("s", "app.sessions", "Sessions", show=False),
        Binding("n", "app.new_run", "New", show=False),
        Binding("v", "toggle_values", "Key values", show=False),
        Binding("A", "toggle_answer", "Answer accuracy", key_display="A", show=False),
        Binding("f", "follow", "Follow newest", show=False),
        Binding("r", "show_request", "What was sent", show=False),
        Binding("P", "save_figure", "Save figure", key_display="P", show=False),
        # Priority: the focused turn table binds home too (its first row) and took it first. In a live run
        # check_action turns this one down and home goes on to the table.
        Binding("home", "restart", "Restart replay", show=False, priority=True),
        Binding("escape", "back", "Back", show=False),
    ]

    LIVE_ONLY = {"stop", "inject", "inject_dialog"}
    REPLAY_ONLY = {"step_back", "step_forward", "slower", "faster", "restart"}

    def __init__(self, *, live: LiveRun | None = None, player: ReplayPlayer | None = None,
                 name: str | None = None) -> None:
        if (live is None) == (player is None):
            raise ValueError("RunScreen needs exactly one of live= or player=")
        super().__init__(name=name)
        self.live = live
        self.player = player
        self.feed = EventFeed()
        self.model = RunModel(live=live is not None)
        self.decay: DecayData | None = None
        self.show_charts: bool | None = None     # None: the layout's default (beside the table when wide)
        self.run_worker_: Worker | None = None
        self._metrics_key: tuple | None = None
        self._metrics_busy = False
        self._force = True
        self._rest = False                       # skip the next flush tick (see BUSY_FLUSH_EVENTS)
        self._rebuilt = False                    # the model was reset: redraw everything
        self._moved = False                      # a replay jump: recompute metrics at once
        self.redraws = 0                         # flushes that changed something (for tests and the 20/s bar)
        self._first_frame = True                 # not shown yet: the metrics wait for it
        self._mounted_at = time.monotonic()
        self._scripted_announced = False         # --inject-at is announced once, not once a sample
        self._pinned_stream: StreamState | None = None   # the reply pane's turn when the cursor is off the newest
        if live is not None:
            live.subscribe(self.feed)

    # ---- composing and mounting ----------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        # Laid out for the terminal's size from the start: the classes set on the screen before its
        # children mount are styled once; set at mount, every widget was styled again (issue 6).
        width, height = self.app.size
        wide, charts_shown, main_shown = self._layout_classes(width, height) if width else (False, False, True)
        yield StatusBar(id="status")
        with Horizontal(id="body"):
            yield SampleList(id="samples")
            with Vertical(id="main") as main:
                yield TurnTable(id="turns")
                yield ReplyView(id="reply")
            with Vertical(id="charts") as charts:
                yield SumChart(id="sum-chart")
                yield DecayPlot(id="decay-plot")
        if width:
            charts.display = charts_shown
            main.display = main_shown
        if self.player is not None:
            yield ReplayControls(id="replay-controls")
        yield QuickFooter(compact=bool(width) and not wide, show_command_palette=wide)

    def on_mount(self) -> None:
        self.table = self.query_one(TurnTable)
        self.samples_list = self.query_one(SampleList)
        self.reply = self.query_one(ReplyView)
        self.sum_chart = self.query_one(SumChart)
        self.decay_plot = self.query_one(DecayPlot)
        self.status_bar = self.query_one(StatusBar)
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._force_redraw())
        self._apply_layout()
        if self.live is not None:
            self.model.record_loader = self._record_loader()
            if self.live.resumed:
                self._preload_resumed()
            if self.live.server is not None and not self.live.resumed:
                self.model.config = self.live.config.to_dict()
                self.model.message = "starting the local model server…"
                self.notify(f"starting the local model server ({self.live.config.model}); the first turn "
                            f"follows when it answers", title="local model", timeout=6)
            notice = self.live.config.prefix_cache_notice()
            if notice:
                self.notify(notice, title="prompt cache", timeout=8, markup=False)
            self.run_worker_ = self.run_worker(self.live.drive, name="run", group="run", exclusive=True,
                                               exit_on_error=False, thread=True,
                                               description=f"run {self.live.session_id}")
        else:
            assert self.player is not None
            self._rebuild(self.player.replay.seek(self.player.position))
        self.set_interval(FREEZE_EVERY_S, HeapFreezer().tick, name="gc-freeze")   # its frozen garbage freed too
        self.set_interval(1 / FLUSH_HZ, self.flush, name="flush")
        self.set_interval(1 / METRICS_HZ, self.refresh_metrics, name="metrics")
        self.table.focus()
        self.flush()
        self._mounted_at = time.monotonic()

    def _record_loader(self) -> RecordLoader | None:
        """Reads the live run's older turns back from its store, so the model keeps only the newest ones in
        full (issue 26). None (every record kept): no store to read, or a step rule other than the default,
        whose turn accuracy the metrics build from every record twice a second."""
        from lhe_tui.core.step_rules import DEFAULT_STEP_RULE
        from lhe_tui.store.queries import load_turn_range

        db = getattr(self.app, "db", None)
        live = self.live
        if db is None or live is None or getattr(live.config, "step_rule", DEFAULT_STEP_RULE) != DEFAULT_STEP_RULE:
            return None
        session_id = live.session_id
        return lambda sample, first, last: load_turn_range(db, session_id, sample, first, last)

    def _preload_resumed(self) -> None:
        from lhe_tui.store.queries import load_turns

        db = self.app.db  # type: ignore[attr-defined]
        records = load_turns(db, self.live.session_id)  # type: ignore[union-attr]
        row = db.execute("SELECT wall_time_s FROM sessions WHERE id = ?", [self.live.session_id]).fetchone()  # type: ignore[union-attr]
        self.model.preload(records, wall_time_s=row[0] if row else None)

    def on_screen_resume(self) -> None:
        self._force_redraw()

    def _force_redraw(self) -> None:
        self._force = True
        if self.is_mounted:
            self.call_later(self.flush)

    # ---- the flush -----------------------------------------------------------------------------------
    @reads_store
    def flush(self) -> None:
        """Drain the buffer into the model and update what is visible (called ~10 times a second)."""
        if self.player is not None:
            for event in self.player.tick(time.monotonic()):
                self.feed.push(event)
        elif self._rest and not self._force:
            self._rest = False     # a busy live run: every other tick rests (the events wait in the feed)
            return
        events = self.feed.drain(MAX_EVENTS_PER_FLUSH)
        self._rest = self.live is not None and len(events) >= BUSY_FLUSH_EVENTS
        self._apply(events)
        if not self.is_current:
            return
        rebuilt, self._rebuilt = self._rebuilt, False
        moved, self._moved = self._moved, False
        force, self._force = self._force or rebuilt, False
        if rebuilt or moved:
            self.refresh_metrics()   # a jump should not wait for the next metrics tick
        if events or force or moved:
            self.redraws += 1
        self.render_visible(force=force)

    def _apply(self, events: list[Event]) -> None:
        injected: list[Injected] = []
        for event in events:
            self.model.apply(event)
            if isinstance(event, Injected) and self.live is not None:
                injected.append(event)
            elif isinstance(event, RunFinished) and self.live is not None:
                self._on_run_finished(event)
        if injected:
            self._announce(injected)

    def _rebuild(self, events: list[Event]) -> None:
        """Reset the model and apply `events` (a replay seek)."""
        watched = self.model.watched
        self.model.reset()
        self.model.apply_all(events)
        if watched >= len(self.model.samples):
            watched = 0
        self.model.watch(watched)
        self._rebuilt = True

    def render_visible(self, *, force: bool = False) -> None:
        model = self.model
        watched = model.sample(model.watched)
        self.status_bar.sync(model, self.decay.summary if self.decay else None, self._source_info())
        if shown(self.samples_list):
            self.samples_list.sync(model.samples, model.watched, force=force)
        if shown(self.table):
            rule_changed = self.table.step_rule != model.step_rule
            self.table.step_rule = model.step_rule
            self.table.sync(watched, force=force or rule_changed)
        if shown(self.reply):
            self.reply.sync(self._reply_stream(watched), force=force)
        if shown(self.sum_chart):
            self.sum_chart.sync(watched, force=force, fork_turn=model.fork_turn)
        if self.player is not None:
            self.query_one(ReplayControls).sync(self.player)
        if shown(self.decay_plot):
            self.decay_plot.sync(self.decay, model, force=force)

    def _reply_stream(self, state: SampleState | None) -> StreamState:
        """What the reply pane shows: the newest turn (streaming in) while the table follows it, else the
        turn under the table's cursor (`f` follows again)."""
        record = None if self.table.following or state is None else self.table.cursor_record()
        if record is None:
            return self.model.stream
        pinned = self._pinned_stream
        if pinned is None or pinned.record is not record:
            pinned = self._pinned_stream = StreamState(sample=record.sample, turn=record.turn, keys=record.keys,
                                                       record=record)
        return pinned

    def _source_info(self) -> SourceInfo:
        if self.player is None:
            return SourceInfo(live=True, elapsed=self.model.elapsed())
        player = self.player
        replay = player.replay
        state = ("▶ " if player.playing else "■ " if replay.at_end else "‖ ") + speed_label(player.speed)
        elapsed = replay.times[replay.position - 1] if replay.position else 0.0
        return SourceInfo(live=False, replay_state=state, elapsed=elapsed,
                          paused=not player.playing and not replay.at_end)

    # ---- workers -------------------------------------------------------------------------------------
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group == "metrics":
            self.metrics_worker_changed(worker, event.state)
        elif worker.group == "run" and event.state == WorkerState.SUCCESS and worker.result == NOT_STARTED:
            self.model.status = NOT_STARTED
            self.model.message = "stopped before the local model server answered; nothing was stored"
            self._force_redraw()
        elif worker.group == "run" and event.state == WorkerState.ERROR:
            self.model.status = "failed"
            self.model.message = f"{type(worker.error).__name__}: {worker.error}"
            self.notify(f"the run stopped with an error: {worker.error}", title="run failed", severity="error",
                        timeout=10)
            self._force_redraw()

    def _on_run_finished(self, event: RunFinished) -> None:
        sid = self.model.session_id
        self.refresh_bindings()   # F (fork) is enabled now
        if self.live is not None and self.live.kind == "probe" and self.is_current:
            from lhe_tui.ui.screens.probe import ProbeScreen

            self.app.push_screen(ProbeScreen(self.live.session_id))   # the probe's point: its results table
        if event.status == "finished":
            self.notify(f"session {sid} finished and saved; replay it from the sessions screen (s)",
                        title="run finished")
        elif event.status == "interrupted":
            self.notify(f"session {sid} stopped; the turns so far are saved and replayable",
                        title="run stopped", severity="warning")
        else:
            self.notify(f"session {sid} ended {event.status.replace('_', ' ')}: {event.message}",
                        title="run ended", severity="error", timeout=10)

    # ---- actions -------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "fork" and self.live is not None and self.model.running:
            return False  # not in the footer while the run goes on (the keys it has are many); on_key says why
        if action in self.LIVE_ONLY and self.live is None:
            return False
        if action in self.REPLAY_ONLY and self.player is None:
            return False
        if action == "back" and len(self.app.screen_stack) <= 2:
            return False
        return True

    def watch_sample(self, index: int) -> None:
        if not self.model.samples:
            return
        index %= len(self.model.samples)
        self.feed.selected = index
        if self.live is not None:
            self.live.select(index)      # the run process sends this sample's token deltas only
        self.model.watch(index)
        self.samples_list.show_watched(index)
        self.flush()

    @on(SampleList.Watch)
    def _on_watch(self, message: SampleList.Watch) -> None:
        if message.index != self.model.watched:
            self.watch_sample(message.index)

    def action_prev_sample(self) -> None:
        self.watch_sample(self.model.watched - 1)

    def action_next_sample(self) -> None:
        self.watch_sample(self.model.watched + 1)

    REPLAY_REFUSALS = {"i": "inject", "I": "inject", "x": "stop"}

    def on_key(self, event: events.Key) -> None:
        """Live-only keys in a replay say why they do nothing (their bindings are off there); so does `F` while
        the live run goes on."""
        if event.character == "F" and self.live is not None and self.model.running:
            event.stop()
            event.prevent_default()
            self.notify("the run is still going: a running run cannot be forked; fork it once it has ended "
                        "(x stops it, or wait)", title="fork", severity="warning", markup=False)
            return
        what = self.REPLAY_REFUSALS.get(event.character or "") if self.player is not None else None
        if what is None:
            return
        event.stop()
        event.prevent_default()
        if what == "inject":
            self.notify("a replay shows what was stored and cannot change it: inject (i, I) during a live run "
                        "(n starts one; R in the sessions screen resumes an unfinished one)",
                        title="replay", severity="warning", markup=False)
        else:
            self.notify("a replay has no run to stop: space pauses it, q quits", title="replay",
                        severity="warning", markup=False)

    def action_follow(self) -> None:
        self.table.go_to_newest()

    def action_toggle_answer(self) -> None:
        """`A`: answer accuracy (answer = gold, secondary) on the decay chart, or not."""
        shown_now = self.decay_plot.toggle_answer()
        self.notify("decay chart: answer accuracy shown" if shown_now else "decay chart: task and turn accuracy",
                    timeout=2)

    def action_toggle_values(self) -> None:
        shown_now = self.table.toggle_values()
        self.notify("keys shown with their values" if shown_now else "keys shown without values", timeout=2)

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()

    # ---- teardown ------------------------------------------------------------------------------------
    def on_unmount(self) -> None:
        """Leaving the app (or this screen) mid-run stops the run: the session ends interrupted."""
        gc.unfreeze()   # what was frozen goes back to the collector (any cycles in it are freed now)
        if self.live is not None and not self.live.finished:
            self.live.stop()
            self.live.wait(timeout=10)
