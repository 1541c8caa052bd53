"""Duet: the performer's notes change what rtgen plays, not how much.

Fed into the models, a performer's dense playing reads as a stream already
full: a monophonic model waits for the performer's notes to end, a chordal
one hears its polyphony used up, and rtgen falls silent (measured over JACK:
40 notes in 10 s alone, 4 with block chords four times a second). So when
the performer starts playing, ``DensityHold`` remembers how many notes a beat
rtgen played over the beats before, and while the performer keeps playing it
scales rtgen's note-on probabilities by how far its own rate has fallen
below (or risen above) that. All times are beats of the engine's stream.
"""

from __future__ import annotations

from collections import deque

WINDOW_BEATS = 4.0  # rtgen's own rate is counted over this many beats
HOLD_BEATS = 4.0  # the hold lasts this long after the performer's last note-on
MAX_FACTOR = 64.0  # the largest boost (and, inverted, cut) of the note-on probabilities
EASE = 0.25  # notes a beat added to both rates, so a silent stretch gives a finite ratio


class DensityHold:
    """rtgen's own onsets and the performer's, and the note-on factor that keeps rtgen's rate."""

    def __init__(self) -> None:
        self._own: deque[float] = deque(maxlen=256)  # beats of rtgen's note-ons, oldest first
        self._target: float | None = None  # notes a beat rtgen played before the performer came in
        self._performer_beat = float("-inf")  # beat of the performer's last note-on

    def reset(self) -> None:
        self._own.clear()
        self._target = None
        self._performer_beat = float("-inf")

    def own_onset(self, beat: float) -> None:
        self._own.append(beat)

    def performer_onset(self, beat: float) -> None:
        if beat - self._performer_beat > HOLD_BEATS:  # the performer (re)enters: hold the rate rtgen had
            self._target = self.rate(beat)
        self._performer_beat = beat

    def rate(self, beat: float) -> float:
        """rtgen's own note-ons a beat over the last ``WINDOW_BEATS`` (or since the stream began)."""
        span = min(WINDOW_BEATS, max(beat, 1.0))
        return sum(1 for b in self._own if b > beat - span) / span

    def target(self, beat: float, wanted: float | None = None) -> float | None:
        """The rate to keep at ``beat``: ``wanted`` (the density control) when set, else the held one
        while a performer plays, else None."""
        if wanted:
            return wanted
        if self._target is None or beat - self._performer_beat > HOLD_BEATS:
            return None
        return self._target

    def factor(self, beat: float, wanted: float | None = None) -> float:
        """What rtgen's note-on probabilities are multiplied by at ``beat``; 1 with nothing to keep."""
        target = self.target(beat, wanted)
        return 1.0 if target is None else lean_factor(target, self.rate(beat))


def lean_factor(target: float, rate: float) -> float:
    """How much to scale note starts to move a rate of ``rate`` notes a beat toward ``target``."""
    ratio = ((target + EASE) / (rate + EASE)) ** 2
    return min(MAX_FACTOR, max(1.0 / MAX_FACTOR, ratio))


def shift_cap_steps(target: float, steps_per_beat: int) -> int:
    """The longest time shift (grid steps) allowed while the rate is being raised: two of rtgen's own
    inter-onset intervals at the target rate."""
    return max(1, round(2.0 * steps_per_beat / target))


def scale_range(values: list[float], start: int, stop: int, factor: float) -> None:
    """Multiply ``values[start:stop]`` by ``factor`` in place (masked tokens stay 0)."""
    for i in range(start, stop):
        values[i] *= factor
