"""Notes, and the token vocabularies every rtgen model shares.

Time is counted in beats (quarter notes), never seconds, so a phrase keeps its
meaning when the tempo changes live. Three encodings implement one interface:

* ``EventEncoding`` (the default): NOTE_ON/NOTE_OFF per pitch, SHIFT by grid
  steps, VELOCITY bins and a piece separator. The vocabulary is fixed and
  independent of any corpus, so every genre model predicts over the same
  tokens and their distributions can be fused token by token.
* ``TimeStepEncoding`` (``rtgen.data.timestep``, built on this module): the
  ESAC paper's one token per sixteenth (a MIDI pitch, hold ``_`` or rest
  ``r``), monophonic, kept to reproduce that setup.
* ``ChordEncoding`` (``rtgen.data.chords``, built on this module): the
  one-composer and genre papers' one token per onset, its vocabulary counted
  on a training corpus. ``rtgen.data.vocabulary`` names all three and is the
  one place that makes an encoding by name or from its saved JSON.

``Encoding`` is the interface the three share (a Protocol): what the engine,
the voice, the token caches and the checkpoints may ask of any of them.

All decode through a streaming decoder that turns ANY token sequence into
valid MIDI: no note-off for a silent pitch, no second note-on for a sounding
one (the first is closed), and ``close_all`` ends whatever still sounds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Protocol, runtime_checkable

from rtgen.errors import RtgenError

PAD = "PAD"
SEP = "SEP"
DEFAULT_VELOCITY = 80


class EncodingError(RtgenError, ValueError):
    """Notes that an encoding cannot represent, or a vocabulary that does not match."""


@dataclass(frozen=True, order=True)
class Note:
    """One note; ``start`` and ``duration`` in beats, exact on the grid as Fractions."""

    start: Fraction  # beats from the start of the piece or phrase, >= 0
    pitch: int  # MIDI pitch, 0-127
    duration: Fraction  # beats, > 0
    velocity: int = DEFAULT_VELOCITY  # MIDI velocity, 1-127

    def __post_init__(self) -> None:
        if not 0 <= self.pitch <= 127:
            raise EncodingError(f"pitch {self.pitch} outside 0-127")
        if not 1 <= self.velocity <= 127:
            raise EncodingError(f"velocity {self.velocity} outside 1-127")
        if self.start < 0 or self.duration <= 0:
            raise EncodingError(f"note at {self.start} lasting {self.duration} beats")

    @property
    def end(self) -> Fraction:
        return self.start + self.duration


@dataclass(frozen=True, slots=True)
class NoteEvent:
    """A decoded note-on (``on``) or note-off at ``beat`` beats after the decoder began."""

    beat: Fraction
    pitch: int
    velocity: int  # the note-on's velocity; 0 for a note-off
    on: bool


class Decoder(Protocol):
    """A streaming decoder: tokens in, one at a time, note events out; any token sequence gives valid MIDI."""

    def feed(self, token: int) -> list[NoteEvent]: ...

    def close_all(self) -> list[NoteEvent]: ...

    @property
    def beat(self) -> Fraction: ...  # beats since the decoder began

    @property
    def notes(self) -> list[Note]: ...  # closed notes, sorted (a decoder made with collect_notes=True)

    @property
    def sounding(self) -> frozenset[int]: ...  # pitches now sounding


@runtime_checkable
class Encoding(Protocol):
    """What every encoding (event, time-step, chord) offers; token ids index ``tokens``.

    A feature that is one encoding's own (the event vocabulary's separate
    note-offs, which steering and sections reshape) asks for that class by
    name (``isinstance(encoding, EventEncoding)``), never probes for an attribute.
    """

    name: str  # "event", "timestep" or "chord": saved in checkpoints and caches
    steps_per_beat: int  # grid steps a beat
    tokens: tuple[str, ...]  # the vocabulary, by id
    pad_id: int
    sep_id: int  # the separator between pieces: every sounding note ends

    def __len__(self) -> int: ...

    @property
    def fitted(self) -> bool: ...  # False only for a chord encoding still to be counted on a corpus

    def encode(self, notes: Iterable[Note]) -> list[int]: ...

    def decode(self, tokens: Iterable[int]) -> list[Note]: ...

    def decoder(self, collect_notes: bool = False) -> Decoder: ...

    def canonical(self, notes: Iterable[Note]) -> list[Note]: ...  # the notes as a round trip returns them

    def is_note_on(self, token: int) -> bool: ...  # the token starts one note or more

    def note_count(self, token: int) -> int: ...  # notes the token starts

    def pitch_tokens(self, pitch: int) -> list[int]: ...  # every token that starts ``pitch``

    def shift_tokens(self, steps: int) -> list[int]: ...  # tokens that move time on ``steps`` steps, starting nothing

    def transposed_id(self, token: int, semitones: int) -> int: ...  # the token with its pitches moved

    def to_json(self) -> dict: ...


def _round_half_up(x: Fraction) -> int:
    return math.floor(x + Fraction(1, 2))


def quantise(notes: Iterable[Note], steps_per_beat: int) -> list[Note]:
    """Snap notes to a grid of ``steps_per_beat`` and make them playable as MIDI.

    Onsets and ends round to the nearest step (halves up); a note never shrinks
    below one step. Two notes of one pitch cannot overlap on a MIDI channel, so
    the earlier is cut where the later begins, and of two that begin together
    the louder (then longer) one stays. The result is sorted and is exactly what
    encode-then-decode returns.
    """
    snapped: dict[tuple[int, int], tuple[int, int, int]] = {}
    for note in notes:
        on = _round_half_up(note.start * steps_per_beat)
        off = max(on + 1, _round_half_up(note.end * steps_per_beat))
        key = (note.pitch, on)
        candidate = (note.velocity, off - on, off)
        if key not in snapped or candidate > snapped[key]:
            snapped[key] = candidate
    result: list[Note] = []
    previous: dict[int, tuple[int, int, int]] = {}
    for (pitch, on), (velocity, _, off) in sorted(snapped.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if pitch in previous and previous[pitch][1] > on:
            p_on, _, p_vel = previous[pitch]
            previous[pitch] = (p_on, on, p_vel)
        if pitch in previous:
            result.append(_grid_note(pitch, *previous[pitch], steps_per_beat))
        previous[pitch] = (on, off, velocity)
    result.extend(_grid_note(pitch, *span, steps_per_beat) for pitch, span in previous.items())
    return sorted(result)


def _grid_note(pitch: int, on: int, off: int, velocity: int, steps_per_beat: int) -> Note:
    return Note(Fraction(on, steps_per_beat), pitch, Fraction(off - on, steps_per_beat), velocity)


@dataclass
class _Sounding:
    """Decoder bookkeeping shared by both encodings: time in steps and open notes."""

    steps_per_beat: int
    now_steps: int = 0
    velocity: int = DEFAULT_VELOCITY
    open_notes: dict[int, tuple[int, int]] = field(default_factory=dict)  # pitch -> (on step, velocity)
    finished: list[Note] | None = None  # closed notes, kept only for offline decoding (a live stream never ends)

    def beat(self) -> Fraction:
        return Fraction(self.now_steps, self.steps_per_beat)

    def note_on(self, pitch: int, out: list[NoteEvent]) -> None:
        if pitch in self.open_notes:
            self.note_off(pitch, out)
        self.open_notes[pitch] = (self.now_steps, self.velocity)
        out.append(NoteEvent(self.beat(), pitch, self.velocity, True))

    def note_off(self, pitch: int, out: list[NoteEvent]) -> None:
        opened = self.open_notes.pop(pitch, None)
        if opened is None:
            return
        on_step, velocity = opened
        if self.finished is not None and self.now_steps > on_step:
            self.finished.append(_grid_note(pitch, on_step, self.now_steps, velocity, self.steps_per_beat))
        out.append(NoteEvent(self.beat(), pitch, 0, False))

    def close_all(self) -> list[NoteEvent]:
        out: list[NoteEvent] = []
        for pitch in list(self.open_notes):
            self.note_off(pitch, out)
        return out


class _StreamDecoder:
    """What the streaming decoders share: the beat reached, the sounding pitches, closing them all."""

    def __init__(self, encoding, collect_notes: bool = False) -> None:
        self.encoding = encoding
        self.state = _Sounding(encoding.steps_per_beat, finished=[] if collect_notes else None)

    def _framing(self, token: int) -> list[NoteEvent] | None:
        """What PAD (nothing) and SEP (every note closes) do; None for a token of the music itself."""
        enc = self.encoding
        if token == enc.pad_id:
            return []
        if token == enc.sep_id:
            return self.state.close_all()
        if not 0 <= token < len(enc.tokens):
            raise EncodingError(f"token {token} outside the {enc.name} vocabulary of {len(enc.tokens)}")
        return None

    @property
    def beat(self) -> Fraction:
        return self.state.beat()

    @property
    def notes(self) -> list[Note]:
        """Notes closed so far, sorted; only a decoder made with ``collect_notes=True`` keeps them."""
        return sorted(self.state.finished or [])

    @property
    def sounding(self) -> frozenset[int]:
        return frozenset(self.state.open_notes)

    def close_all(self) -> list[NoteEvent]:
        """Note-offs, at the current beat, for everything still sounding."""
        return self.state.close_all()


class EventEncoding:
    """NOTE_ON x128, NOTE_OFF x128, SHIFT 1..max_shift_steps, VELOCITY bins, SEP, PAD.

    At equal times note-offs come before note-ons, so a repeated pitch is
    re-struck rather than merged; a VELOCITY token appears only when the bin
    changes. Gaps longer than ``max_shift_steps`` are written as several shifts.
    """

    name = "event"
    fitted = True  # the vocabulary is fixed

    def __init__(self, steps_per_beat: int = 12, max_shift_steps: int = 48, velocity_bins: int = 32) -> None:
        self.steps_per_beat = steps_per_beat
        self.max_shift_steps = max_shift_steps
        self.velocity_bins = velocity_bins
        self.tokens: tuple[str, ...] = (
            PAD,
            SEP,
            *(f"ON_{p}" for p in range(128)),
            *(f"OFF_{p}" for p in range(128)),
            *(f"SHIFT_{s}" for s in range(1, max_shift_steps + 1)),
            *(f"VEL_{b}" for b in range(velocity_bins)),
        )
        self.pad_id, self.sep_id = 0, 1
        self.on_base = 2
        self.off_base = self.on_base + 128
        self.shift_base = self.off_base + 128  # SHIFT_s has id shift_base + s - 1
        self.velocity_base = self.shift_base + max_shift_steps
        self._velocity_of_bin = [self._bin_centre(b) for b in range(velocity_bins)]

    def __len__(self) -> int:
        return len(self.tokens)

    def velocity_bin(self, velocity: int) -> int:
        return (velocity - 1) * self.velocity_bins // 127

    def _bin_centre(self, b: int) -> int:
        members = [v for v in range(1, 128) if self.velocity_bin(v) == b]
        return members[len(members) // 2]

    def quantise_velocity(self, velocity: int) -> int:
        return self._velocity_of_bin[self.velocity_bin(velocity)]

    def note_on_id(self, pitch: int) -> int:
        return self.on_base + pitch

    def is_note_on(self, token: int) -> bool:
        return self.on_base <= token < self.off_base

    def note_count(self, token: int) -> int:
        return int(self.is_note_on(token))

    def pitch_tokens(self, pitch: int) -> list[int]:
        return [self.on_base + pitch]

    def transposed_id(self, token: int, semitones: int) -> int:
        """A note-on or note-off moved by ``semitones``; any other token, or a pitch pushed out of 0-127, as it is."""
        for base in (self.on_base, self.off_base):
            if base <= token < base + 128 and 0 <= token - base + semitones <= 127:
                return token + semitones
        return token

    def canonical(self, notes: Iterable[Note]) -> list[Note]:
        """The notes exactly as a round trip through this encoding returns them."""
        return [
            Note(n.start, n.pitch, n.duration, self.quantise_velocity(n.velocity))
            for n in quantise(notes, self.steps_per_beat)
        ]

    def encode(self, notes: Iterable[Note]) -> list[int]:
        """Tokens for notes quantised to this grid (``quantise`` is applied first)."""
        events: list[tuple[int, int, int, int]] = []  # (step, 0=off/1=on, pitch, velocity)
        for note in quantise(notes, self.steps_per_beat):
            on = int(note.start * self.steps_per_beat)
            events.append((on, 1, note.pitch, note.velocity))
            events.append((on + int(note.duration * self.steps_per_beat), 0, note.pitch, 0))
        events.sort()
        tokens: list[int] = []
        now, velocity_bin = 0, None
        for step, is_on, pitch, velocity in events:
            tokens.extend(self.shift_tokens(step - now))
            now = step
            if is_on:
                if self.velocity_bin(velocity) != velocity_bin:
                    velocity_bin = self.velocity_bin(velocity)
                    tokens.append(self.velocity_base + velocity_bin)
                tokens.append(self.on_base + pitch)
            else:
                tokens.append(self.off_base + pitch)
        return tokens

    def shift_tokens(self, steps: int) -> list[int]:
        """SHIFT tokens moving time on ``steps`` grid steps, longest first; what sounds goes on sounding."""
        whole, rest = divmod(steps, self.max_shift_steps)
        tokens = [self.shift_base + self.max_shift_steps - 1] * whole
        if rest:
            tokens.append(self.shift_base + rest - 1)
        return tokens

    def decoder(self, collect_notes: bool = False) -> EventDecoder:
        return EventDecoder(self, collect_notes)

    def decode(self, tokens: Iterable[int]) -> list[Note]:
        return _decode_all(self.decoder(collect_notes=True), tokens)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "steps_per_beat": self.steps_per_beat,
            "max_shift_steps": self.max_shift_steps,
            "velocity_bins": self.velocity_bins,
            "tokens": list(self.tokens),
        }


class EventDecoder(_StreamDecoder):
    """Streams event tokens into note events; any token sequence yields valid MIDI."""

    def __init__(self, encoding: EventEncoding, collect_notes: bool = False) -> None:
        self.encoding = encoding
        self.state = _Sounding(
            encoding.steps_per_beat,
            velocity=encoding.quantise_velocity(DEFAULT_VELOCITY),
            finished=[] if collect_notes else None,
        )

    def feed(self, token: int) -> list[NoteEvent]:
        enc, state, out = self.encoding, self.state, []
        if enc.on_base <= token < enc.off_base:
            state.note_on(token - enc.on_base, out)
        elif enc.off_base <= token < enc.shift_base:
            state.note_off(token - enc.off_base, out)
        elif enc.shift_base <= token < enc.velocity_base:
            state.now_steps += token - enc.shift_base + 1
        elif enc.velocity_base <= token < len(enc.tokens):
            state.velocity = enc._velocity_of_bin[token - enc.velocity_base]
        elif token == enc.sep_id:
            out = state.close_all()
        elif token != enc.pad_id:
            raise EncodingError(f"token {token} outside the {enc.name} vocabulary of {len(enc.tokens)}")
        return out


def _decode_all(decoder: Decoder, tokens: Iterable[int]) -> list[Note]:
    for token in tokens:
        decoder.feed(token)
    decoder.close_all()
    return decoder.notes


def check_same_vocabulary(expected: dict, found: dict) -> None:
    """Raise ``EncodingError`` naming the first difference between two saved vocabularies.

    Models fuse and share a stream token by token, so they need the very same
    tokens; the message says why two vocabularies cannot be mixed.
    """
    why = "token ids of different vocabularies mean different things, so the models cannot be fused or mixed"
    for key in ("name", "steps_per_beat", "max_shift_steps", "velocity_bins", "lengths"):
        if expected.get(key) != found.get(key):
            raise EncodingError(f"encoding differs: {key} is {found.get(key)!r}, expected {expected.get(key)!r}; {why}")
    if list(expected["tokens"]) != list(found.get("tokens", [])):
        built = " (a chord vocabulary is built from its training corpus)" if "vocabulary" in expected else ""
        raise EncodingError(
            f"vocabulary differs: {len(found.get('tokens', []))} tokens, expected {len(expected['tokens'])}{built}; "
            f"{why}"
        )
