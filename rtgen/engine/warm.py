"""The engine: genre models with warm state on one device, fused and sampled one token at a time.

One thread (the daemon's engine thread, or ``rtgen generate``) owns an
``Engine`` and calls ``prime``/``feed``/``step``/``reset``/``set_controls``;
the daemon's other threads reach it only through commands that thread applies
(``rtgen.daemon.commands``), so the engine holds no lock and no queue.
``set_controls`` validates the new value (errors raise at once, naming the
control) and builds its derived tensors; the next step uses them.

Each step: fuse the K genre models' next-token logits (``rtgen.engine.fusion``),
add the precomputed masks (scale lock, pitch range, no PAD/SEP, no note-off
for a silent pitch, no note-on past ``max_polyphony``), choose
(``rtgen.engine.sampling``), advance the models by the chosen token
(``StackedStepper``: one batched computation) and the streaming decoder that
tracks what the stream implies (sounding notes, their age, the beat). A note
held for ``max_note_beats`` is closed by a forced NOTE_OFF instead of a sample.
Sampling runs in plain Python over a list: after the advance has streamed ~13 MB
of weights through the caches a numpy or torch call costs 30-80 us, a loop a few
us. Masks that change only with controls or sounding notes are kept multiplied
into one [V] tensor; uniform draws come in batches of ``DRAWS``.

Only the models the current method reads are advanced: the K genre models
for ``mixture``/``product``, the conditional model for ``conditional``, the
two-phase model (``rtgen.nets.twophase``) for ``two-phase`` (a step reads
every weight from memory, so an idle model would cost as much as a used
one). Every token the stream takes goes into a ring of the last
``HISTORY_TOKENS``; when the method switches, the idle model catches up on the
tokens it missed (exact), or from a fresh state through the whole ring when it
missed more (``Engine.last_switch_ms`` times it).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from fractions import Fraction

import numpy as np
import torch
from torch import Tensor

from rtgen.encoding import EventEncoding, Note
from rtgen.engine.closes import beats_to_close, restated_until
from rtgen.engine.controls import Controls
from rtgen.engine.derived import Derived, derive
from rtgen.engine.form import KeyBudget, Lookback, lean_towards
from rtgen.engine.fusion import fuse_probs, tempered
from rtgen.engine.loading import EngineError, genre_name, optional_model, same_vocabulary
from rtgen.engine.sampling import choose_from, detect_key, key_name, top_k_, top_p_
from rtgen.engine.sections import Sections
from rtgen.engine.steering import Steering
from rtgen.nets.checkpoint import LoadedModel
from rtgen.nets.device import pick_device

HISTORY_TOKENS = 256  # tokens an idle model replays when the method switches to it
DRAWS = 256  # uniform numbers drawn from the generator at once


class Engine:
    """K genre models stepping together, fused with live controls; see the module docstring."""

    keeps_bar_phase = False  # a voice may skip the models' leading rest (rtgen.live.hooks.TokenEngine)

    def __init__(
        self,
        genres: Sequence[str],
        models: Sequence[LoadedModel],
        settings: Controls | None = None,
        *,
        conditional: LoadedModel | None = None,
        twophase: LoadedModel | None = None,
        seed: int | None = None,
        threads: int | None = 1,
    ) -> None:
        """``models``: ``LoadedModel``s in ``genres`` order; ``conditional``: the multi-genre one or None.

        ``twophase``: the fusion paper's model (``rtgen.nets.twophase``) or None.

        ``threads``: torch intra-op threads for this process (None leaves torch's
        setting). One token step is a few small matrix products; splitting them
        over threads costs more in synchronisation than it saves, and on a busy
        2-core machine a second thread turned a 0.75 ms step into 12.5 ms.
        """
        from rtgen.nets.recurrent import StackedStepper

        if threads is not None:
            torch.set_num_threads(threads)
        if len(models) != len(genres) or not (models or conditional or twophase):
            raise EngineError(f"{len(genres)} genre names for {len(models)} models, and no conditional model")
        self.genres = tuple(genres)
        first = models[0] if models else (conditional or twophase)
        self.encoding, self.device = first.encoding, first.model.device
        names = [*self.genres, "multi", "two-phase"]
        for genre, loaded in zip(names, [*models, conditional, twophase], strict=True):
            if loaded is not None:
                same_vocabulary(self.encoding, loaded, genre, names[0])
        self._stepper = StackedStepper([m.model for m in models]) if models else None
        self._conditional = StackedStepper([conditional.model]) if conditional is not None else None
        self._twophase = StackedStepper([twophase.model]) if twophase is not None else None
        self._steppers = [s for s in (self._stepper, self._conditional, self._twophase) if s is not None]
        self._active: tuple = ()  # the steppers advanced per token (those the current method reads)
        self._history = np.zeros(HISTORY_TOKENS, dtype=np.int64)  # ring of the stream's last tokens
        self._lookback = Lookback()  # the stream since the last reset, for ``repeat``
        self._sections = Sections(self.encoding, self._draw)  # the stream's form, with ``repeat`` (event tokens)
        self._p_end = 0.0  # the fused probability that the piece ends here (SEP), read when ``repeat`` > 0
        self._restated_until = 0  # grid step where the form's latest queue closes (rtgen.engine.closes)
        self._written = 0  # tokens the stream has taken since the last reset
        self._position = {s: 0 for s in self._steppers}  # tokens each idle stepper has taken
        self.last_switch_ms = 0.0  # how long the last method switch took to warm the idle model
        self.conditional_genres = tuple(conditional.meta.get("genres") or self.genres) if conditional else ()
        self.twophase_genres = tuple(twophase.meta["genres"]) if twophase else ()
        self.generator = torch.Generator().manual_seed(_seed(seed))
        self._draws: list[float] = []  # uniform numbers from ``generator``, used from the end
        self._mask = np.ones(len(self.encoding), dtype=np.float32)  # controls' mask x note-off mask
        self._mask_tensor = torch.from_numpy(self._mask)
        self._off_mask = np.ones(len(self.encoding), dtype=np.float32)  # 0 for the note-off of a silent pitch
        self._performer = False  # the tokens being taken are the performer's
        self._is_event = isinstance(self.encoding, EventEncoding)  # steering and sections reshape event tokens
        self._steering = Steering(self.encoding) if self._is_event else None
        self._key_budget = KeyBudget()  # the key prior holds while rtgen is more out of key than its genres
        self._zeros = [0.0] * len(self.encoding)  # slices of it zero ranges of the probability list
        # Diagnostic hook, called in the stepping thread with the controls a step uses and a copy of its
        # fused log-probabilities [V] before any mask or filter: lets tests prove which values a step used.
        self.on_step: Callable[[Controls, Tensor], None] | None = None
        self._auto_key: tuple[int, str] | None = None
        settings = settings or Controls()
        if not settings.weights:
            settings = settings.replace(
                weights=dict.fromkeys(self.genres or self.conditional_genres or self.twophase_genres, 1.0)
            )
        self._latest = settings
        self._derived = self._derive(settings, None)
        self._use(self._derived)
        self.reset()

    @classmethod
    def from_names(
        cls,
        genres: Sequence[str],
        device: str = "auto",
        settings: Controls | None = None,
        *,
        conditional: str | None = "auto",
        twophase: str | None = "auto",
        seed: int | None = None,
        threads: int | None = 1,
    ) -> Engine:
        """Load shipped models by genre name (or checkpoint paths) onto ``device``.

        ``conditional``/``twophase``: a name or path of the multi-genre or the
        two-phase model, "auto" (``multi`` or ``two-phase`` when installed and on
        the genre models' vocabulary) or None (that method is then refused).
        """
        from rtgen.nets.checkpoint import load_model

        if not genres and conditional in (None, "auto") and twophase in (None, "auto"):
            raise EngineError("no genres given; name at least one model, e.g. folk")
        where = str(pick_device(device))
        loaded = [load_model(name, device=where) for name in genres]
        names = [genre_name(name, m.meta) for name, m in zip(genres, loaded, strict=True)]
        if settings is not None:  # a weight given by checkpoint path weighs that model under its genre name
            named = dict(zip(genres, names, strict=True))
            settings = settings.replace(weights={named.get(g, g): w for g, w in settings.weights.items()})
        encoding = loaded[0].encoding if loaded else None
        multi = optional_model(conditional, "conditional", where, encoding)
        fused = optional_model(twophase, "two-phase", where, encoding)
        return cls(names, loaded, settings, conditional=multi, twophase=fused, seed=seed, threads=threads)

    @property
    def controls(self) -> Controls:
        """The newest controls value set (the stepping thread uses it from its next step)."""
        return self._latest

    @property
    def key(self) -> str | None:
        """The key the scale lock holds note-ons to, e.g. "D minor"; None when unlocked."""
        key = self._derived.key
        return key_name(*key) if key else None

    @property
    def beat(self) -> Fraction:
        """Beats the decoded stream has advanced since the last reset."""
        return self._decoder.beat

    @property
    def section_ends(self) -> list[tuple[float, str]]:
        """(beats from the first sampled step, "cadence" | "sep" | "cap") of each section ended since the reset."""
        return list(self._sections.ends)

    @property
    def beats_to_section_end(self) -> float | None:
        """Beats to where the section under way closes (``rtgen.engine.closes``), inf if unknown; None: no form."""
        on = self._derived.controls.repeat > 0 and self._is_event
        return beats_to_close(self._sections, self._decoder.state.now_steps, self._restated_until) if on else None

    @property
    def sounding(self) -> frozenset[int]:
        return self._decoder.sounding

    @property
    def restating(self) -> bool:
        """Whether the next step plays a token of a section stated again (the form's choice, not the models')."""
        return bool(self._sections.queue) and not self._sections.queue[-1][1]  # a re-sampled note is the models'

    def set_controls(self, **changes: object) -> Controls:
        """Validate and take new controls; raises ``ControlError`` naming the control if invalid."""
        new = self._latest.replace(**changes)
        self._use(self._derive(new, self._auto_key))
        if (new.weights, new.method) != (self._latest.weights, self._latest.method):
            self._sections.reset()  # the performer moved the blend: what follows is new, not the old section again
        self._latest = new
        return new

    def seed(self, seed: int) -> None:
        """Restart the sampler's random stream (same seed, same choices from the same state)."""
        self.generator.manual_seed(seed)
        self._draws.clear()

    def _derive(self, controls: Controls, auto_key: tuple[int, str] | None) -> Derived:
        conditional_genres = self.conditional_genres if self._conditional is not None else None
        twophase_genres = self.twophase_genres if self._twophase is not None else None
        genres = self.genres if self._stepper is not None else ()
        return derive(controls, auto_key, self.encoding, genres, conditional_genres, self.device, twophase_genres)

    def _use(self, derived: Derived) -> None:
        self._derived = derived
        self._sections.set_form(derived.form, derived.controls.variation)
        self._key_budget.allowed = 1.0 - derived.form.in_key
        self._combine_masks()
        weighted = {"conditional": self._conditional, "two-phase": self._twophase}.get(derived.controls.method)
        if weighted is not None:
            weighted.set_genre(derived.genre_input)
        self._activate((weighted or self._stepper,))

    def _follow_key(self) -> None:
        """With the scale lock on key "auto", rebuild the masks when the detected key changed."""
        controls = self._derived.controls
        follows = controls.key == "auto" and (controls.scale_lock or controls.key_prior > 0)
        if follows and self._derived.auto_key != self._auto_key:
            self._derived = self._derive(self._derived.controls, self._auto_key)
            self._combine_masks()

    def _combine_masks(self) -> None:
        mask = self._derived.mask if self._key_budget.holds else self._derived.loose_mask
        np.multiply(mask, self._off_mask, out=self._mask)

    def _activate(self, wanted: tuple) -> None:
        """Advance ``wanted`` from now on; an idle stepper first catches up with the stream's tokens."""
        if wanted == self._active:
            return
        started = time.perf_counter()
        for stepper in self._active:
            self._position[stepper] = self._written
        for stepper in wanted:
            if stepper not in self._active:
                self._catch_up(stepper)
        self._active = wanted
        self.last_switch_ms = (time.perf_counter() - started) * 1000.0

    def _catch_up(self, stepper) -> None:
        missed = self._written - self._position[stepper]
        if missed > HISTORY_TOKENS:  # older tokens are gone: warm up from a fresh state on what the ring holds
            stepper.reset()
            missed = HISTORY_TOKENS
        if missed:
            where = np.arange(self._written - missed, self._written) % HISTORY_TOKENS
            stepper.prime(self._history[where].tolist())
        self._position[stepper] = self._written

    def _record(self, tokens: Sequence[int]) -> None:
        """Write tokens the stream took to the history ring (the last ``HISTORY_TOKENS`` are kept)."""
        kept = np.asarray(tokens[-HISTORY_TOKENS:], dtype=np.int64)
        start = self._written + len(tokens) - len(kept)
        self._history[np.arange(start, start + len(kept)) % HISTORY_TOKENS] = kept
        self._written += len(tokens)

    def reset(self) -> None:
        """Fresh state for every model and a fresh decoder (time 0, nothing sounding)."""
        for stepper in self._steppers:
            stepper.reset()
            self._position[stepper] = 0
        self._written = 0
        self._lookback.reset()
        self._sections.reset()
        self._key_budget.reset()
        self._decoder = self.encoding.decoder()
        if self._steering is not None:
            self._steering.reset()
        self._off_mask = np.ones(len(self.encoding), dtype=np.float32)  # 0 for the note-off of a silent pitch
        if self._is_event:
            self._off_mask[self.encoding.off_base : self.encoding.off_base + 128] = 0.0
        self._combine_masks()

    def prime(self, notes: Sequence[Note]) -> None:
        """Run SEP + the phrase through the active models at once; with key "auto", the scale lock follows it.

        The phrase is also the motif ``motif`` leans toward; its own onsets
        count as rtgen's, so the answer carries on from the phrase's last note.
        """
        self._follow_key()
        if self._steering is not None:
            spb = self.encoding.steps_per_beat
            self._steering.motif.set_phrase([(round(n.start * spb), n.pitch) for n in notes])
        self._take([self.encoding.sep_id, *self.encoding.encode(notes)])
        self._sections.begin([n.pitch for n in notes])  # an answer to a new call is a new section, in its register
        if notes:
            self._auto_key = detect_key((n.pitch, float(n.duration)) for n in notes)

    def feed(self, tokens: Sequence[int], *, performer: bool = False) -> None:
        """Advance the models (and the decoder) by given tokens.

        ``performer``: the tokens are the performer's notes (duet): they steer
        what the models play, and rtgen's ``DensityHold`` keeps how much.
        """
        self._performer = performer
        try:
            if len(tokens) > 16:
                self._follow_key()
                self._take([int(t) for t in tokens])
                return
            for token in tokens:
                self._advance(int(token))
        finally:
            self._performer = False

    def _take(self, tokens: list[int]) -> None:
        """Run a token sequence through the active steppers' sequence forward, the history and the decoder."""
        for stepper in self._active:
            stepper.prime(tokens)
        self._record(tokens)
        self._lookback.extend(tokens)
        for token in tokens:
            self._track(token)

    @torch.inference_mode()
    def step(self) -> int:
        """Choose one token with the current controls, advance the active models by it, and return it."""
        self._follow_key()
        derived = self._derived
        token, room_steps = self._note_length_guard(derived.max_note_steps)
        form = self._sections if derived.controls.repeat > 0 and self._is_event else None
        if token is None and form is not None and form.queue:  # a restatement: its notes re-sampled or as they were
            token = form.restated(lambda: self._probs(derived, room_steps), self._draw)
        if token is None:
            if form is not None:
                self._open_section(form, derived)
                room_steps = min(room_steps, form.room(self._decoder.state.now_steps))
            values = self._probs(derived, room_steps)
            token = self._choose(values, derived.controls)
        self._advance(token)
        return token

    def _open_section(self, form: Sections, derived: Derived) -> None:
        """Before a sampled step: a new section departs (or not) in motif and register; the form knows the key."""
        if form.mark(self._written, self._decoder.state.now_steps, derived.key or self._auto_key or (0, "major")):
            self._lookback.since = self._written if form.departure else 0

    def _choose(self, values: list[float], c: Controls) -> int:
        """Sample from ``values`` (filtered, leaned by ``repeat``), or end the section where the models end it."""
        if c.top_k or c.top_p < 1.0:
            values = top_p_(top_k_(torch.tensor(values), c.top_k), c.top_p).tolist()
        if c.repeat > 0 and self._is_event:  # sections are cut in event tokens; repeat 0 draws as before
            now, models_end = self._decoder.state.now_steps, self._draw() < self._p_end
            if (first := self._sections.close(values, now, models_end, self._lookback)) is not None:
                self._restated_until = restated_until(self._sections, now, first)
                return first
        sampling = c.sampling
        leans = c.repeat > 0 and sampling != "argmax" and self._sections.ending_until is None  # an ending is new
        if leans and (suggested := self._lookback.suggest()) is not None:
            lean_towards(values, suggested, c.repeat)
            sampling = "sample"  # hybrid's argmax on a leaned distribution would copy for ever
        return choose_from(values, sampling, draw=self._draw())

    def _draw(self) -> float:
        """One uniform number in [0, 1) from ``generator``, drawn ``DRAWS`` at a time."""
        if not self._draws:
            self._draws = torch.rand(DRAWS, generator=self.generator, dtype=torch.float64).tolist()
        return self._draws.pop()

    def _probs(self, derived: Derived, room_steps: int) -> list[float]:
        """Fused, masked token probabilities [V] as a list (unnormalised).

        ``room_steps``: how far time may move before the oldest sounding note
        reaches its maximum length; longer shifts are masked so no note overstays.
        """
        c, enc = derived.controls, self.encoding
        if derived.genre_input is not None:  # conditional or two-phase: the one active model's distribution
            probs = torch.softmax(tempered(self._active[0].logits[0], derived.inverse_temperature), dim=0)
        elif derived.single >= 0:
            probs = torch.softmax(tempered(self._stepper.logits[derived.single], derived.inverse_temperature), dim=0)
        else:
            probs = fuse_probs(self._stepper.logits, derived.weights, c.method, c.temperature)
        if self.on_step is not None:
            self.on_step(c, probs.log().cpu())
        if c.repeat > 0 and self._is_event:
            self._p_end = float(probs[enc.sep_id])
        probs = probs.cpu() if probs.device.type != "cpu" else probs
        probs.mul_(self._mask_tensor)
        if c.repeat > 0 and self._sections.leaning:
            self._sections.lean(probs[enc.on_base : enc.on_base + 128].numpy())
        values = probs.tolist()
        if self._is_event:
            if len(self._decoder.state.open_notes) >= c.max_polyphony:
                values[enc.on_base : enc.off_base] = self._zeros[: enc.off_base - enc.on_base]
            room_steps = self._steering.apply(values, c, float(self._decoder.beat), room_steps)
            if room_steps < enc.max_shift_steps:
                start = enc.shift_base + room_steps
                values[start : enc.velocity_base] = self._zeros[: enc.velocity_base - start]
        return values

    def _note_length_guard(self, max_steps: int) -> tuple[int | None, int]:
        """(token closing a note held ``max_steps`` grid steps or None, steps left to the oldest note's limit)."""
        state = self._decoder.state
        room = 1 << 30  # nothing sounding: no limit on the next shift
        for pitch, (on_step, _) in state.open_notes.items():
            age = state.now_steps - on_step
            if age >= max_steps:
                return (self.encoding.off_base + pitch if self._is_event else self.encoding.shift_tokens(1)[0]), 0
            room = min(room, max_steps - age)
        return None, room

    def _advance(self, token: int) -> None:
        for stepper in self._active:
            stepper.step(token)
        self._history[self._written % HISTORY_TOKENS] = token
        self._written += 1
        self._lookback.push(token)
        self._track(token)

    def _track(self, token: int) -> None:
        """Feed the decoder; keep the note-off mask equal to the sounding pitches; count onsets (form, key budget)."""
        events = self._decoder.feed(token)
        if not self._is_event:
            return
        out_of_key = self._derived.out_of_key
        for event in events:
            if event.on:
                self._steering.onset(float(event.beat), event.pitch, self._performer)
                if not self._performer:
                    self._sections.onset(self._decoder.state.now_steps, event.pitch)
                    if out_of_key is not None and self._key_budget.onset(out_of_key[event.pitch]):
                        self._combine_masks()
            index = self.encoding.off_base + event.pitch
            self._off_mask[index] = 1.0 if event.on else 0.0
            self._mask[index] = self._off_mask[index] * self._derived.mask[index]


def _seed(seed: int | None) -> int:
    return seed if seed is not None else int.from_bytes(os.urandom(8), "little") >> 1
