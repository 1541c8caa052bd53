"""Offline generation: a preset and a seed phrase in, N bars of notes out, written as MIDI and MusicXML.

The same engine that plays live writes files here: reset, prime with the seed
phrase (SEP + phrase), then step until the decoded stream reaches N bars of
4/4. The sampler is seeded, so a seed gives the same notes, and the MIDI
writer is deterministic, so it gives the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from rtgen.encoding import Note, quantise
from rtgen.errors import RtgenError

BEATS_PER_BAR = 4  # rtgen writes 4/4
TICKS_PER_BEAT = 480  # divisible by 12 and 16, so every grid step is a whole number of ticks
TOKENS_PER_BEAT_LIMIT = 64  # a stream that does not move time this fast is cut off (a model stuck on velocities)


@dataclass(frozen=True)
class PieceStats:
    """Pitch statistics of a generated piece, to compare presets at a glance."""

    notes: int
    mean_pitch: float
    pitch_min: int
    pitch_max: int
    notes_per_bar: float

    def line(self) -> str:
        return (
            f"{self.notes} notes, mean pitch {self.mean_pitch:.1f}, range {self.pitch_min}-{self.pitch_max}, "
            f"{self.notes_per_bar:.2f} notes/bar"
        )


def piece_stats(notes: Sequence[Note], bars: int) -> PieceStats:
    if not notes:
        return PieceStats(0, 0.0, 0, 0, 0.0)
    pitches = [n.pitch for n in notes]
    return PieceStats(len(notes), sum(pitches) / len(pitches), min(pitches), max(pitches), len(notes) / bars)


def generate_notes(
    engine,
    seed_phrase: Sequence[Note],
    bars: int,
    *,
    seed: int | None = None,
    on_bar: Callable[[int], None] | None = None,
    rest_steps: int = 0,
    closes: list[float] | None = None,
    phrase_beats: Fraction | None = None,
) -> list[Note]:
    """``bars`` bars of 4/4 continuing ``seed_phrase``; times from 0 at the first generated token.

    Notes still sounding at the end are closed at the last bar line; a note
    reaching past it is cut there. ``on_bar(n)`` is called as the stream
    passes the end of bar n (1..bars), for progress on long pieces.
    ``rest_steps``: time steps of rest fed after the phrase (time-step
    encoding only); an empty phrase and a window of rests is the fiddle
    paper's seed. ``closes``, when given, gets the beats (sorted) where the
    engine's form closed a section inside the piece (its
    ``beats_to_section_end``: cadences and restatements), for expression.
    ``phrase_beats``: the phrase's length in beats (a real piece's first bars):
    its notes are cut there and a rest fills it after its last note, so the
    piece begins on the phrase's next bar line, not where its last note ends.
    """
    if bars < 1:
        raise RtgenError(f"bars must be >= 1, got {bars}")
    if seed is not None:
        engine.seed(seed)
    engine.reset()
    if phrase_beats is not None:
        seed_phrase = [_clip(n, phrase_beats) for n in seed_phrase if n.start < phrase_beats]
    engine.prime(list(seed_phrase))
    if phrase_beats is not None:
        end = max((n.end for n in seed_phrase), default=Fraction(0))
        engine.feed(engine.encoding.shift_tokens(int((phrase_beats - end) * engine.encoding.steps_per_beat)))
    if rest_steps:
        engine.feed(rest_tokens(engine.encoding, rest_steps))
    limit = Fraction(bars * BEATS_PER_BAR)
    decoder = engine.encoding.decoder(collect_notes=True)
    done = 0
    known, last = set(), math.inf  # closes foreseen; the latest, withdrawn if the report moves before it came
    for _ in range(int(limit) * TOKENS_PER_BEAT_LIMIT):
        decoder.feed(engine.step())
        if closes is not None and (left := engine.beats_to_section_end) is not None:
            close, beat = round(float(decoder.beat) + left, 6), float(decoder.beat)
            if close != last and beat < last:
                known.discard(last)
            known.add(last := close)
        while on_bar is not None and done < bars and decoder.beat >= (done + 1) * BEATS_PER_BAR:
            done += 1
            on_bar(done)
        if decoder.beat >= limit:
            break
    decoder.close_all()
    if closes is not None:
        closes[:] = sorted(beat for beat in known if beat <= decoder.beat)  # reached, not still ahead
    return [_clip(n, limit) for n in decoder.notes if n.start < limit]


def rest_tokens(encoding, steps: int) -> list[int]:
    """``steps`` rest tokens of a time-step encoding; other encodings have no rest token and are refused."""
    if encoding.name != "timestep":
        raise RtgenError(f"a seed of rests needs a timestep-encoding model; this one uses the {encoding.name} encoding")
    if steps < 0:
        raise RtgenError(f"rest steps must be >= 0, got {steps}")
    return [encoding.rest_id] * steps


def _clip(note: Note, limit: Fraction) -> Note:
    return note if note.end <= limit else Note(note.start, note.pitch, limit - note.start, note.velocity)


def midi_file(notes: Sequence[Note], tempo_bpm: float, name: str = "rtgen", channel: int = 0, steps_per_beat: int = 12):
    """A type-1 ``mido.MidiFile``: tempo, 4/4 and track name, then every note-on with its note-off.

    Notes are first quantised to ``steps_per_beat`` with ``rtgen.encoding.quantise``,
    which also cuts a note where another of the same pitch begins, so no pitch
    is struck twice without its note-off between.
    """
    import mido

    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("track_name", name=name, time=0))
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo_bpm), time=0))
    track.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
    events = []  # (tick, 0 = off before 1 = on at the same tick, pitch, velocity)
    for note in quantise(notes, steps_per_beat):
        on = round(note.start * TICKS_PER_BEAT)
        off = max(on + 1, round(note.end * TICKS_PER_BEAT))
        events.append((on, 1, note.pitch, note.velocity))
        events.append((off, 0, note.pitch, 0))
    now = 0
    for tick, is_on, pitch, velocity in sorted(events):
        kind = "note_on" if is_on else "note_off"
        track.append(mido.Message(kind, channel=channel, note=pitch, velocity=velocity, time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    midi.tracks.append(track)
    return midi


def write_midi(
    notes: Sequence[Note], path: str | Path, tempo_bpm: float, name: str = "rtgen", steps_per_beat: int = 12
) -> Path:
    """``midi_file`` saved to ``path``; ``steps_per_beat`` ``TICKS_PER_BEAT`` keeps played (off-grid) timing."""
    path = Path(path)
    midi_file(notes, tempo_bpm, name, steps_per_beat=steps_per_beat).save(str(path))
    return path


def write_musicxml(notes: Sequence[Note], path: str | Path, tempo_bpm: float, title: str = "rtgen") -> Path:
    """MusicXML through music21: one part (staff) per voice, chords for notes sharing onset and length.

    Voices are assigned greedily (a voice takes the next chord that starts after
    its last one ends), every gap is an explicit rest, every part is padded to
    whole bars, and ``makeNotation`` makes measures and ties across bar lines.
    """
    from music21 import chord, metadata, meter, stream, tempo
    from music21 import note as m21note

    voices: list[list[tuple[Fraction, Fraction, tuple[int, ...]]]] = []
    for group in _onset_groups(notes):
        voice = next((v for v in voices if v[-1][0] + v[-1][1] <= group[0]), None)
        if voice is None:
            voices.append([group])
        else:
            voice.append(group)
    total = Fraction(max(1, -(-max((n.end for n in notes), default=0) // BEATS_PER_BAR)) * BEATS_PER_BAR)
    score = stream.Score()
    score.metadata = metadata.Metadata(title=title, composer="rtgen")
    for index, voice in enumerate(voices or [[]]):
        part = stream.Part()
        part.insert(0, meter.TimeSignature("4/4"))
        if index == 0:
            part.insert(0, tempo.MetronomeMark(number=round(tempo_bpm)))
        now = Fraction(0)
        for start, duration, pitches in voice:
            if start > now:
                part.insert(now, m21note.Rest(quarterLength=start - now))
            element = m21note.Note(pitches[0]) if len(pitches) == 1 else chord.Chord(list(pitches))
            element.quarterLength = duration
            part.insert(start, element)
            now = start + duration
        if now < total:
            part.insert(now, m21note.Rest(quarterLength=total - now))
        score.insert(0, part.makeNotation())
    path = Path(path)
    return Path(score.write("musicxml", fp=str(path)))


def _onset_groups(notes: Sequence[Note]) -> list[tuple[Fraction, Fraction, tuple[int, ...]]]:
    """Notes sharing onset and duration as one chord: (start beats, duration beats, pitches)."""
    groups: dict[tuple[Fraction, Fraction], set[int]] = {}
    for n in notes:
        groups.setdefault((n.start, n.duration), set()).add(n.pitch)
    return [(start, duration, tuple(sorted(p))) for (start, duration), p in sorted(groups.items())]
