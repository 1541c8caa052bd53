"""The performer's live controls: one frozen value, swapped whole, never mutated.

The TUI, MIDI CC knobs and presets all produce new ``Controls`` values; the
engine thread picks up the newest one before its next step. Because a value is
immutable, a reader never sees half an update and no lock is shared. Every
field's range, step, label and CC scaling is its entry in the control registry
(``rtgen.controls``), which checks each value on creation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from rtgen.controls import WEIGHT_PREFIX, ControlError, check, normalise

FusionMethod = Literal["mixture", "product", "conditional", "two-phase"]  # rtgen.controls.FUSION_METHODS
SamplingMode = Literal["sample", "argmax", "hybrid"]  # rtgen.controls.SAMPLING_MODES


@dataclass(frozen=True)
class Controls:
    """What the performer steers while rtgen plays; the defaults are here, the ranges in ``rtgen.controls``."""

    weights: dict[str, float] = field(default_factory=dict)  # genre -> relative weight; not all zero
    method: FusionMethod = "mixture"  # how genre distributions combine
    temperature: float = 1.0  # below 1 sharpens, above 1 flattens
    top_k: int = 0  # keep the k likeliest tokens; 0 = off
    top_p: float = 1.0  # nucleus mass; 1 = off
    sampling: SamplingMode = "sample"  # stochastic, argmax, or the hybrid of both
    scale_lock: bool = False  # constrain note-ons to `key`
    key: str = "auto"  # "auto" (from the seed phrase) or e.g. "C major", "A minor", "D dorian"
    pitch_min: int = 36  # lowest MIDI pitch a note-on may have
    pitch_max: int = 96  # highest MIDI pitch a note-on may have
    max_polyphony: int = 4  # note-ons beyond this many sounding notes are masked
    max_note_beats: float = 4.0  # a note still sounding after this long is closed
    repeat: float = 0.0  # share of probability moved to what followed the current context before (form)
    key_prior: float = 0.0  # out-of-key note-ons scaled by 1 - key_prior while rtgen is more out of key than its genres
    variation: float = 0.5  # share of a restated section's bars re-sampled: 0 literal, 0.5 the genres' own, 1 all
    density: float = 0.0  # notes a beat rtgen leans toward; 0 = the models' own (rtgen.engine.steering)
    register: float = 0.0  # 0 = off, else the MIDI pitch note-ons are pulled toward
    register_width: float = 12.0  # semitones: how wide that pull is (a Gaussian's deviation)
    rhythm_temperature: float = 1.0  # the time shifts re-tempered among themselves
    pitch_temperature: float = 1.0  # the note-ons re-tempered among themselves
    motif: float = 0.0  # how strongly rtgen reuses the primed phrase's intervals and rhythm
    follow: bool = False  # the genre weights follow the classifier's reading of the performer (rtgen.daemon.follow)
    expression: float = 0.7  # velocity and timing as played (rtgen.live.expression); 0 = as decoded, bit for bit
    swing: float = 0.0  # the off-beat eighth at 1/2 + swing/3 of the beat: 0 straight, 0.5 triplet (2:1), 0.75 dotted

    def __post_init__(self) -> None:
        for genre, weight in self.weights.items():
            check(WEIGHT_PREFIX + genre, weight)
        if self.weights and not any(self.weights.values()):
            raise ControlError("all genre weights are zero; give at least one genre a weight above 0")
        for f in dataclasses.fields(self):
            if f.name != "weights":
                check(f.name, getattr(self, f.name))
        if self.pitch_min > self.pitch_max:
            raise ControlError(f"pitch range {self.pitch_min}-{self.pitch_max} invalid: pitch_min above pitch_max")

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
