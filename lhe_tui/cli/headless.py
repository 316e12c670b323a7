"""Headless display: a progress bar fed by the same events the TUI consumes, then a summary."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from lhe_tui.core.events import (EndpointsChanged, Event, RetryScheduled, RunFinished, SampleFinished, Throttled,
                                 TurnFinished, UsageIgnored, endpoints_line)
from lhe_tui.core.prices import PriceTable, TokenTotals, load_prices
from lhe_tui.reports.fitted_table import print_table
from lhe_tui.reports.report import group_summary_table, summary_rows, summary_table
from lhe_tui.runs.session import PreparedRun
from lhe_tui.store.queries import (first_errors_after, has_answered_turn, live_status, load_session, session_step_rule,
                                   session_token_totals)
from lhe_tui.store.summary import session_summary

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlite_utils import Database

    from lhe_tui.metrics import RunSummary
    from lhe_tui.providers.local_server import LocalModelServer
    from lhe_tui.runs.arms import PreparedGroup
    from lhe_tui.store.tally import RunTally


HOLD_NOTICE_S = 5.0
"""A rate-limit hold this long or longer (--rpm, --tpm) is said: on the progress line while it lasts, and once
on stderr as it starts (a log shows no progress line)."""


class HoldColumn(ProgressColumn):
    """The progress line's note while the rate limiter holds the run back: `held by --tpm: 42s`."""

    def render(self, task) -> Text:
        until, limit = task.fields.get("held_until", 0.0), task.fields.get("held_by", "")
        left = until - time.monotonic()
        return Text(f"held by --{limit}: {left:.0f}s" if limit and left > 0.5 else "", style="yellow")


class ProgressDisplay:
    """Subscriber: advances a bar per finished turn; notes retries and sample failures on stderr."""

    def __init__(self, total: int, label: str, console: Console, *, progress: Progress | None = None,
                 prefix: str = "") -> None:
        """`progress`: a bar among others (the arms of a group share one display; then the caller stops
        it); `prefix`: what the notes on stderr start with (the arm's name)."""
        self.console = console
        self.owns_progress = progress is None
        self.progress = progress or new_progress(console)
        self.task_id = self.progress.add_task(label, total=total, wrong=0, held_until=0.0, held_by="", endpoints="")
        self._held_until = 0.0         # time.monotonic() at which the latest rate-limit hold said ends
        self.wrong = 0
        self._states: dict[str, str] = {}   # several servers: each one's last state, to note changes
        self.prefix = prefix
        self._said: set[object] = set()   # a failure shared by every sample (a dead server) is said once
        # Sample failures before any turn finished: said once one does; if none ever does (a wrong key, model
        # or address), the run's one error line says it all.
        self._held: list[SampleFinished] | None = []

    def __call__(self, event: Event) -> None:
        if isinstance(event, TurnFinished):
            self.wrong += not event.record.correct
            self.progress.update(self.task_id, advance=1, wrong=self.wrong)
            if self._held is not None:
                held, self._held = self._held, None
                for failure in held:
                    self._say_failure(failure)
        elif isinstance(event, RetryScheduled):
            self.progress.console.print(f"{self.prefix}retry {event.attempt} for sample {event.sample} turn {event.turn} "
                                        f"in {event.delay_s:.1f}s: {event.message}", style="yellow")
        elif isinstance(event, Throttled) and event.delay_s >= HOLD_NOTICE_S:
            now = time.monotonic()
            if now >= self._held_until:    # a new hold (concurrent samples held together are said once)
                self.progress.console.print(f"{self.prefix}held by the rate limiter (--{event.limit}): the next "
                                            f"request goes in {event.delay_s:.0f}s", style="yellow")
            self._held_until = max(self._held_until, now + event.delay_s)
            self.progress.update(self.task_id, held_until=self._held_until, held_by=event.limit)
        elif isinstance(event, UsageIgnored) and UsageIgnored not in self._said:   # said once a run; stored per turn
            self._said.add(UsageIgnored)
            self.progress.console.print(f"{self.prefix}sample {event.sample} turn {event.turn}: {event.message} "
                                        "(and so on for any later turn; `lhe-tui export` lists them as "
                                        "usage_ignored events)", style="yellow")
        elif isinstance(event, EndpointsChanged):
            self._endpoints(event)
        elif isinstance(event, SampleFinished) and event.status == "failed":
            if self._held is not None:
                self._held.append(event)
            else:
                self._say_failure(event)
        elif isinstance(event, RunFinished):
            if self._held is not None:   # not one turn finished: no bar left behind, the error line says it
                self.progress.remove_task(self.task_id)
            if self.owns_progress:
                self.progress.stop()

    def _endpoints(self, event: EndpointsChanged) -> None:
        """Several servers: each one's load or state on the progress line, and a note when one goes down or up."""
        self.progress.update(self.task_id, endpoints=endpoints_line(event.endpoints))
        for number, endpoint in enumerate(event.endpoints, 1):
            was = self._states.get(endpoint.url, "up")
            self._states[endpoint.url] = endpoint.state
            if (endpoint.state == "up") != (was == "up"):
                news = "up again" if endpoint.state == "up" else "down: its samples move to the others"
                self.progress.console.print(f"{self.prefix}server {number} ({endpoint.url}) {news}",
                                            style="green" if endpoint.state == "up" else "yellow")

    def _say_failure(self, event: SampleFinished) -> None:
        if event.message not in self._said:
            self._said.add(event.message)
            self.progress.console.print(f"{self.prefix}sample {event.sample} stopped: {event.message}", style="red")


def new_progress(console: Console) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("errors: {task.fields[wrong]}"), TimeElapsedColumn(), HoldColumn(),
                    TextColumn("{task.fields[endpoints]}"), console=console, transient=False)


def session_tokens(db: Database, session_id: str) -> TokenTotals:
    """The session's summed token counts (each None, "not reported", when no turn reported it)."""
    return session_token_totals(db, session_id)


def summary_inputs(db: Database, session_id: str, *, step_rule: str | None = None,
                   tally: RunTally | None = None) -> tuple[dict, RunSummary, TokenTotals]:
    """What a session's summary is made of: its row (live status, a fork's first errors after its turn, the
    step rule), its metrics and its token sums. `step_rule`: score turn accuracy under this rule (None: the
    session's). `tally`: the run's writer's (lhe_tui.store.tally), read instead of every turn after a
    run."""
    session = load_session(db, session_id)
    session["status"] = live_status(db, session_id, session.get("status"))
    if session.get("fork_turn") is not None:
        session["first_errors_after_fork"] = first_errors_after(db, session_id, session["fork_turn"])
    session["step_rule"] = step_rule or session_step_rule(db, session_id)
    tokens = tally.token_totals() if tally is not None else session_tokens(db, session_id)
    return session, session_summary(db, session_id, step_rule=step_rule, tally=tally), tokens


def print_summary(db: Database, session_id: str, prices: PriceTable | None = None, *,
                  step_rule: str | None = None, tally: RunTally | None = None) -> None:
    print_table(summary_table(*summary_inputs(db, session_id, step_rule=step_rule, tally=tally),
                              prices=prices if prices is not None else load_prices()))


def print_group_summary(db: Database, group_id: str, arms: list[tuple[str, str]], *,
                        step_rule: str | None = None) -> None:
    """`show grp-…`: the arms' summaries side by side, a column per arm."""
    prices = load_prices()
    columns = [(name, summary_rows(*summary_inputs(db, sid, step_rule=step_rule), prices=prices))
               for name, sid in arms]
    print_table(group_summary_table(group_id, columns))


async def _run(prepared: PreparedRun, server: LocalModelServer | None = None) -> str:
    loop = asyncio.get_running_loop()
    runner = prepared.runner
    if server is not None:  # our local model server dying ends the run at once, failed, with its cause
        server.watch(lambda message: loop.call_soon_threadsafe(runner.fail, message))
    stop_on_signals(runner.stop)
    return await prepared.run()


def stop_on_signals(stop: Callable[[], None]) -> None:
    """Ctrl-C or a SIGTERM stops the run cleanly (what is stored stays, the session is marked stopped)
    rather than killing it mid-write. Where the loop cannot take signal handlers they are left alone."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop)
        except (NotImplementedError, RuntimeError):
            pass


def drive_with_progress(prepared: PreparedRun, total_turns: int, label: str,
                        server: LocalModelServer | None = None, console: Console | None = None) -> str:
    """Run to the end with a progress bar on stderr (or on `console`); Ctrl+C stops the run cleanly. Returns
    the run status. `server`: our running local model server, watched for a death."""
    display = ProgressDisplay(total_turns, label, console or Console(stderr=True))
    prepared.bus.subscribe(display)
    display.progress.start()
    try:
        return asyncio.run(_run(prepared, server))
    finally:
        display.progress.stop()


def exit_code(db: Database, prepared: PreparedRun, status: str, arm: str | None = None) -> int:
    """`arm`: the arm of a group the run is (its lines name it)."""
    who = f"arm {arm}: " if arm else ""
    failure = prepared.writer.failure if prepared.writer is not None else None
    if failure is not None:      # the store stopped taking rows: said once, in one line
        print(f"lhe-tui: error: {who}{failure}", file=sys.stderr)
        return failure.exit_code
    if status == "failed":
        message = load_session(db, prepared.session_id).get("message") or "every sample failed"
        print(f"lhe-tui: error: {who}{message}", file=sys.stderr)
        return 1
    if status == "interrupted":
        message = load_session(db, prepared.session_id).get("message")
        if message:      # a budget reached (--max-cost, --max-tokens-total): why, and how to go on
            print(f"lhe-tui: stopped: {who}{message}", file=sys.stderr)
        return 130
    return 0


def run_headless(prepared: PreparedRun, db: Database, total_turns: int,
                 server: LocalModelServer | None = None) -> int:
    notice = prepared.runner.config.prefix_cache_notice()
    if notice:
        print(f"lhe-tui: {notice}", file=sys.stderr)
    status = drive_with_progress(prepared, total_turns, prepared.provider.label, server)
    # No summary table for a run with no answered turn (every request failed): its one error line says why.
    writer = prepared.writer
    if writer is None or writer.failure is None:
        tally = writer.tally if writer is not None else None
        answered = tally.answered if tally is not None else has_answered_turn(db, prepared.session_id)
        if answered:
            print_summary(db, prepared.session_id, tally=tally)
    return exit_code(db, prepared, status)


def run_probe_headless(prepared: PreparedRun, db: Database, server: LocalModelServer | None = None) -> int:
    from lhe_tui.reports.probe_tables import probe_report

    status = drive_with_progress(prepared, len(prepared.runner.task.samples), prepared.provider.label + " probe",
                                 server)
    print(f"probe session {prepared.session_id} ({prepared.provider.label}), target turn "
          f"{prepared.runner.task.turns}")
    probe_report(db, prepared.session_id)
    return exit_code(db, prepared, status)


# ---------------------------------------------------------------------------- arms side by side (issue 15)


async def _run_group(group: PreparedGroup, server: LocalModelServer | None = None) -> dict[str, str]:
    loop = asyncio.get_running_loop()
    if server is not None:  # the arms' shared local model server dying ends every arm, failed
        server.watch(lambda message: loop.call_soon_threadsafe(group.fail, message))
    stop_on_signals(group.stop)
    return await group.run()


def group_exit_code(db: Database, group: PreparedGroup, statuses: dict[str, str]) -> int:
    """The worst arm's exit code (a store failure, then a failed arm, then an interrupted one), each said once."""
    codes = [exit_code(db, run, statuses.get(name, "failed"), name) for name, run in zip(group.names, group.runs)]
    for code in (1, 2, 130):
        if code in codes:
            return code
    return max(codes, default=0)


def run_group_headless(group: PreparedGroup, db: Database, totals: list[int],
                       server: LocalModelServer | None = None, *, at: list[int] | None = None) -> int:
    """Run the group's arms concurrently under one progress display (a bar per arm); Ctrl+C stops every arm,
    keeping their turns. Then a summary per arm and the paired difference of each arm from the first."""
    console = Console(stderr=True)
    progress = new_progress(console)
    for name, run, total in zip(group.names, group.runs, totals):
        run.bus.subscribe(ProgressDisplay(total, f"{name} ({run.provider.label})", console, progress=progress,
                                          prefix=f"{name}: "))
        notice = run.runner.config.prefix_cache_notice()
        if notice:
            print(f"lhe-tui: {name}: {notice}", file=sys.stderr)
    print(f"lhe-tui: group {group.group_id}: arms {', '.join(group.names)} over the same "
          f"{len(group.runs[0].runner.task.samples)} samples", file=sys.stderr)
    progress.start()
    try:
        statuses = asyncio.run(_run_group(group, server))
    finally:
        progress.stop()
    failed_store = any(run.writer is not None and run.writer.failure is not None for run in group.runs)
    if not failed_store:
        for name, run in zip(group.names, group.runs):
            print(f"arm {name}")
            print_summary(db, run.session_id, tally=run.writer.tally if run.writer is not None else None)
        from lhe_tui.reports.compare_tables import print_group_comparison
        from lhe_tui.store.groups import group_arms

        arms = group_arms(db, group.group_id)     # every arm, those a group resume did not run included
        if len(arms) > 1:
            print_group_comparison(db, arms, at)
    return group_exit_code(db, group, statuses)
