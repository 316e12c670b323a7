"""`?`: what the screens show and every key."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# lhe-tui

Watch an LLM lose the thread on the **dict-sum** task (arXiv 2509.09677): each turn the model gets
K keys of a dictionary and must answer the running sum in `<answer></answer>`. The `sim` provider is
a simulated model (no key, no network), labelled *simulated* everywhere.

## Run view (live and replay are the same screen)

- **status bar**: provider/model, mode, K, LIVE or REPLAY and the state; the watched sample's turn
  x/N, samples done (stopped or failed ones in brackets), the mean turn accuracy (`turn acc`) and p
  before the first error (`p<1st err`: 1 − first errors / turns at risk, the p of the theory), H_0.5 so
  far (theory ln 0.5 / ln p), tokens in/out, time (it stops while paused; a resumed run goes on from its
  totals). For K > 1 per turn (`/t`) and per step (`/st`, derived: p^(1/K)).
- **samples** (left): `▶` running, `●` finished, `■` stopped, `!` failed; `✗27` = first error at turn 27.
- **turn table**: turn, keys (values with `v`), the model's answer, the gold running sum, the
  difference, ok / wrong / format (answer accuracy: answer = gold), `upd` (turn accuracy: the update
  is right, answer = the previous answer it saw + this turn's values, under the run's step rule),
  tokens out, latency. The **first error** row is highlighted and marked `◆`. The table
  follows the newest turn until you move the cursor away (`f` follows again). `⚡` marks an answer
  replaced by an injected one in the history the model sees (the value after it is what the model
  sees), `↻2` a turn that needed two retries. Both charts mark injected turns. In a **fork** the
  turns inherited from its parent are dimmed, both charts mark the fork point, and the status bar
  says `fork of <parent> @T (edit)`.
- **reply**: the watched sample's reply streaming in; reasoning dimmed, the `<answer>` highlighted, its
  latency and retries. With the cursor on an earlier turn it shows that turn's reply (`f`: the newest
  again); `r` opens what the model was sent at that turn (the history as sent, injected values marked).
- **charts** (beside the table on wide terminals, `g` on narrow ones): the running sum of the model
  against gold with the first error marked, and the accuracy decay across samples: the paper's task
  and turn accuracy (`A` adds answer accuracy, answer = gold), the task curve's 95% bootstrap band,
  the theory curve p^t (p before the first error), H_0.5 marked.

## Arms side by side (`lhe-tui run … --arm NAME:FLAGS --arm …`, `lhe-tui replay grp-…`)

One run per arm over the same keys, side by side. A **status line per arm** (in the arm's colour):
state, the watched sample's turn and first error, task accuracy, mean turn accuracy, H_0.5, injections `⚡`.
The **table** shows the watched sample's turns of every arm aligned by turn: an arm's first error is
highlighted (`1st err`), `≠` marks a turn where the arms' answers differ. The **chart** overlays the
arms' task accuracy (lines) and turn accuracy (dots), with a faint line at 0.5. `tab` / `shift+tab`
move the arm focus (`▶`); `a` makes the keys act on every arm. `space` pauses or resumes, `x` stops,
`i` / `I` inject into the watched sample, on the focused arm or all. `[` `]` switch the sample, `e`
jumps to the focused arm's first error. A group replay plays the arms on one clock (each at its
recorded pace); `,` `.` step one turn of the watched sample in every arm; speed and restart act on all.
`F` (a group replay, or once every arm has ended) forks every arm at the cursor's turn, edited or not, and
runs the new group here; `lhe-tui resume grp-…` brings back a group's unfinished arms.

## Compare (mark sessions with `space`, then `c`)

The marked runs' **task accuracy** (lines) and **turn accuracy** (dots) over turns in one plot, one
colour per session, with a faint line at 0.5 (a task curve crosses it at that session's H_0.5). The
table is what `lhe-tui compare ID ID …` prints: H_0.5, the median first error, p before the first error
and turn/task accuracy at the turns typed above it. `lhe-tui compare ID ID --tui` opens this screen.

## Probe results

A target-turn probe (`lhe-tui probe --target-turn T …`, paper Fig. 5) asks the model at turn T only,
after a synthetic history with error rate r. Its view plots answer accuracy at T against r with the 95%
bootstrap CI as bars, over the table `lhe-tui show` prints. It opens when a live probe ends and with
Enter on a probe session; marking several probes and pressing `c` overlays them.

## Keys

| key | run view |
|-----|----------|
| `space` | pause / resume the run; play / pause a replay |
| `x` | stop the run (the session ends *interrupted* and stays replayable) |
| `e` | jump to the first error of the watched sample (replay: seek to it, back or forward) |
| `r` | what the model was sent at the cursor's turn (`lhe-tui show ID --turn T --sample S --request`) |
| `[` `]` | previous / next sample (or pick one in the list) |
| `g` | show / hide the charts |
| `v` | show the keys' values |
| `A` | decay chart: add answer accuracy (answer = gold) to task and turn accuracy, or take it away |
| `f` | follow the newest turn |
| `P` | write the session's figure (accuracy decay; a probe's results) as SVG to `figures/` beside the store (needs the `figures` extra) |
| `i` | inject a random wrong answer (±1..10) into the watched sample's history (live) |
| `I` | inject with a typed offset or value, into the watched sample or every sample (live) |
| `F` | fork the session at the cursor's turn (replay, or a live run that has ended): edit the answer there or not, one sample or all, same model or another; the fork runs live in this view |
| `,` `.` | replay: one turn of the watched sample back / forward |
| `-` `+` | replay: slower / faster (1x = recorded pace … 50x, instant) |
| `home` | replay: start over |

| key | sessions |
|-----|----------|
| `enter` | replay the session (a probe opens its results) |
| `space` | mark / unmark the session for comparison (`●`) |
| `c` | compare the marked sessions |
| `R` | resume an unfinished run (interrupted, crashed or failed samples) where it stopped |
| `g` | replay the group of the highlighted arm, its arms side by side |
| `r` | refresh the list |

| key | compare / probe |
|-----|-----------------|
| `t` | compare: plot task accuracy, turn accuracy or both |
| `a` | compare: edit the turns the table reports (`10,20,50`, Enter applies) |
| `r` | compare: reload the curves; probe: replay the probe's turns |
| `enter` | compare: replay the highlighted session |

| key | anywhere |
|-----|----------|
| `n` | new run form |
| `s` | stored sessions (Enter replays) |
| `ctrl+p` | command palette (themes: "Change theme") |
| `?` | this help |
| `escape` | back |
| `q` | quit (a live run is stopped and saved) |

Themes are files in `themes/` (or `~/.config/lhe-tui/themes`); see `themes/README.md`.
"""


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen VerticalScroll { width: 100; max-width: 100%; height: 90%; background: $surface;
                                border: round $primary; border-subtitle-color: $text-muted; padding: 0 1; }
    """

    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_subtitle = "↑↓ scroll · esc close"
            yield Markdown(HELP)

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).focus()

    def action_close(self) -> None:
        self.dismiss(None)
