"""Expression: the decoder's notes made into played ones, after decoding, for every model and encoding.

The decoder gives every note the velocity of its velocity token (79 in
practice: the corpora carry no dynamics) and an onset on the grid. A player
shapes both; the rules here are a small subset of the KTH rule system for
musical performance (Friberg, Bresin and Sundberg 2006, "Overview of the KTH
rule system for musical performance"), each a deviation in MIDI velocity or
beats at ``expression`` 1, scaled by ``expression`` (0-1):

* metric accent: downbeat > the bar's middle > other beats > off-beats
  (KTH's metrical and beat rules, as a groove template's accent map);
* phrase arch: a crescendo to the phrase's high point and a softer end
  (KTH Phrase arch); a phrase is a call-and-response answer, or a 4-bar
  unit of the hypermeter in solo and duet, or offline the same 4 bars with
  the peak at their highest note;
* high-loud: a note louder the higher it lies above the melody's running
  register (KTH High loud);
* ritardando: in solo and offline, the last bar of each section slows,
  and the next section starts on its bar line again (KTH Final ritard, made
  to keep phase with the clock a DAW follows). The sections are the
  engine's (its cadences and restatements, ``Shaper.section_end``; offline,
  ``express_notes``'s ``section_ends``), and the phrase arch's soft end
  lands on a section end known ahead; an engine without sections gets
  8-bar ones counted from where the voice began;
* the performer: the level and spread of the call's velocities (or, in
  duet, of the notes as they come) set rtgen's level and range.

``swing`` (0-0.75, its own control; ranges and defaults are the control
registry's, ``rtgen.controls``) delays the off-beat of each pair of
eighths (or sixteenths) the way a DAW's groove template does: the off-beat
moves from 1/2 of the pair to ``1/2 + swing/3``, so 0.5 is the triplet
feel (2:1, MPC swing 66 %) and 0.75 the dotted one (3:1, MPC 75 %).

Timing is one strictly increasing map of the beat (swing, then the
ritardando), so no event overtakes another and every note-off stays after
its note-on; ``Shaper`` clamps besides, so a swing moved mid-note cannot
reorder a pair either. At ``expression`` 0 and ``swing`` 0 every velocity
and beat is the decoder's, bit for bit.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from rtgen.encoding import Note
from rtgen.errors import RtgenError

LEVEL_FULL_AT = 0.5  # from this ``expression`` up, rtgen's level is the performer's (below: part of the way)
# Metric accents, velocity at expression 1, by the finest grid a position lies on (a bar of 4/4 shown)
ACCENT_DOWNBEAT, ACCENT_MIDDLE, ACCENT_BEAT = 24.0, 12.0, 4.0  # beat 1, beat 3, beats 2 and 4
ACCENT_EIGHTH, ACCENT_TRIPLET, ACCENT_FINE = -6.0, -8.0, -10.0  # the "and", a triplet's 2nd/3rd, sixteenths
ARCH_START, ARCH_PEAK, ARCH_END = -10.0, 16.0, -22.0  # phrase arch, velocity at expression 1
ARCH_PEAK_AT = 0.6  # where the arch peaks in a phrase whose high point is not known ahead (live)
HIGH_PER_SEMITONE, HIGH_MAX = 2.0, 18.0  # high-loud: velocity a semitone above the running register, cap
REGISTER_ALPHA = 0.15  # the running register: an exponential mean over about the last 7 notes
RITARD_BEATS = 0.25  # a section's last notes come this much late at most, at expression 1
RITARD_CAP = 0.5  # ... and never later than this share of the time left to the section's end
REFERENCE_SPREAD = 12.0  # the performer's velocity deviation at which rtgen's rules have their own size
SPREAD_LIMITS = (0.5, 2.0)  # rtgen's range follows the performer's within these factors
DUET_ALPHA = 0.2  # duet: the performer's level and spread as exponential means over about the last 5 notes


@dataclass(frozen=True)
class Meter:
    """The grid expression reads: bar length, the hypermeter, the swung unit (beats are quarter notes)."""

    beats_per_bar: int = 4  # 1-16
    phrase_bars: int = 4  # a phrase arch spans this many bars in solo, duet and offline
    section_bars: int = 8  # a ritardando closes each section of this many bars (solo, offline)
    swing_beats: float = 1.0  # the swung pair: 1 = eighths, 0.5 = sixteenths

    def __post_init__(self) -> None:
        if not 1 <= self.beats_per_bar <= 16 or self.phrase_bars < 1 or self.section_bars < 1:
            raise RtgenError("beats_per_bar 1-16, phrase_bars >= 1 and section_bars >= 1 are required")
        if self.swing_beats not in (0.5, 1.0):
            raise RtgenError(f"swing_beats {self.swing_beats} must be 0.5 (sixteenths) or 1 (eighths)")


@dataclass(frozen=True)
class Performer:
    """The performer's dynamics: mean velocity and how far rtgen's range follows their spread."""

    level: float  # mean MIDI velocity, 1-127
    range: float = 1.0  # rtgen's rule sizes times this, within SPREAD_LIMITS

    @classmethod
    def from_velocities(cls, velocities: Sequence[int]) -> Performer | None:
        """The performer a phrase's velocities describe; None for an empty phrase."""
        if not velocities:
            return None
        level = sum(velocities) / len(velocities)
        spread = math.sqrt(sum((v - level) ** 2 for v in velocities) / len(velocities))
        return cls(level, spread_factor(spread))


def spread_factor(spread: float) -> float:
    """A velocity deviation -> the factor rtgen's rule sizes take, within ``SPREAD_LIMITS``."""
    low, high = SPREAD_LIMITS
    return min(high, max(low, spread / REFERENCE_SPREAD))


def metric_accent(beat: float, beats_per_bar: int) -> float:
    """Velocity at expression 1 for an onset at absolute ``beat`` (bar lines at multiples of the bar)."""
    scaled = (beat % beats_per_bar) * 12  # 12 steps a beat hold eighths, triplets and sixteenths
    step = round(scaled)
    if abs(scaled - step) > 1e-6:
        return ACCENT_FINE
    if step % 12:
        return ACCENT_EIGHTH if step % 6 == 0 else ACCENT_TRIPLET if step % 4 == 0 else ACCENT_FINE
    if step == 0 or step == 12 * beats_per_bar:
        return ACCENT_DOWNBEAT
    return ACCENT_MIDDLE if beats_per_bar % 2 == 0 and beats_per_bar > 2 and step == 6 * beats_per_bar else ACCENT_BEAT


def arch(x: float, peak: float = ARCH_PEAK_AT) -> float:
    """Velocity at expression 1 at ``x`` (0-1) through a phrase peaking at ``peak`` (0-1 exclusive)."""
    x = min(1.0, max(0.0, x))
    if x < peak:
        rise = 1.0 - (1.0 - x / peak) ** 2
        return ARCH_START + (ARCH_PEAK - ARCH_START) * rise
    fall = ((x - peak) / (1.0 - peak)) ** 2
    return ARCH_PEAK + (ARCH_END - ARCH_PEAK) * fall


def high_loud(pitch: int, register: float) -> float:
    """Velocity at expression 1 for ``pitch`` against the running ``register`` (a MIDI pitch)."""
    return min(HIGH_MAX, max(-HIGH_MAX, HIGH_PER_SEMITONE * (pitch - register)))


def swung(beat: float, swing: float, pair_beats: float = 1.0) -> float:
    """``beat`` moved by a swing of 0-0.75: the pair's off-beat at ``1/2 + swing/3``, a piecewise-linear warp."""
    if swing <= 0.0:
        return beat
    start = math.floor(beat / pair_beats) * pair_beats
    u = (beat - start) / pair_beats
    middle = 0.5 + swing / 3.0
    warped = u * 2.0 * middle if u < 0.5 else middle + (u - 0.5) * 2.0 * (1.0 - middle)
    return start + warped * pair_beats


def ritardando(beat: float, section_end: float, window_beats: float, amount: float) -> float:
    """``beat`` slowed into ``section_end``: late by up to ``RITARD_BEATS x amount`` over the last window.

    The delay grows with the square of the way through the window (a
    decelerating runner, as KTH's final ritard) and is capped at
    ``RITARD_CAP`` of the time left, so the section end itself stays put and
    the map stays strictly increasing (slope >= 1 - RITARD_CAP).
    """
    start = section_end - window_beats
    if amount <= 0.0 or not start < beat < section_end:
        return beat
    x = (beat - start) / window_beats
    return beat + min(RITARD_BEATS * amount * x * x, RITARD_CAP * (section_end - beat))


def performer_level(amount: float) -> float:
    """How much of the way from the decoder's velocity to the performer's level rtgen goes (0-1)."""
    return min(1.0, amount / LEVEL_FULL_AT)


def clamp_velocity(velocity: float) -> int:
    return min(127, max(1, round(velocity)))


class Shaper:
    """Expression for one stream of note events at absolute clock beats; the engine thread owns it.

    Per event it does a few float operations and one dict entry: no tensor,
    no lock. ``begin`` frames a new voice (an answer, or solo and duet from
    their first beat); ``hear_call`` and ``hear`` take the performer's
    velocities; ``note_on`` and ``note_off`` turn a decoded event into the
    played one. ``amount`` is the ``expression`` control (0-1) and ``swing``
    the ``swing`` control (0-0.75), read by the caller from the live controls.
    """

    def __init__(self, meter: Meter | None = None) -> None:
        self.meter = meter or Meter()
        self.performer: Performer | None = None
        self.solo = False  # ritardandos close the sections
        self.peaks: dict[int, float] = {}  # phrase index -> where its arch peaks (0-1), when known ahead
        self.end: float | None = None  # offline: the piece's end (beats), where its last section ends
        # Clock beat where the engine's section under way closes (inf: not known yet), set before each event;
        # None: the engine has no sections, so they are ``meter.section_bars`` long from the voice's start
        self.section_end: float | None = None
        self._origin = 0.0  # bar line the hypermeter counts from (beats)
        self._answer: tuple[float, float] | None = None  # (start, end) beats of an answer: one phrase
        self._register: float | None = None  # the melody's running mean pitch
        self._last_on = -math.inf  # the latest played onset (beats)
        self._on_at: dict[int, float] = {}  # pitch -> played beat of its sounding note-on
        self._duet_spread = REFERENCE_SPREAD  # duet: running velocity deviation

    def begin(self, start_beat: float, end_beat: float | None = None, *, solo: bool = False) -> None:
        """A new voice from ``start_beat``: an answer ending at ``end_beat``, or (None) a stream of phrases.

        ``solo``: rtgen plays alone, so the performer's dynamics are forgotten.
        """
        bar = self.meter.beats_per_bar
        self._origin = math.floor(start_beat / bar) * bar
        self._answer = (start_beat, end_beat) if end_beat is not None and end_beat > start_beat else None
        self.solo = solo and end_beat is None
        if self.solo:
            self.performer = None
        self._last_on = -math.inf  # what the last voice planned beyond now was cancelled with it
        self._on_at.clear()
        self.section_end = None

    def hear_call(self, velocities: Sequence[int]) -> None:
        """A call's velocities: its level and spread are what the answer follows."""
        self.performer = Performer.from_velocities(velocities) or self.performer

    def hear(self, velocity: int) -> None:
        """Duet: one of the performer's onsets, folded into running level and spread."""
        if self.performer is None:
            self.performer = Performer(float(velocity), spread_factor(self._duet_spread))
            return
        level = self.performer.level + DUET_ALPHA * (velocity - self.performer.level)
        self._duet_spread += DUET_ALPHA * (abs(velocity - level) * math.sqrt(math.pi / 2) - self._duet_spread)
        self.performer = Performer(level, spread_factor(self._duet_spread))

    def note_on(self, beat: float, pitch: int, velocity: int, amount: float, swing: float) -> tuple[float, int]:
        """The played (beat, velocity) of a decoded note-on; never earlier than the previous played onset."""
        played = max(self.time(beat, amount, swing), self._last_on)
        self._last_on = played
        self._on_at[pitch] = played
        return played, self.velocity(beat, pitch, velocity, amount)

    def note_off(self, beat: float, pitch: int, amount: float, swing: float) -> float:
        """The played beat of a decoded note-off; never before its own note-on."""
        return max(self.time(beat, amount, swing), self._on_at.pop(pitch, -math.inf))

    def time(self, beat: float, amount: float, swing: float) -> float:
        """Swing, then (solo) the ritardando into the section's end: a strictly increasing map of ``beat``."""
        meter = self.meter
        played = swung(beat, swing, meter.swing_beats)
        if self.solo and amount > 0.0:
            end = self.section_end
            if end is None:
                section = meter.section_bars * meter.beats_per_bar
                end = self._origin + (math.floor((played - self._origin) / section) + 1) * section
            if self.end is not None and played < self.end:
                end = min(end, self.end)
            played = ritardando(played, end, meter.beats_per_bar, amount)  # an end not known (inf): as it was
        return played

    def velocity(self, beat: float, pitch: int, velocity: int, amount: float) -> int:
        """The played velocity of a decoded one (``beat`` on the grid, before any swing)."""
        register = self._register = pitch if self._register is None else self._register
        self._register = register + REGISTER_ALPHA * (pitch - register)
        if amount <= 0.0:
            return velocity
        x, peak = self._phrase_position(beat)
        shape = metric_accent(beat, self.meter.beats_per_bar) + arch(x, peak) + high_loud(pitch, register)
        performer = self.performer
        if performer is None:
            return clamp_velocity(velocity + amount * shape)
        level = velocity + performer_level(amount) * (performer.level - velocity)
        return clamp_velocity(level + amount * performer.range * shape)

    def _phrase_position(self, beat: float) -> tuple[float, float]:
        """(how far through its phrase ``beat`` lies, 0-1; where that phrase peaks)."""
        if self._answer is not None:
            start, end = self._answer
            return (beat - start) / (end - start), ARCH_PEAK_AT
        length = self.meter.phrase_bars * self.meter.beats_per_bar
        end = self.section_end
        if end is not None and 0.0 < end - beat <= length:  # the section's last phrase ends with it
            return 1.0 - (end - beat) / length, ARCH_PEAK_AT
        index, offset = divmod(beat - self._origin, length)
        return offset / length, self.peaks.get(int(index), ARCH_PEAK_AT)


def express_notes(
    notes: Sequence[Note],
    amount: float,
    swing: float,
    performer: Performer | None = None,
    meter: Meter | None = None,
    ticks_per_beat: int = 480,
    section_ends: Sequence[float] | None = None,
) -> list[Note]:
    """Offline: ``notes`` (beats from a bar line) played as solo, on a grid of ``ticks_per_beat``, in sorted order.

    Each 4-bar phrase's arch peaks at its highest note (the whole piece is
    known here), the piece's last bar slows like every section's, and the
    seed phrase, when it is the performer's, sets level and range. The
    sections end at ``section_ends`` (sorted beats: the engine's form, from
    ``rtgen.engine.offline.generate_notes``), or, None, every 8 bars. With
    ``amount`` 0 and ``swing`` 0 the notes come back as they were.
    """
    shaper = Shaper(meter)
    shaper.begin(0.0, solo=True)
    shaper.performer = performer
    ordered = sorted(notes)
    shaper.peaks = high_points(ordered, shaper.meter)
    bar = shaper.meter.beats_per_bar
    shaper.end = math.ceil(max((float(n.end) for n in ordered), default=0.0) / bar - 1e-9) * bar
    out = []
    for note in ordered:
        start, stop = float(note.start), float(note.end)
        shaper.section_end = _next_end(section_ends, start)
        velocity = shaper.velocity(start, note.pitch, note.velocity, amount)
        if amount == 0.0 and swing == 0.0:
            out.append(Note(note.start, note.pitch, note.duration, velocity))
            continue
        played_start = _tick(shaper.time(start, amount, swing), ticks_per_beat)
        shaper.section_end = _next_end(section_ends, stop)
        played_stop = _tick(shaper.time(stop, amount, swing), ticks_per_beat)
        duration = max(Fraction(1, ticks_per_beat), played_stop - played_start)
        out.append(Note(played_start, note.pitch, duration, velocity))
    return out


@dataclass(frozen=True)
class Dynamics:
    """How a piece was played: velocity mean and deviation, and mean velocity by place in the bar (None: no note)."""

    mean: float
    deviation: float
    downbeats: float | None  # notes on a bar line
    beats: float | None  # notes on the other beats
    off_beats: float | None  # notes between beats

    def line(self) -> str:
        def show(value: float | None) -> str:
            return "none" if value is None else f"{value:.1f}"

        return (
            f"velocity mean {self.mean:.1f}, deviation {self.deviation:.1f}; downbeats {show(self.downbeats)}, "
            f"other beats {show(self.beats)}, off-beats {show(self.off_beats)}"
        )


def dynamics(composed: Sequence[Note], played: Sequence[Note], beats_per_bar: int = 4) -> Dynamics:
    """``Dynamics`` of ``played``, each note placed in the bar by its ``composed`` twin (same order)."""
    velocities = [n.velocity for n in played]
    mean = sum(velocities) / len(velocities) if velocities else 0.0
    deviation = math.sqrt(sum((v - mean) ** 2 for v in velocities) / len(velocities)) if velocities else 0.0
    places: tuple[list[int], list[int], list[int]] = ([], [], [])
    for c, p in zip(composed, played, strict=True):
        place = 0 if c.start % beats_per_bar == 0 else 1 if c.start % 1 == 0 else 2
        places[place].append(p.velocity)
    down, beats, off = (sum(v) / len(v) if v else None for v in places)
    return Dynamics(mean, deviation, down, beats, off)


def high_points(notes: Sequence[Note], meter: Meter) -> dict[int, float]:
    """Phrase index -> where in its 4-bar phrase the highest note starts (0.2-0.85: an arch needs both sides)."""
    length = meter.phrase_bars * meter.beats_per_bar
    best: dict[int, Note] = {}
    for note in notes:
        index = int(note.start // length)
        if index not in best or note.pitch > best[index].pitch:
            best[index] = note
    return {i: min(0.85, max(0.2, float(n.start - i * length) / length)) for i, n in best.items()}


def _next_end(ends: Sequence[float] | None, beat: float) -> float | None:
    """The first of ``ends`` (sorted) after ``beat``: inf past the last; None when there are none to follow."""
    if ends is None:
        return None
    index = bisect.bisect_right(ends, beat)
    return ends[index] if index < len(ends) else math.inf


def _tick(beat: float, ticks_per_beat: int) -> Fraction:
    return Fraction(max(0, round(beat * ticks_per_beat)), ticks_per_beat)
