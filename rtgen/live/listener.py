"""From stamped MIDI input to phrases: the performer's notes, in beats, on the encoding's grid.

The listener is pure bookkeeping owned by the engine thread: it is handed
``(t, message)`` pairs (``t`` in seconds on the daemon's monotonic clock) and a
``beat_at(t)`` function from the clock, and turns them into ``Note`` phrases.

* Channel filter: one channel (0-15) or omni.
* Sustain pedal: while CC64 >= 64, note-offs are held and the notes end when
  the pedal is released (or when the same pitch is struck again).
* A phrase ends after ``phrase_gap_beats`` of silence (nothing sounding, pedal
  holds included), after ``onset_gap_beats`` without a new onset (a key held
  down, or a note-off lost on the way, must not keep a phrase open), or when
  it reaches ``max_phrase_beats``. Notes still sounding at a length cut are
  closed there and carried into the next phrase; at an onset-gap cut they are
  closed and set aside (their note-offs are taken quietly). A phrase needs an
  onset of its own: carried tails alone are not a call.
* A note held longer than ``stuck_note_beats`` is treated as released, and an
  incoming all-notes-off (CC 123), all-sound-off (CC 120) or system reset
  clears the listener: what is held ends and the phrase in progress is dropped.
* Quantisation: onsets and ends are rounded to the grid on the clock's
  absolute beats, so a phrase keeps its phase against the daemon's bars. The
  phrase's origin is the bar line at or before its first (rounded) onset, so
  its notes start where they fell in the bar; ``Phrase.origin_beat`` says
  which bar that was.
* Echo filter: rtgen's own output looped back into its input (a DAW's MIDI
  thru, a patch cable) is recognised by (channel, pitch, on/off) within
  ``echo_window_s`` of the time it was sent (the daemon widens the window to
  cover a long JACK period), and dropped. Sends are remembered before they
  are made, so an echo can never be judged before its send is known.
* Anything else (sysex, note-offs without note-ons, other channel messages,
  running-status fragments the port could not parse) is ignored and counted.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import mido

from rtgen.encoding import Note, quantise
from rtgen.errors import RtgenError
from rtgen.midi.messages import ALL_NOTES_OFF_CC, ALL_SOUND_OFF_CC, PEDAL_DOWN, SUSTAIN_CC

CLEARING_CCS = frozenset({ALL_NOTES_OFF_CC, ALL_SOUND_OFF_CC})


@dataclass(frozen=True)
class ListenerConfig:
    """How input becomes phrases; beats are quarter notes on the daemon's clock."""

    channel: int | None = None  # 0-15 listens to one channel; None listens to all (omni)
    phrase_gap_beats: float = 1.0  # silence that ends a phrase, > 0
    onset_gap_beats: float = 2.0  # no new onset for this long ends a phrase even with keys held, >= phrase_gap_beats
    max_phrase_beats: float = 16.0  # a phrase is cut at this length, >= phrase_gap_beats
    stuck_note_beats: float = 16.0  # a note held this long is taken as released (a lost note-off), > 0
    beats_per_bar: int = 4  # bar length, for the phrase origin, 1-16
    echo_window_s: float = 0.05  # input matching what rtgen sent this long ago is its own echo, >= 0

    def __post_init__(self) -> None:
        if self.channel is not None and not 0 <= self.channel <= 15:
            raise RtgenError(f"listener channel {self.channel} outside 0-15 (or leave it out for omni)")
        if self.phrase_gap_beats <= 0:
            raise RtgenError(f"phrase_gap_beats {self.phrase_gap_beats} must be > 0")
        if self.max_phrase_beats < self.phrase_gap_beats:
            raise RtgenError(f"max_phrase_beats {self.max_phrase_beats} must be >= phrase_gap_beats")
        if self.onset_gap_beats < self.phrase_gap_beats:
            raise RtgenError(f"onset_gap_beats {self.onset_gap_beats} must be >= phrase_gap_beats")
        if self.stuck_note_beats <= 0:
            raise RtgenError(f"stuck_note_beats {self.stuck_note_beats} must be > 0")
        if not 1 <= self.beats_per_bar <= 16:
            raise RtgenError(f"beats_per_bar {self.beats_per_bar} outside 1-16")
        if self.echo_window_s < 0:
            raise RtgenError(f"echo_window_s {self.echo_window_s} must be >= 0")


@dataclass(frozen=True)
class Phrase:
    """A finished phrase: notes in beats from ``origin_beat``, on the grid."""

    notes: tuple[Note, ...]
    origin_beat: float  # absolute clock beat of the bar line the notes count from
    end_beat: float  # absolute clock beat where the last note ended

    @property
    def length_beats(self) -> float:
        return self.end_beat - self.origin_beat


@dataclass(frozen=True, slots=True)
class Heard:
    """A note start or end as the listener accepted it (after filter, pedal and echo removal)."""

    t: float  # seconds, the input's stamp
    beat: float  # absolute clock beat at ``t``
    pitch: int
    velocity: int  # 0 for an end
    on: bool


@dataclass
class ListenerCounts:
    """Running totals for the status line; only the engine thread writes them."""

    notes_in: int = 0  # accepted note-ons
    echoes: int = 0  # messages dropped as rtgen's own output
    stuck: int = 0  # notes held past ``stuck_note_beats``, taken as released
    cleared: int = 0  # all-notes-off, all-sound-off or reset messages that cleared the listener
    filtered: int = 0  # messages on another channel
    ignored: int = 0  # malformed or irrelevant messages


class EchoFilter:
    """Remembers what rtgen sent, per (channel, pitch, on), for ``window_s`` seconds."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._sent: dict[tuple[int, int, bool], deque[float]] = defaultdict(deque)

    def remember(self, t: float, message: mido.Message) -> None:
        key = _note_key(message)
        if key is not None and self.window_s > 0:
            times = self._sent[key]
            while times and times[0] < t - self.window_s:  # forgotten here too: most sends never echo
                times.popleft()
            times.append(t)

    def is_echo(self, t: float, message: mido.Message) -> bool:
        """True (and forget that send) if ``message`` at ``t`` matches a recent send."""
        key = _note_key(message)
        times = self._sent.get(key) if key is not None else None
        if not times:
            return False
        while times and times[0] < t - self.window_s:
            times.popleft()
        # Stamps come from two threads; allow a millisecond of disorder between them.
        if times and times[0] <= t + 0.001:
            times.popleft()
            return True
        return False


def _note_key(message: mido.Message) -> tuple[int, int, bool] | None:
    if message.type == "note_on":
        return (message.channel, message.note, message.velocity > 0)
    if message.type == "note_off":
        return (message.channel, message.note, False)
    return None


class Listener:
    """Collects the performer's notes into phrases; see the module docstring for the rules."""

    def __init__(self, config: ListenerConfig, steps_per_beat: int, beat_at: Callable[[float], float]) -> None:
        self.config = config
        self.steps_per_beat = steps_per_beat
        self.beat_at = beat_at
        self.counts = ListenerCounts()
        self.echo = EchoFilter(config.echo_window_s)
        self.reset()

    def reset(self) -> None:
        """Forget the phrase in progress (a mode change or a stop)."""
        self._open: dict[int, tuple[float, int]] = {}  # pitch -> (start beat, velocity)
        self._held: set[int] = set()  # pitches released while the pedal is down
        self._aside: dict[int, float] = {}  # pitch -> start beat: held through an onset-gap cut, no longer a phrase's
        self._pedal = False
        self._done: list[tuple[float, float, int, int]] = []  # (start, end, pitch, velocity) in beats
        self._first_beat: float | None = None
        self._last_end_beat = -math.inf
        self._last_onset_beat = -math.inf
        self._onsets = 0  # onsets in the phrase in progress (carried notes are not onsets)

    @property
    def sounding(self) -> frozenset[int]:
        """Pitches the performer is holding (by key or pedal)."""
        return frozenset(self._open) | frozenset(self._aside)

    @property
    def in_phrase(self) -> bool:
        return self._first_beat is not None

    def remember_sent(self, t: float, message: mido.Message) -> None:
        """Note that rtgen sent ``message`` at ``t`` so its echo can be recognised."""
        self.echo.remember(t, message)

    def feed(self, t: float, message: mido.Message) -> list[Heard]:
        """Take one stamped input message; return the note starts/ends it caused."""
        kind = message.type
        if kind == "reset":
            return self.clear(t)
        if kind not in ("note_on", "note_off", "control_change"):
            self.counts.ignored += 1
            return []
        if self.config.channel is not None and message.channel != self.config.channel:
            self.counts.filtered += 1
            return []
        if kind == "control_change":
            if message.control in CLEARING_CCS:
                return self.clear(t)
            if message.control != SUSTAIN_CC:
                self.counts.ignored += 1
                return []
            return self._pedal_change(t, message.value >= PEDAL_DOWN)
        if self.echo.is_echo(t, message):
            self.counts.echoes += 1
            return []
        if kind == "note_on" and message.velocity > 0:
            return self._note_on(t, message.note, message.velocity)
        return self._note_off(t, message.note)

    def _note_on(self, t: float, pitch: int, velocity: int) -> list[Heard]:
        beat = self.beat_at(t)
        heard = []
        if pitch in self._aside:
            heard.append(self._release_aside(t, beat, pitch))
        if pitch in self._open:  # re-struck (often under the pedal): the old note ends here
            heard.append(self._end(t, beat, pitch))
        self._open[pitch] = (beat, velocity)
        if self._first_beat is None:
            self._first_beat = beat
        self._last_onset_beat = beat
        self._onsets += 1
        self.counts.notes_in += 1
        heard.append(Heard(t, beat, pitch, velocity, True))
        return heard

    def _note_off(self, t: float, pitch: int) -> list[Heard]:
        if pitch in self._aside:
            return [self._release_aside(t, self.beat_at(t), pitch)]
        if pitch not in self._open or pitch in self._held:
            self.counts.ignored += 1
            return []
        if self._pedal:
            self._held.add(pitch)
            return []
        return [self._end(t, self.beat_at(t), pitch)]

    def _pedal_change(self, t: float, down: bool) -> list[Heard]:
        self._pedal = down
        if down or not self._held:
            return []
        beat = self.beat_at(t)
        return [self._end(t, beat, pitch) for pitch in sorted(self._held)]

    def _end(self, t: float, beat: float, pitch: int) -> Heard:
        start, velocity = self._open.pop(pitch)
        self._held.discard(pitch)
        self._done.append((start, beat, pitch, velocity))
        self._last_end_beat = max(self._last_end_beat, beat)
        return Heard(t, beat, pitch, 0, False)

    def _release_aside(self, t: float, beat: float, pitch: int) -> Heard:
        """A note set aside at an onset-gap cut ends: the roll and the duet hear it; no phrase does."""
        del self._aside[pitch]
        return Heard(t, beat, pitch, 0, False)

    def clear(self, t: float) -> list[Heard]:
        """All notes off, all sound off or reset: everything held ends now and the phrase in progress goes."""
        beat = self.beat_at(t)
        heard = [Heard(t, beat, pitch, 0, False) for pitch in sorted(self.sounding)]
        self.counts.cleared += 1
        self.reset()
        return heard

    def expire(self, t: float) -> list[Heard]:
        """Notes held past ``stuck_note_beats`` at ``t``, ended as if released (their note-offs were lost)."""
        if not self._open and not self._aside:  # every tick: nothing to look at most of the time
            return []
        beat, limit = self.beat_at(t), self.config.stuck_note_beats
        stuck = [p for p, (start, _) in self._open.items() if beat - start >= limit]
        stuck_aside = [p for p, start in self._aside.items() if beat - start >= limit]
        self.counts.stuck += len(stuck) + len(stuck_aside)
        heard = [self._end(t, beat, pitch) for pitch in stuck]
        return heard + [self._release_aside(t, beat, pitch) for pitch in stuck_aside]

    def poll(self, t: float) -> Phrase | None:
        """A finished phrase if, at time ``t``, silence, a lack of onsets or the length limit has ended one."""
        if self._first_beat is None:
            return None
        beat, config = self.beat_at(t), self.config
        if not self._open and beat - self._last_end_beat >= config.phrase_gap_beats:
            return self._finish(self._last_end_beat, carry=False)
        if self._open and beat - self._last_onset_beat >= config.onset_gap_beats:
            return self._finish(self._last_onset_beat + config.onset_gap_beats, carry=False)
        if beat - self._first_beat >= config.max_phrase_beats:
            return self._finish(self._first_beat + config.max_phrase_beats, carry=True)
        return None

    def _finish(self, end_beat: float, carry: bool) -> Phrase | None:
        spans = list(self._done)
        spans.extend((start, end_beat, pitch, velocity) for pitch, (start, velocity) in self._open.items())
        own_onsets, self._onsets = self._onsets, 0
        self._done = []
        self._last_end_beat = -math.inf
        if carry:
            self._open = {pitch: (end_beat, velocity) for pitch, (_, velocity) in self._open.items()}
            self._first_beat = end_beat if self._open else None
        else:
            self._aside.update((pitch, start) for pitch, (start, _) in self._open.items())
            self._open = {}
            self._first_beat = None
        self._held &= set(self._open)
        return self._quantise(spans) if own_onsets else None

    def _quantise(self, spans: list[tuple[float, float, int, int]]) -> Phrase | None:
        spb = self.steps_per_beat
        steps = [(round(s * spb), round(e * spb), p, v) for s, e, p, v in spans]
        if not steps:
            return None
        bar_steps = self.config.beats_per_bar * spb
        origin = (min(on for on, _, _, _ in steps) // bar_steps) * bar_steps
        notes = [
            Note(Fraction(on - origin, spb), pitch, Fraction(max(off - on, 1), spb), velocity)
            for on, off, pitch, velocity in steps
        ]
        notes = quantise(notes, spb)
        end = max(n.end for n in notes)
        return Phrase(tuple(notes), origin / spb, (origin + float(end * spb)) / spb)
