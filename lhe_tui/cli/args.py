"""Command-line parser: one-line errors, never a usage dump and a traceback."""

from __future__ import annotations

import argparse
from pathlib import Path

from lhe_tui.cli.help_text import ID_HELP, THEME_HELP
from lhe_tui.runs.run_flags import (OneLineParser, add_budget_options, add_db, add_run_options, add_step_rule, int64,
                                    positive_float, positive_int, probability)


def build_parser() -> OneLineParser:
    from lhe_tui import __version__

    parser = OneLineParser(prog="lhe-tui", description="Watch, steer and replay long-horizon execution runs of LLMs. "
                           "With no command: the sessions list, or a simulated demo run when the store is empty.")
    parser.add_argument("--version", action="version", version=f"lhe-tui {__version__}")
    parser.add_argument("--theme", default=None, help=THEME_HELP)
    add_db(parser, top=True)
    sub = parser.add_subparsers(dest="command", parser_class=OneLineParser)
    demo = sub.add_parser("demo", help="watch a simulated run (8 samples x 200 turns, thinking mode; stored like any run)")
    add_db(demo)
    demo.add_argument("--theme", default=argparse.SUPPRESS, help=THEME_HELP)
    run = sub.add_parser("run", help="run a session (TUI, or --headless)")
    add_run_options(run)
    add_db(run)
    run.add_argument("--headless", action="store_true", help="no TUI: a progress bar, then a summary")
    run.add_argument("--arm", action="append", default=[], metavar="NAME:FLAGS",
                     help="run arms side by side over the same task (dictionary and keys), each its own session in "
                          "one group: NAME, a colon, then run flags over the run's own (not task flags), e.g. "
                          "--arm plain: --arm inj:--inject-at=20:5; repeat for each arm (two or more)")
    run.add_argument("--estimate", action="store_true",
                     help="print the run's expected input/output tokens and cost (with and without prompt caching) "
                          "and exit: nothing is run or stored")
    run.add_argument("--estimate-reply-tokens", type=int64, default=None, metavar="N",
                     help="--estimate: output tokens a reply (default per mode: direct 8, cot 150, thinking 1000)")
    run.add_argument("--assume-p", type=probability, default=None, metavar="P",
                     help="--estimate with --until: the per-step accuracy the expected saving assumes (default: "
                          "the p before the first error of the newest stored run of the same model)")
    run.add_argument("--estimate-latency", type=positive_float, default=None, metavar="SECONDS",
                     help="--estimate: seconds a reply takes, for the run's duration (default: not counted; the "
                          "duration is then a lower bound from --rpm / --tpm alone)")
    run.add_argument("--theme", default=argparse.SUPPRESS, help=THEME_HELP)
    ls = sub.add_parser("sessions", help="list stored sessions")
    add_db(ls)
    show = sub.add_parser("show", help="one session's per-turn accuracy table")
    show.add_argument("session_id", help=ID_HELP)
    show.add_argument("--every", type=int64, default=None, metavar="N",
                      help="one row every N turns (default: about 50 rows; the first and last turns always)")
    show.add_argument("--all", action="store_true", help="every turn (same as --every 1)")
    add_step_rule(show)
    show.add_argument("--turn", type=int, default=None, metavar="T",
                      help="one turn of one sample (--sample, default 0): its keys, answer against gold, reply, "
                           "reasoning, retries and latency")
    show.add_argument("--sample", type=int, default=0, metavar="S", help="--turn: the sample (0-based)")
    show.add_argument("--request", action="store_true",
                      help="--turn: what the model was sent at that turn (system prompt, history as sent with "
                           "injected values, window and placeholders marked, the user message, the options)")
    show.add_argument("--json", action="store_true", help="--turn: as JSON")
    add_db(show)
    export = sub.add_parser("export", help="write a session's turns as JSON or CSV, or its per-turn curves (--curves)")
    export.add_argument("session_id", help=ID_HELP)
    export.add_argument("--format", choices=("json", "csv", "curves"), default="json",
                        help="json (default): session, config, prompt, summary, curves, samples, turns and events; "
                             "csv: one row a turn (with session_id; a probe's with probe_rate); "
                             "curves: the same as --curves --format csv (kept for scripts)")
    export.add_argument("--curves", action="store_true",
                        help="the per-turn curves instead: turn, steps (turn*K), n samples counted, task, turn and "
                             "answer accuracy and their 95%% bootstrap bounds, as CSV or JSON (--format)")
    export.add_argument("-o", "--output", type=Path, default=None, help="file (default: standard output)")
    add_step_rule(export)
    add_db(export)
    replay = sub.add_parser("replay", help="replay a stored session in the TUI")
    replay.add_argument("session_id", help=ID_HELP)
    replay.add_argument("--theme", default=argparse.SUPPRESS, help=THEME_HELP)
    add_db(replay)
    probe = sub.add_parser("probe", help="target-turn probe: accuracy at turn T per history error rate")
    add_run_options(probe)
    add_db(probe)
    probe.add_argument("--target-turn", type=int64, required=True, help="the turn T the model is queried at")
    probe.add_argument("--rates", default="0,0.25,0.5,0.75,1", help="history error rates (default 0,0.25,0.5,0.75,1)")
    probe.add_argument("--headless", action="store_true", help="no TUI: a progress bar, then the results")
    probe.add_argument("--theme", default=argparse.SUPPRESS, help=THEME_HELP)
    compare = sub.add_parser("compare", help="compare sessions' accuracy curves; a group's arms (or two sessions "
                             "over the same keys) with paired bootstrap CIs of their difference")
    compare.add_argument("session_ids", nargs="+", metavar="session_id",
                         help=ID_HELP + "; or a group id (grp-…) to compare its arms")
    compare.add_argument("--at", default=None, help="turns to report accuracy at, e.g. 10,50,100")
    compare.add_argument("--arms", default=None, metavar="A,B",
                         help="a group's arms to compare (the first against each other; default: all, the first "
                              "given at the run against each other)")
    compare.add_argument("--tui", action="store_true", help="open the TUI's compare screen instead of printing")
    add_step_rule(compare)
    compare.add_argument("--theme", default=argparse.SUPPRESS, help=THEME_HELP)
    add_db(compare)
    plot = sub.add_parser("plot", help="write a publication figure of sessions (png, svg or pdf; needs the "
                                       "figures extra: matplotlib)")
    plot.add_argument("session_ids", nargs="+", metavar="session_id", help=ID_HELP + " A group id (grp-…) "
                      "draws its arms overlaid; a sweep id (swp-…) its figures (--kind, --by).")
    plot.add_argument("--kind", choices=("decay", "sum", "compare", "probe", "horizon", "k"), default=None,
                      help="decay: task and turn accuracy (answer accuracy dotted) with the task curve's 95%% band, p^t and H_0.5; sum: one "
                           "sample's model vs gold running sum; compare: sessions' task curves; probe: accuracy "
                           "at the target turn per error rate (default: probe for a probe session, compare for "
                           "several, else decay)")
    plot.add_argument("--sample", type=int64, default=0, metavar="N", help="--kind sum: the sample drawn")
    plot.add_argument("--by", default=None, metavar="AXIS",
                      help="a sweep (swp-…): the axis on the x axis (horizon) or the colours (decay); default model. "
                           "A sweep draws --kind horizon (H_0.5 with 95%% CIs per run, default), probe, decay or k "
                           "(H in steps against K); see docs/sweeps.md")
    add_step_rule(plot)
    plot.add_argument("--out", "-o", type=Path, required=True, metavar="FILE",
                      help="the figure file: .png, .svg or .pdf (vector)")
    plot.add_argument("--title", default=None, metavar="TEXT", help="the figure's title (default: what was run)")
    plot.add_argument("--label", action="append", default=[], metavar="ID=TEXT",
                      help="name a session (or a group's arm, by its session id) in the legend; repeatable "
                           "(default: what differs between the plotted sessions; a group's arms: their names)")
    add_db(plot)
    doctor = sub.add_parser("doctor", help="check a store's integrity; --recover writes what is readable to a new file")
    doctor.add_argument("--recover", type=Path, default=None, metavar="OUT",
                        help="write a recovered copy to OUT (a new file; the store itself is never changed)")
    add_db(doctor)
    resume = sub.add_parser("resume", help="continue an unfinished session from its last committed turns")
    resume.add_argument("session_id", help=ID_HELP + "; or a group id (grp-…): its unfinished arms together "
                        "(--headless)")
    resume.add_argument("--headless", action="store_true", help="no TUI: a progress bar, then a summary")
    add_budget_options(resume.add_argument_group("budget and rate limits (replace the stored ones)"))
    resume.add_argument("--theme", default=argparse.SUPPRESS, help=THEME_HELP)
    add_db(resume)
    add_web_commands(sub)
    from lhe_tui.cli.fork_cmd import add_fork_command

    add_fork_command(sub)
    add_sweep_command(sub)
    return parser


def add_web_commands(sub: argparse._SubParsersAction) -> None:
    """`datasette` and `serve`: the store and the TUI in a browser (optional extras; lhe_tui.cli.web)."""
    from lhe_tui.cli.web import DATASETTE_PORT, LOOPBACK, MAX_APPS, SERVE_PORT, TOKEN_ENV

    datasette = sub.add_parser("datasette", help="browse the store in Datasette (read-only; tables described, canned "
                               "queries: curves, first_errors, injections); needs the [datasette] extra")
    datasette.add_argument("--host", default=LOOPBACK, help="address to listen on (a non-loopback one is warned about)")
    datasette.add_argument("--port", type=int, default=DATASETTE_PORT, help="port to listen on")
    datasette.add_argument("--print-metadata", action="store_true",
                           help="print the Datasette metadata (JSON, keyed for --db) and exit, for "
                                "`datasette -i DB --metadata FILE` by hand")
    add_db(datasette)
    serve = sub.add_parser("serve", help="serve the TUI in a browser through textual-serve (one app per tab, on "
                           "the sessions list); needs the [serve] extra")
    serve.add_argument("--host", default=LOOPBACK, help="address to listen on (a non-loopback one is warned about)")
    serve.add_argument("--port", type=int, default=SERVE_PORT, help="port to listen on")
    serve.add_argument("--public-url", default=None, metavar="URL",
                       help="the URL browsers reach the server at, when not http://HOST:PORT (a proxy, 0.0.0.0); "
                            "a socket's Origin must be this address")
    serve.add_argument("--token", default=None, metavar="TOKEN",
                       help=f"the login in the printed URL (at least 16 URL-safe characters; default: ${TOKEN_ENV}, "
                            "else a new random one each start)")
    serve.add_argument("--max-apps", type=int, default=MAX_APPS, metavar="N",
                       help="app processes (browser tabs) at once; one more is refused")
    serve.add_argument("--base-url", action="append", default=[], metavar="URL", dest="base_urls",
                       help="a base URL served apps may run against (repeat for more; besides it only the "
                            "providers' own and $OPENAI_BASE_URL / $ANTHROPIC_BASE_URL)")
    serve.add_argument("--allow-any-base-url", action="store_true",
                       help="let served apps run against any base URL (sending the server's API keys there)")
    serve.add_argument("--theme", default=argparse.SUPPRESS, help=THEME_HELP)
    add_db(serve)


def add_sweep_command(sub: argparse._SubParsersAction) -> None:
    sweep = sub.add_parser("sweep", help="run a sweep file (TOML: base run flags and axes; see docs/sweeps.md): "
                                         "the board, or --headless")
    sweep.add_argument("file", type=Path, help="the sweep file (.toml), e.g. sweeps/sim-offline.toml")
    sweep.add_argument("--estimate", action="store_true",
                       help="print each run's tokens, cost (with and without caching) and least duration under the "
                            "rate limits, and the total, then exit: nothing is run or stored")
    sweep.add_argument("--headless", action="store_true", help="no TUI: a table refreshing in place, then the final one")
    sweep.add_argument("--max-cost", type=positive_float, default=None, metavar="USD",
                       help="one budget for the whole sweep: no run starts, and running ones stop, before a request "
                            "would take the sweep's cost past USD (over the file's max_cost)")
    sweep.add_argument("--parallel", type=positive_int, default=None, metavar="N",
                       help="runs at once (default: the file's parallel, else 4)")
    sweep.add_argument("--theme", default=argparse.SUPPRESS, help=THEME_HELP)
    add_db(sweep)
