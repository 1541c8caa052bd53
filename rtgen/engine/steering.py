"""Steering beyond temperature: live controls that reshape the fused distribution, each a pure function.

* ``density`` (notes a beat, 0 = off): rtgen's own note-ons over the last
  beats are counted; the tokens that start a note (velocity and note-on) are
  scaled by how far that rate is from the target (``lean_factor``), and the
  time shifts are tilted toward short rests or long ones (``tilt_shifts``);
  while it is raising the rate, rests longer than two notes' worth are cut.
* ``register`` and ``register_width`` (a pitch centre, semitones): note-ons
  are weighted by a Gaussian around the centre (``register_weights``), a
  pull rather than the range mask's clip; built into the controls' mask.
* ``rhythm_temperature`` and ``pitch_temperature``: the time-shift tokens and
  the note-on tokens are re-tempered among themselves (``temper_group``),
  each group keeping its mass, so how adventurous the rhythm is and how
  adventurous the pitches are can be set apart (Notochord splits them too).
* ``motif`` (0-1): the intervals and inter-onset times of the primed phrase
  (the performer's call, or the seed) are suggested again from rtgen's own
  last note, and the suggestion gets that share of its group's mass
  (``lean_within``): 0 is free, 1 a variation of the call.

Without a ``density`` target, ``DensityHold`` (``rtgen.engine.density``)
keeps rtgen's rate through a performer's dense playing in duet.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rtgen.engine.density import DensityHold, lean_factor, scale_range, shift_cap_steps


def register_weights(centre: float, width: float) -> list[float]:
    """[128] note-on weights: 1 at ``centre`` (MIDI pitch), falling as a Gaussian of ``width`` semitones."""
    return [math.exp(-0.5 * ((pitch - centre) / width) ** 2) for pitch in range(128)]


def temper_group(values: list[float], start: int, stop: int, inverse_temperature: float) -> None:
    """Re-temper ``values[start:stop]`` among themselves (p -> p^(1/T)), keeping their total mass; in place."""
    mass = sum(values[start:stop])
    if inverse_temperature == 1.0 or mass <= 0:
        return
    top = max(values[start:stop])
    powered = [(v / top) ** inverse_temperature if v > 0 else 0.0 for v in values[start:stop]]
    values[start:stop] = [v * mass / sum(powered) for v in powered]


def tilt_shifts(values: list[float], start: int, count: int, steps_per_beat: int, exponent: float) -> None:
    """Weight the time shift of s grid steps by (s / a beat) ** ``exponent``: below 0 favours short rests."""
    for s in range(1, count + 1):
        values[start + s - 1] *= (s / steps_per_beat) ** exponent


def lean_within(values: list[float], start: int, stop: int, token: int, strength: float) -> None:
    """Give ``token`` ``strength`` (0-1) of the mass of ``values[start:stop]``, the rest scaled down; in place.

    A token the masks ruled out stays out, and the group's total mass (how
    likely a note or a rest is at all) is kept.
    """
    if strength <= 0 or not start <= token < stop or values[token] <= 0:
        return
    mass = sum(values[start:stop])
    for i in range(start, stop):
        values[i] *= 1.0 - strength
    values[token] += strength * mass


class Motif:
    """The primed phrase's melody as intervals and inter-onset steps, and where rtgen's own line stands in it."""

    def __init__(self) -> None:
        self.intervals: list[int] = []
        self.gaps: list[int] = []  # grid steps between successive onsets of the phrase
        self.reset()

    def reset(self) -> None:
        self.index = 0  # rtgen's own onsets since the phrase (chord notes count once)
        self.last_pitch: int | None = None
        self.last_step: int | None = None

    def set_phrase(self, onsets: Sequence[tuple[int, int]]) -> None:
        """``(grid step, pitch)`` of the phrase's notes; the line is the highest pitch at each step."""
        line: dict[int, int] = {}
        for step, pitch in onsets:
            line[step] = max(pitch, line.get(step, pitch))
        steps = sorted(line)
        self.intervals = [line[b] - line[a] for a, b in zip(steps, steps[1:], strict=False)]
        self.gaps = [b - a for a, b in zip(steps, steps[1:], strict=False)]
        self.reset()

    def own_onset(self, step: int, pitch: int) -> None:
        if step != self.last_step:
            self.index += 1
        self.last_step, self.last_pitch = step, pitch

    def pitch(self) -> int | None:
        """The pitch the phrase's next interval leads to from rtgen's last note, or None."""
        if not self.intervals or self.last_pitch is None:
            return None
        pitch = self.last_pitch + self.intervals[(self.index - 1) % len(self.intervals)]
        return pitch if 0 <= pitch <= 127 else None

    def rest(self, now_step: int) -> int | None:
        """Grid steps still to wait before the phrase's next onset would come, or None."""
        if not self.gaps or self.last_step is None:
            return None
        left = self.gaps[(self.index - 1) % len(self.gaps)] - (now_step - self.last_step)
        return left if left > 0 else None


class Steering:
    """The per-stream state the steering controls need (rtgen's onsets, the performer's, the motif)."""

    def __init__(self, encoding) -> None:
        self.encoding = encoding
        self.hold = DensityHold()
        self.motif = Motif()

    def reset(self) -> None:
        self.hold.reset()
        self.motif.reset()

    def onset(self, beat: float, pitch: int, performer: bool) -> None:
        if performer:
            self.hold.performer_onset(beat)
            return
        self.hold.own_onset(beat)
        self.motif.own_onset(round(beat * self.encoding.steps_per_beat), pitch)

    def apply(self, values: list[float], controls, beat: float, room_steps: int) -> int:
        """Reshape the event tokens' ``values`` in place for ``controls`` at ``beat``; the shift room left."""
        enc, c = self.encoding, controls
        target = self.hold.target(beat, c.density or None)
        if target is not None and (factor := lean_factor(target, self.hold.rate(beat))) != 1.0:
            # a note starts with its velocity token or its note-on; rests get shorter or longer
            scale_range(values, enc.on_base, enc.off_base, factor)
            scale_range(values, enc.velocity_base, len(values), factor)
            tilt_shifts(values, enc.shift_base, enc.max_shift_steps, enc.steps_per_beat, -0.5 * math.log2(factor))
            if factor > 1.0:
                room_steps = min(room_steps, shift_cap_steps(target, enc.steps_per_beat))
        if c.pitch_temperature != 1.0:
            temper_group(values, enc.on_base, enc.off_base, 1.0 / c.pitch_temperature)
        if c.rhythm_temperature != 1.0:
            temper_group(values, enc.shift_base, enc.velocity_base, 1.0 / c.rhythm_temperature)
        if c.motif > 0:
            self._lean_to_motif(values, c.motif, round(beat * enc.steps_per_beat), room_steps)
        return room_steps

    def _lean_to_motif(self, values: list[float], strength: float, now_step: int, room_steps: int) -> None:
        enc = self.encoding
        if (pitch := self.motif.pitch()) is not None:
            lean_within(values, enc.on_base, enc.off_base, enc.on_base + pitch, strength)
        if (rest := self.motif.rest(now_step)) is not None:
            steps = min(rest, room_steps, enc.max_shift_steps)
            lean_within(values, enc.shift_base, enc.velocity_base, enc.shift_base + steps - 1, strength)
