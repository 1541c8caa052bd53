"""Reading one music file (or one tune of an ABC file) into ``Note`` lists.

MIDI goes through mido directly: it is fast and keeps velocities. MusicXML,
Humdrum and ABC go through music21's parser, imported only when such a file is
read. ``read_piece`` and ``read_units`` return ``(name, notes, reason)``
triples, one per piece: ``notes`` is None when the piece was skipped and
``reason`` says why in a few words, so a bad file never stops a corpus from
loading.

Parts: ``"melody"`` keeps the first part (the top voice in music21 scores, the
first MIDI track and channel with notes) and makes it monophonic with
``melody_line``; ``"all"`` merges every part.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from fractions import Fraction
from itertools import pairwise
from pathlib import Path

from rtgen.encoding import DEFAULT_VELOCITY, Note

PARTS = ("melody", "all")
DRUM_CHANNEL = 9  # MIDI channel 10, counted from 0
MIDI_SUFFIXES = (".mid", ".midi")
MUSIC21_SUFFIXES = (".mxl", ".musicxml", ".xml", ".krn", ".abc")
_TUNE_START = re.compile(rb"^X:", re.MULTILINE)

Result = tuple[str, list[Note] | None, str | None]


def melody_line(notes: list[Note]) -> list[Note]:
    """One voice: the highest pitch at each onset, each note cut where the next begins."""
    highest: dict[Fraction, Note] = {}
    for note in notes:
        if note.start not in highest or note.pitch > highest[note.start].pitch:
            highest[note.start] = note
    line = [highest[start] for start in sorted(highest)]
    return [
        Note(note.start, note.pitch, following.start - note.start, note.velocity)
        if note.end > following.start
        else note
        for note, following in pairwise(line)
    ] + line[-1:]


def read_units(units: list[tuple[str, str, int | None]], parts: str) -> list[Result]:
    """Read ``(path, name, tune)`` units; ``tune`` indexes a tune of an ABC file, else None.

    The units of one call usually share a file; an ABC file is split once per call.
    """
    results: list[Result] = []
    tunes: dict[str, list[bytes]] = {}
    for path, name, tune in units:
        if tune is not None and path not in tunes:
            tunes[path] = abc_tunes(Path(path).read_bytes())
        text = tunes[path][tune] if tune is not None else None
        results.extend(read_piece(Path(path), name, parts, abc_text=text))
    return results


def read_piece(path: Path, name: str, parts: str = "melody", abc_text: bytes | None = None) -> list[Result]:
    """Every piece of one file (an opus yields several, named ``name#1``, ``name#2``, ...)."""
    if parts not in PARTS:
        raise ValueError(f"parts must be one of {PARTS}, not {parts!r}")
    try:
        if abc_text is None and path.stat().st_size == 0:
            return [(name, None, "empty")]
        if path.suffix.lower() in MIDI_SUFFIXES:
            return [_checked(name, read_midi(path, parts))]
        return _read_music21(path, name, parts, abc_text)
    except _Unreadable as error:
        return [(name, None, str(error))]
    except Exception as error:  # noqa: BLE001 - music21 and mido raise dozens of types on bad input
        return [(name, None, _describe(error))]


class _Unreadable(Exception):
    """A file that is not what its suffix says; the message is the short reason."""


def _describe(error: Exception) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:120]}" if text else type(error).__name__


def _checked(name: str, notes: list[Note]) -> Result:
    return (name, notes, None) if notes else (name, None, "no notes")


def abc_tunes(data: bytes) -> list[bytes]:
    """The tunes of an ABC file, each with the file's header (the text before the first ``X:``)."""
    starts = [match.start() for match in _TUNE_START.finditer(data)]
    if len(starts) <= 1:
        return [data]
    header = data[: starts[0]]
    return [header + data[a:b] for a, b in pairwise([*starts, len(data)])]


def read_midi(path: Path, parts: str) -> list[Note]:
    """Notes of a MIDI file in beats (ticks / ticks_per_beat), drums (channel 10) left out.

    A note-on of a sounding pitch ends the sounding note there; a note still
    sounding at the end of its track ends with the track.
    """
    import mido

    try:
        midi = mido.MidiFile(path, clip=True)
    except OSError as error:
        raise _Unreadable("not a MIDI file" if "MThd" in str(error) else _describe(error)) from None
    except EOFError:
        raise _Unreadable("truncated MIDI file") from None
    if midi.ticks_per_beat <= 0:
        raise _Unreadable("SMPTE-timed MIDI file (no beats)")
    voices: dict[tuple[int, int], list[Note]] = {}
    for track_index, track in enumerate(midi.tracks):
        tick = 0
        sounding: dict[tuple[int, int], tuple[int, int]] = {}  # (channel, pitch) -> (on tick, velocity)
        for message in track:
            tick += message.time
            if message.type not in ("note_on", "note_off") or message.channel == DRUM_CHANNEL:
                continue
            key = (message.channel, message.note)
            if key in sounding:
                _close(voices, track_index, key, *sounding.pop(key), tick, midi.ticks_per_beat)
            if message.type == "note_on" and message.velocity > 0:
                sounding[key] = (tick, message.velocity)
        for key, (on, velocity) in sounding.items():
            _close(voices, track_index, key, on, velocity, tick, midi.ticks_per_beat)
    if not voices:
        return []
    if parts == "melody":
        return melody_line(sorted(voices[min(voices)]))
    return sorted(note for notes in voices.values() for note in notes)


def _close(voices, track_index, key, on, velocity, off, ticks_per_beat) -> None:
    channel, pitch = key
    if off > on:
        note = Note(Fraction(on, ticks_per_beat), pitch, Fraction(off - on, ticks_per_beat), velocity)
        voices.setdefault((track_index, channel), []).append(note)


def _read_music21(path: Path, name: str, parts: str, abc_text: bytes | None) -> list[Result]:
    scores = parse_scores(path, abc_text)
    if not scores:
        return [(name, None, "no music")]
    if len(scores) == 1:
        return [_checked(name, score_notes(scores[0], parts))]
    return [_checked(f"{name}#{i}", score_notes(score, parts)) for i, score in enumerate(scores, 1)]


def parse_scores(path: Path, abc_text: bytes | None = None) -> list:
    """The music21 scores of a file (an opus gives several); ``abc_text``: one tune of an ABC file, read instead."""
    from music21 import converter

    if path.suffix.lower() == ".abc":
        data = abc_text if abc_text is not None else path.read_bytes()
        with _without_beaming():
            parsed = converter.parseData(_decode(data), format="abc")
    else:
        parsed = converter.parse(path, forceSource=True, storePickle=False)
    return list(parsed.scores) if hasattr(parsed, "scores") else [parsed]


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


@contextlib.contextmanager
def _without_beaming() -> Iterator[None]:
    """Skip music21's beaming while parsing ABC: it is half the parse time and changes no note."""
    from music21 import stream

    original = stream.Stream.makeBeams
    stream.Stream.makeBeams = lambda self, *args, **kwargs: None
    try:
        yield
    finally:
        stream.Stream.makeBeams = original


def score_notes(score, parts: str = "melody") -> list[Note]:
    """Notes of a music21 score: offsets in quarter lengths are beats; ties merged, grace notes dropped."""
    voices = list(score.parts) or [score]
    if parts == "melody":
        return melody_line(_part_notes(voices[0]))
    return sorted(note for voice in voices for note in _part_notes(voice))


def _part_notes(part) -> list[Note]:
    """Notes of one part with tied notes merged (what ``stripTies`` does, without copying the stream)."""
    notes: list[Note] = []
    tied: dict[int, int] = {}  # pitch -> index in notes of the note a tie continues
    for element in part.flatten().notes:
        duration = _beats(element.quarterLength)
        if duration <= 0 or element.duration.isGrace:
            continue
        start = _beats(element.offset)
        velocity = element.volume.velocity
        velocity = DEFAULT_VELOCITY if velocity is None else min(127, max(1, round(velocity)))
        is_chord = element.isChord
        for pitch in element.pitches:
            midi = pitch.midi
            if not 0 <= midi <= 127:
                continue
            tie = element.getTie(pitch) if is_chord else element.tie
            tie_type = tie.type if tie is not None else None
            index = tied.pop(midi, None)
            if tie_type in ("stop", "continue") and index is not None and notes[index].end == start:
                held = notes[index]
                notes[index] = Note(held.start, midi, held.duration + duration, held.velocity)
            else:
                index = len(notes)
                notes.append(Note(start, midi, duration, velocity))
            if tie_type in ("start", "continue"):
                tied[midi] = index
    return sorted(notes)


def _beats(quarter_length) -> Fraction:
    """music21 gives floats for binary fractions and Fractions for tuplets; both exact here."""
    value = Fraction(quarter_length)
    return value if value.denominator <= 1 << 20 else value.limit_denominator(1 << 20)
