"""The performer's live controls: one frozen value, swapped whole, never mutated.

The TUI, MIDI CC knobs and presets all produce new ``Controls`` values; the
engine thread picks up the newest one before its next step. Because a value is
immutable, a reader never sees half an update and no lock is shared.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from rtgen.errors import RtgenError
from rtgen.live.expression import EXPRESSION_DEFAULT, SWING_MAX

FusionMethod = Literal["mixture", "product", "conditional", "two-phase"]
SamplingMode = Literal["sample", "argmax", "hybrid"]
FUSION_METHODS: tuple[str, ...] = ("mixture", "product", "conditional", "two-phase")
SAMPLING_MODES: tuple[str, ...] = ("sample", "argmax", "hybrid")


class ControlError(RtgenError):
    """A control value out of its range; the message names the control."""


@dataclass(frozen=True)
class Controls:
    """What the performer steers while rtgen plays; every field has a range checked on creation."""

    weights: dict[str, float] = field(default_factory=dict)  # genre -> weight >= 0, any scale (the paper's 1-10 works)
    method: FusionMethod = "mixture"  # how genre distributions combine
    temperature: float = 1.0  # > 0; below 1 sharpens, above 1 flattens
    top_k: int = 0  # keep the k likeliest tokens; 0 = off
    top_p: float = 1.0  # nucleus mass in (0, 1]; 1 = off
    sampling: SamplingMode = "sample"  # stochastic, argmax, or the hybrid of both
    scale_lock: bool = False  # constrain note-ons to `key`
    key: str = "auto"  # "auto" (from the seed phrase) or e.g. "C major", "A minor", "D dorian"
    pitch_min: int = 36  # lowest MIDI pitch a note-on may have
    pitch_max: int = 96  # highest MIDI pitch a note-on may have
    max_polyphony: int = 4  # note-ons beyond this many sounding notes are masked
    max_note_beats: float = 4.0  # a note still sounding after this long is closed
    repeat: float = 0.0  # 0-0.95: share of probability moved to what followed the current context before (form)
    key_prior: float = 0.0  # 0-1: out-of-key note-ons scaled by 1 - key_prior (key of `key`, or the seed's)
    density: float = 0.0  # 0-16 notes a beat rtgen leans toward; 0 = the models' own (rtgen.engine.steering)
    register: float = 0.0  # 0 = off, else 1-127: the MIDI pitch note-ons are pulled toward
    register_width: float = 12.0  # 1-48 semitones: how wide that pull is (a Gaussian's deviation)
    rhythm_temperature: float = 1.0  # 0.1-4: the time shifts re-tempered among themselves
    pitch_temperature: float = 1.0  # 0.1-4: the note-ons re-tempered among themselves
    motif: float = 0.0  # 0-1: how strongly rtgen reuses the primed phrase's intervals and rhythm
    follow: bool = False  # the genre weights follow the classifier's reading of the performer (rtgen.daemon.follow)
    expression: float = (
        EXPRESSION_DEFAULT  # 0-1: velocity and timing shaped as played (rtgen.live.expression); 0 = as decoded
    )
    swing: float = 0.0  # 0-0.75: the off-beat eighth moves from 1/2 to 1/2 + swing/3 of the beat (0.5 = triplet 2:1)

    def __post_init__(self) -> None:
        for genre, weight in self.weights.items():
            if weight < 0:
                raise ControlError(f"weight of {genre!r} is {weight}; weights must be >= 0")
        if self.weights and not any(self.weights.values()):
            raise ControlError("all genre weights are zero; give at least one genre a weight above 0")
        if self.method not in FUSION_METHODS:
            raise ControlError(f"method {self.method!r} is not one of {', '.join(FUSION_METHODS)}")
        if self.sampling not in SAMPLING_MODES:
            raise ControlError(f"sampling {self.sampling!r} is not one of {', '.join(SAMPLING_MODES)}")
        _check(self.temperature > 0, f"temperature {self.temperature} must be > 0")
        _check(self.top_k >= 0, f"top_k {self.top_k} must be >= 0")
        _check(0 < self.top_p <= 1, f"top_p {self.top_p} must be in (0, 1]")
        _check(0 <= self.pitch_min <= self.pitch_max <= 127, f"pitch range {self.pitch_min}-{self.pitch_max} invalid")
        _check(self.max_polyphony >= 1, f"max_polyphony {self.max_polyphony} must be >= 1")
        _check(self.max_note_beats > 0, f"max_note_beats {self.max_note_beats} must be > 0")
        _check(0 <= self.repeat <= 0.95, f"repeat {self.repeat} must be in 0-0.95")
        _check(0 <= self.key_prior <= 1, f"key_prior {self.key_prior} must be in 0-1")
        _check(0 <= self.density <= 16, f"density {self.density} must be in 0-16 notes a beat")
        _check(0 <= self.register <= 127, f"register {self.register} must be in 0-127 (0 = off)")
        _check(1 <= self.register_width <= 48, f"register_width {self.register_width} must be in 1-48")
        for name in ("rhythm_temperature", "pitch_temperature"):
            _check(0.1 <= getattr(self, name) <= 4, f"{name} {getattr(self, name)} must be in 0.1-4")
        _check(0 <= self.motif <= 1, f"motif {self.motif} must be in 0-1")
        _check(0 <= self.expression <= 1, f"expression {self.expression} must be in 0-1")
        _check(0 <= self.swing <= SWING_MAX, f"swing {self.swing} must be in 0-{SWING_MAX}")

    def replace(self, **changes: object) -> Controls:
        """A new value with ``changes`` applied and checked; unknown names are refused by name."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ControlError(f"unknown control {unknown[0]!r}; expected one of {', '.join(sorted(known))}")
        return dataclasses.replace(self, **changes)

    def normalised_weights(self, genres: tuple[str, ...]) -> tuple[float, ...]:
        """Weights for ``genres`` in that order, summing to 1; a genre not named weighs 0."""
        try:
            return normalise([self.weights.get(g, 0.0) for g in genres])
        except ControlError:
            raise ControlError(f"no weight above 0 for the loaded genres {', '.join(genres)}") from None


def normalise(weights) -> tuple[float, ...]:
    """Genre weights (any non-negative scale) -> the same proportions summing to 1: the one home of that rule.

    A negative, infinite or NaN weight, or all weights zero, raises ``ControlError``.
    """
    values = [float(w) for w in weights]
    if any(not (0.0 <= w < float("inf")) for w in values):
        raise ControlError(f"genre weights must be finite and >= 0, got {values}")
    total = sum(values)
    if total <= 0:
        raise ControlError("all genre weights are zero; give at least one genre a weight above 0")
    return tuple(w / total for w in values)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ControlError(message)


def parse_weights(text: str) -> dict[str, float]:
    """``"folk=5,fiddle=2.5"`` (or ``"folk,fiddle"``, weight 1 each) as a genre -> weight dict, for ``--genres``."""
    weights: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        try:
            weights[name.strip()] = float(value) if value else 1.0
        except ValueError:
            raise ControlError(
                f"--genres: weight {value!r} of {name!r} is not a number (expected e.g. folk=5)"
            ) from None
    if not weights:
        raise ControlError("--genres: no genre named; expected e.g. folk=5,fiddle=5")
    return weights
