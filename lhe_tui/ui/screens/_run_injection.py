"""Injecting into a live run from the run view: `i` and `I` (its dialog), and the toasts that say what landed."""

from __future__ import annotations

from lhe_tui.core.events import Injected


class RunInjection:
    """Mixed into the RunScreen: needs its `live`, `model` and `_scripted_announced` (--inject-at said once)."""

    def _model_said(self, event: Injected) -> str:
        """The model's own answer of the injected turn (what the history showed before may differ: an earlier
        injection, the protocol's compacted form, an induced error)."""
        state = self.model.sample(event.sample)
        row = state.row_of(event.turn) if state is not None else None
        if row is None:
            return "?" if event.original is None else str(event.original)
        answer = state.records[row].model_answer   # type: ignore[union-attr]
        return "no answer" if answer is None else str(answer)

    def _announce(self, injected: list[Injected]) -> None:
        """One toast for what one flush brought: a single injection says what it did, several (every sample
        at once) say it once; scripted ones (--inject-at, as each sample passes the turn) only the first time."""
        manual = [e for e in injected if e.source != "scripted"]
        scripted = [e for e in injected if e.source == "scripted"]
        if scripted and not self._scripted_announced:
            self._scripted_announced = True
            turns = ", ".join(str(t) for t in sorted({e.turn for e in scripted}))
            first = scripted[0]
            self.notify(f"--inject-at: each sample's history gets a wrong answer at turn {turns} as it passes it "
                        f"(s{first.sample}: {first.injected}, the model said {self._model_said(first)}); "
                        f"⚡ marks them in the table", title="injecting", markup=False)
        cache = ("; the prompt cache misses once from that answer on if it was already sent"
                 if manual and self.live is not None and self.live.config.uses_prefix_cache else "")
        if len(manual) == 1:
            e = manual[0]
            self.notify(f"s{e.sample}: the history now shows {e.injected} for turn {e.turn} "
                        f"(the model said {self._model_said(e)}){cache}", title="injected", markup=False)
        elif manual:
            watched = next((e for e in manual if e.sample == self.model.watched), manual[0])
            self.notify(f"{len(manual)} samples: each one's history now shows a wrong answer at its latest "
                        f"turn (s{watched.sample} turn {watched.turn}: {watched.injected}, the model said "
                        f"{self._model_said(watched)}){cache}", title="injected", markup=False)

    def action_inject(self) -> None:
        if self.live is None or not self.model.running:
            return
        state = self.model.sample(self.model.watched)
        if state is None or not state.records:
            self.notify("nothing to inject into yet: this sample has no finished turn", severity="warning")
            return
        self.live.inject(self.model.watched)

    def action_inject_dialog(self) -> None:
        """Ask for an offset or a value (and whether for every sample), then inject."""
        from lhe_tui.ui.screens.inject import InjectScreen

        if self.live is None or not self.model.running:
            return
        index = self.model.watched
        state = self.model.sample(index)
        if state is not None and state.records:
            last = state.records[-1]
            seen = last.history_answer
            about = (f"s{index}'s latest finished turn is {last.turn}: the model's history shows "
                     f"{'no answer' if seen is None else seen} there (gold {last.gold_sum}).")
        else:
            about = f"s{index} has no finished turn yet (every sample at once may still have some)."
        about += " The run goes on meanwhile: Enter injects into each sample's latest finished turn."
        self.app.push_screen(InjectScreen(about), self._inject_requested)

    def _inject_requested(self, request) -> None:
        if request is None or self.live is None:
            return
        if not self.model.running:
            self.notify("the run is over: nothing was injected", severity="warning")
            return
        if request.all_samples:
            self.live.inject_all(offset=request.offset, value=request.value)
        else:
            state = self.model.sample(self.model.watched)
            if state is None or not state.records:
                self.notify("nothing to inject into yet: this sample has no finished turn", severity="warning")
                return
            self.live.inject(self.model.watched, offset=request.offset, value=request.value)
