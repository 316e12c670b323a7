"""Publication figures of stored sessions: `lhe-tui plot` and the run view's `P` key.

Four kinds: `decay` (task and turn accuracy over turns, answer accuracy dotted, the task curve's 95% bootstrap
band, the theory curve p^t from p before the first error, H_0.5 marked; for K > 1 a second x axis in steps),
`compare` (sessions' task curves with their bands, labelled as `lhe-tui compare` labels them), `probe` (answer
accuracy at the target turn against the history error rate, with 95% CIs, and turn accuracy) and `sum` (one
sample's model vs gold running sum, its first error and the injections marked). The numbers come from the same functions as `show`, `compare` and the TUI
(lhe_tui.metrics, lhe_tui.analysis.compare, lhe_tui.runs.probe); the ragged-sample rule comes with them.

matplotlib is an optional extra (`pip install -c constraints.txt -e '.[figures]'`), imported only when a figure is drawn, and
never through pyplot: each figure is a `matplotlib.figure.Figure` drawn on its own canvas inside an
`rc_context`, so no backend or rcParams are changed for anyone else. Output is deterministic: the same
session gives byte-identical SVG (fixed hash salt, text as paths, no dates in the metadata).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lhe_tui.analysis.decay_curves import DecayData
from lhe_tui.common.errors import ConfigError, LheError, StoreError, install_hint

if TYPE_CHECKING:
    from sqlite_utils import Database

KINDS = ("decay", "sum", "compare", "probe")
FORMATS = ("png", "svg", "pdf")
N_BOOT = 1000          # bootstrap resamples of the bands (the TUI draws 200 live; a figure is for print)
WIDTH_IN = 3.4         # a paper's column
HEIGHT_IN = 2.4
EXTRA_HINT = install_hint("figures")

# Okabe & Ito (2008): distinguishable with every common colour-vision deficiency, and in greyscale by line style.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
BLUE, ORANGE, GREEN, VERMILION, PURPLE, SKY, YELLOW, BLACK = OKABE_ITO
GREY = "#7f7f7f"

STYLE: dict[str, Any] = {
    "font.family": "DejaVu Sans",        # ships with matplotlib: the same glyphs (and bytes) everywhere
    "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "legend.fontsize": 7,
    "xtick.labelsize": 7, "ytick.labelsize": 7,
    "axes.linewidth": 0.6, "lines.linewidth": 1.2, "lines.markersize": 3.5,
    "xtick.major.width": 0.6, "ytick.major.width": 0.6, "xtick.major.size": 2.5, "ytick.major.size": 2.5,
    "axes.spines.top": False, "axes.spines.right": False,
    "legend.frameon": False, "legend.handlelength": 1.8, "legend.borderaxespad": 0.3,
    "figure.dpi": 100, "savefig.dpi": 300, "savefig.bbox": "tight", "savefig.pad_inches": 0.02,
    "svg.hashsalt": "lhe-tui", "svg.fonttype": "path", "pdf.fonttype": 42, "path.simplify": True,
}
# Nothing that varies from run to run: no dates, and the same software string.
METADATA = {"svg": {"Date": None, "Creator": "lhe-tui"}, "pdf": {"CreationDate": None, "ModDate": None,
                                                                "Creator": "lhe-tui"},
            "png": {"Software": "lhe-tui"}}


class FiguresUnavailable(LheError):
    """matplotlib (the `figures` extra) is not installed."""


def _matplotlib() -> Any:
    try:
        import matplotlib
        from matplotlib.figure import Figure  # noqa: F401  (the parts we draw with, checked up front)
    except ImportError:
        raise FiguresUnavailable(f"figures need matplotlib, the optional `figures` extra: {EXTRA_HINT}") from None
    return matplotlib


def check_output(out: Path | str) -> str:
    """The output's format from its extension; a one-line error for another extension or a folder that is
    not there."""
    out = Path(out)
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ConfigError(f"--out {out}: unknown figure format {out.suffix or '(none)'!r}; use .png, .svg or .pdf")
    if not out.parent.is_dir():
        raise LheError(f"cannot write {out}: folder {out.parent} does not exist")
    return fmt


# ---- the numbers (the same functions as show, compare and the TUI) ---------------------------------------
@dataclass(frozen=True, kw_only=True)
class DecayCurves(DecayData):
    """A session's decay curves (the TUI's DecayData) with what the figure labels them by."""

    session_id: str
    label: str
    k: int

    @property
    def p_before_first_error(self) -> float | None:
        return self.summary.p_before_first_error

    @property
    def horizon(self) -> int | None:
        return self.summary.horizon_measured


def _run_session(db: Database, session_id: str) -> dict[str, Any]:
    from lhe_tui.store.queries import load_session

    session = load_session(db, session_id)
    if not db.execute("SELECT 1 FROM turns WHERE session_id = ? LIMIT 1", [session_id]).fetchone():
        raise LheError(f"session {session_id} has no stored turns: nothing to plot")
    return session


def decay_curves(db: Database, session_id: str, *, n_boot: int = N_BOOT, step_rule: str | None = None) -> DecayCurves:
    from lhe_tui.analysis.compare import session_label
    from lhe_tui.analysis.decay_curves import compute_decay
    from lhe_tui.store.queries import session_flags

    session = _run_session(db, session_id)
    if session["kind"] == "probe":
        raise LheError(f"session {session_id} is a target-turn probe: plot it with --kind probe")
    flags = session_flags(db, session_id, step_rule)
    d = compute_decay(flags.correct, flags.update, n_boot=n_boot, seed=0, status=flags.status, turns=flags.turns,
                      k=flags.k, answered=flags.answered)
    return DecayCurves(**{f.name: getattr(d, f.name) for f in fields(d)}, session_id=session_id,
                       label=session_label(db, session_id, session), k=flags.k)


# ---- drawing ---------------------------------------------------------------------------------------------
def _figure(height: float = HEIGHT_IN) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_IN, height))
    FigureCanvasAgg(fig)
    return fig


def _counts_note(counts: list[int]) -> str:
    if not counts:
        return ""
    return f"n={counts[0]}" if min(counts) == max(counts) else f"n={counts[0]}→{counts[-1]}"


def _steps_axis(ax: Any, k: int) -> None:
    if k > 1:
        top = ax.secondary_xaxis("top", functions=(lambda t: t * k, lambda s: s / k))
        top.set_xlabel(f"steps (keys, K={k})")


def draw_decay(fig: Any, d: DecayCurves) -> None:
    ax = fig.add_subplot()
    x = list(range(1, len(d.task) + 1))
    thin = 0.8 if len(x) > 200 else 1.0     # per-turn curves of long runs are noisy: thin, solid lines
    if d.task_low is not None and d.task_high is not None:
        ax.fill_between(x, d.task_low, d.task_high, color=BLUE, alpha=0.25, linewidth=0, label="task 95% CI")
    # The paper's two curves: task accuracy first and thickest, turn accuracy (the update, whatever the
    # state before) on top; answer accuracy (answer = gold, secondary) faint and dotted.
    ax.plot(x, d.task, color=BLUE, linewidth=1.4, label="task accuracy")
    ax.plot(x, d.turn, color=ORANGE, linewidth=thin, label="turn accuracy")
    ax.plot(x, d.answer, color=GREEN, linewidth=0.7, linestyle=(0, (1, 1.5)), alpha=0.8, label="answer accuracy")
    if d.theory:
        ax.plot(x, d.theory, color=BLACK, linestyle=(0, (1, 1.2)), linewidth=1.1,
                label=f"$p^t$ (p before the first error {d.p_before_first_error:.4f})")
    if d.horizon is not None:
        ax.axvline(d.horizon, color=VERMILION, linewidth=0.8, linestyle="--")
        ax.annotate(f"$H_{{0.5}}$={d.horizon}", (d.horizon, 0.5), xytext=(3, 3), textcoords="offset points",
                    color=VERMILION, fontsize=7)
    ax.axhline(0.5, color=GREY, linewidth=0.5, linestyle=(0, (1, 2)))
    ax.set_xlim(1, max(len(x), 2))
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("turn")
    ax.set_ylabel("accuracy")
    _steps_axis(ax, d.k)
    ax.set_title(f"{d.label}  ({_counts_note(d.counts)})", loc="left")   # what a reader needs, not the id
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2, columnspacing=1.0)


def draw_compare(fig: Any, curves: list[DecayCurves]) -> None:
    ax = fig.add_subplot()
    styles = ("-", "--", "-.", ":")
    longest = max(len(c.task) for c in curves)
    for n, c in enumerate(curves):
        color = OKABE_ITO[n % len(OKABE_ITO)]
        x = list(range(1, len(c.task) + 1))
        if c.task_low is not None and c.task_high is not None:
            ax.fill_between(x, c.task_low, c.task_high, color=color, alpha=0.18, linewidth=0)
        ax.plot(x, c.task, color=color, linestyle=styles[n % len(styles)],
                label=f"{c.label} (H$_{{0.5}}$={'-' if c.horizon is None else c.horizon})")
    ax.axhline(0.5, color=GREY, linewidth=0.5, linestyle=(0, (1, 2)))
    ax.set_xlim(1, max(longest, 2))
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("turn")
    ax.set_ylabel("task accuracy")
    ks = {c.k for c in curves}
    if len(ks) == 1:
        _steps_axis(ax, ks.pop())
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=1, fontsize=6)


def draw_probe(fig: Any, rows: list, name: str, target: Any) -> None:
    """`name`: what was probed (model and mode), the title's first words."""
    ax = fig.add_subplot()
    rates = [r.rate for r in rows]
    acc = [r.accuracy for r in rows]
    err = [[max(0.0, r.accuracy - r.ci_low) for r in rows], [max(0.0, r.ci_high - r.accuracy) for r in rows]]
    ax.errorbar(rates, acc, yerr=err, color=BLUE, marker="o", capsize=2, linewidth=1.0, elinewidth=0.8,
                label="answer accuracy (95% CI)")
    ax.plot(rates, [r.turn_accuracy for r in rows], color=ORANGE, marker="s", linestyle="--", linewidth=1.0,
            label="turn accuracy")
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("induced error rate r in the history")
    ax.set_ylabel(f"accuracy at turn {target}")
    n = sorted({r.n for r in rows})
    ax.set_title(f"{name}  (n={'/'.join(map(str, n))} per rate)", loc="left")
    ax.legend(loc="best")


def draw_sum(fig: Any, title: str, sample: int, turns: list) -> None:
    """Above, the model's and the gold running sums; below, answer - gold, where an error of 4 on a sum of
    hundreds shows (and an injected history value's offset, as a triangle)."""
    from lhe_tui.metrics import first_error

    ax, diff = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    x = [t.turn for t in turns]
    ax.plot(x, [t.gold_sum for t in turns], color=BLACK, linewidth=1.0, label="gold")
    model = [float("nan") if t.model_answer is None else t.model_answer for t in turns]
    ax.plot(x, model, color=BLUE, linestyle="--", label="model")
    wrong = [t for t in turns if not t.correct and t.model_answer is not None]
    if wrong:   # a wrong answer is often a few off: on a sum axis of thousands, only a marker shows it
        ax.plot([t.turn for t in wrong], [t.model_answer for t in wrong], linestyle="none", marker="o",
                markerfacecolor="none", markeredgewidth=0.7, color=VERMILION, label="wrong answer",
                markersize=3.5 if len(wrong) <= 100 else 1.5)
    missing = [t.turn for t in turns if t.model_answer is None]
    if missing:
        golds = {t.turn: t.gold_sum for t in turns}
        ax.plot(missing, [golds[m] for m in missing], linestyle="none", marker="x", color=PURPLE,
                label="no valid answer")
    first = first_error([t.correct for t in turns])
    if first is not None:
        ax.axvline(first, color=VERMILION, linewidth=0.8, label=f"first error (turn {first})")
    injected = [t for t in turns if t.injected]
    for n, t in enumerate(injected):
        ax.axvline(t.turn, color=ORANGE, linewidth=0.8, linestyle=":", label="" if n else "injected")
    if injected:
        ax.plot([t.turn for t in injected], [t.history_answer for t in injected], linestyle="none", marker="v",
                color=ORANGE)
    ax.set_xlim(x[0], max(x[-1], x[0] + 1))
    ax.set_ylabel("running sum")
    ax.set_title(f"{title}  sample {sample}", loc="left")
    answered = [t for t in turns if t.model_answer is not None]
    diff.axhline(0, color=BLACK, linewidth=0.6)
    diff.plot([t.turn for t in answered], [t.model_answer - t.gold_sum for t in answered], color=BLUE,
              linewidth=0.9, drawstyle="steps-mid")
    if injected:
        diff.plot([t.turn for t in injected], [t.history_answer - t.gold_sum for t in injected], linestyle="none",
                  marker="v", color=ORANGE)
    if first is not None:
        diff.axvline(first, color=VERMILION, linewidth=0.8)
    diff.set_xlabel("turn")
    diff.set_ylabel("answer − gold")
    handles, names = ax.get_legend_handles_labels()    # below both panels: it hides no point
    diff.legend(handles, names, loc="upper center", bbox_to_anchor=(0.5, -0.5), ncols=3, columnspacing=1.0)


# ---- the entry point -------------------------------------------------------------------------------------
def default_kind(db: Database, session_id: str) -> str:
    from lhe_tui.store.queries import load_session

    return "probe" if load_session(db, session_id)["kind"] == "probe" else "decay"


def plot(db: Database, session_ids: list[str], out: Path | str, *, kind: str | None = None,
         sample: int = 0, n_boot: int = N_BOOT, step_rule: str | None = None,
         notes: list[str] | None = None, title: str | None = None, labels: dict[str, str] | None = None) -> Path:
    """Draw the `kind` figure of `session_ids` (resolved ids) into `out` (.png, .svg or .pdf). `kind` None:
    probe for a probe session, else decay (compare with several ids); `step_rule`: turn accuracy's (None: each
    session's). Raises LheError with one line. `notes`: gets a line naming the sessions a comparison left out
    (no data: no turn was answered). `title`: the figure's title instead of the default; `labels`: session
    id -> its name in the legend (the others are named by what differs between the plotted sessions:
    `distinct_labels`)."""
    out = Path(out)
    fmt = check_output(out)
    matplotlib = _matplotlib()
    if kind is None:
        kind = "compare" if len(session_ids) > 1 else default_kind(db, session_ids[0])
    if kind not in KINDS:
        raise ConfigError(f"unknown figure kind {kind!r}; use one of {', '.join(KINDS)}")
    if kind != "compare" and len(session_ids) > 1:
        raise ConfigError(f"--kind {kind} draws one session; several are drawn by --kind compare")
    with matplotlib.rc_context(STYLE):
        fig = _build(db, session_ids, kind, sample, n_boot, step_rule, notes if notes is not None else [],
                     labels or {})
        if title is not None:
            fig.axes[0].set_title(title, loc="left")
        try:
            fig.savefig(out, format=fmt, metadata=METADATA[fmt])
        except OSError as exc:
            raise LheError(f"cannot write {out}: {exc.strerror or exc}") from None
    return out


def distinct_labels(labels: list[str]) -> list[str]:
    """Each label without the words every label shares (`sim/sim-1 K=1 direct paper plain` against `… r=0.5`:
    `plain` and `r=0.5`); a label left empty keeps its full text."""
    words = [label.split() for label in labels]
    shared = set(words[0]).intersection(*words[1:]) if len(words) > 1 else set()
    return [" ".join(w for w in ws if w not in shared) or label for ws, label in zip(words, labels)]


def _build(db: Database, session_ids: list[str], kind: str, sample: int, n_boot: int,
           step_rule: str | None = None, notes: list[str] | None = None,
           labels: dict[str, str] | None = None) -> Any:
    notes = notes if notes is not None else []
    labels = labels or {}
    if kind == "decay":
        curves = decay_curves(db, session_ids[0], n_boot=n_boot, step_rule=step_rule)
        if curves.summary.no_data:
            raise LheError(f"session {session_ids[0]} has no data (no turn was answered): nothing to plot")
        fig = _figure(HEIGHT_IN + 0.35)
        draw_decay(fig, replace(curves, label=labels.get(curves.session_id, curves.label)))
    elif kind == "compare":
        from lhe_tui.store.queries import has_answered_turn

        left_out = [sid for sid in session_ids if not has_answered_turn(db, sid)]
        curves = [decay_curves(db, sid, n_boot=n_boot, step_rule=step_rule) for sid in session_ids
                  if sid not in left_out]
        if left_out:
            notes.append(f"left out, no data (no turn was answered): {', '.join(left_out)}")
        if not curves:
            raise LheError(f"nothing to plot: {notes[-1]}")
        names = distinct_labels([c.label for c in curves])
        curves = [replace(c, label=labels.get(c.session_id, name)) for c, name in zip(curves, names)]
        fig = _figure(HEIGHT_IN + 0.25 + 0.14 * len(curves))
        draw_compare(fig, curves)
    elif kind == "probe":
        from lhe_tui.runs.probe import probe_table

        session_id = session_ids[0]
        session = _run_session(db, session_id)
        if session["kind"] != "probe":
            raise LheError(f"session {session_id} is not a target-turn probe (`lhe-tui probe` makes one): "
                           "plot it with --kind decay or sum")
        spec = ((session["config"].get("extra") or {}).get("probe") or {})
        fig = _figure()
        target = spec.get("target_turn", session.get("turns"))
        name = labels.get(session_id, f"{session['provider']}/{session['model']} {session['mode']} K={session['k']}")
        draw_probe(fig, probe_table(db, session_id), name, target)
    else:
        from lhe_tui.store.queries import load_session, load_turns

        session_id = session_ids[0]
        _run_session(db, session_id)
        turns = load_turns(db, session_id, sample)
        if not turns:
            n = db.execute("SELECT COUNT(*) FROM samples WHERE session_id = ?", [session_id]).fetchone()[0]
            raise StoreError(f"session {session_id} has no sample {sample} with stored turns"
                             + (f" (its samples are 0..{n - 1})" if n else ""))
        fig = _figure(HEIGHT_IN + 1.0)
        session = load_session(db, session_id)
        draw_sum(fig, labels.get(session_id, f"{session['provider']}/{session['model']}"), sample, turns)
    return fig


def write_session_figure(db_path: Path | str, session_id: str, folder: Path | str | None = None) -> Path:
    """The run view's figure key: the session's own figure (decay; probe for a probe session) as SVG in
    `folder` (default: `figures/` beside the store), named `<session>-<kind>.svg`. Opens its own read-only
    connection, so it may run in a thread while the run goes on. Raises LheError with one line."""
    from lhe_tui.store.database import open_database

    _matplotlib()     # the missing extra is said before any folder is made
    db = open_database(db_path, create=False, write=False)
    try:
        kind = default_kind(db, session_id)
        folder = Path(db_path).resolve().parent / "figures" if folder is None else Path(folder)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LheError(f"cannot make {folder}: {exc.strerror or exc}") from None
        return plot(db, [session_id], folder / f"{session_id}-{kind}.svg", kind=kind)
    finally:
        db.conn.close()
