"""Seed phrases: real openings of a genre, built-in phrases, and reading a seed phrase from a MIDI file.

A seed phrase primes every genre model before it plays. ``rtgen generate``
without ``--seed-midi`` or a preset's phrase, and the daemon's solo and duet
without a preset's phrase, start from a real opening (``genre_opening``): the
first two bars of one of the genre's validation pieces, a different one per
``--seed`` (``rtgen.data.profile`` ships 64 a genre). One written phrase for
every fiddle piece set its rhythm: running eighths, sixteenths 0.6 % of
inter-onset intervals against 19 % in real tunes. ``rtgen demo`` and presets
whose ``seed_phrase`` is a name use the built-in phrases, two bars of 4/4
each, written as the genre would open; a genre with no stored openings (a
user's own) falls back to them too.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from rtgen.data.profile import openings
from rtgen.encoding import Note
from rtgen.errors import RtgenError


def _line(start: Fraction, steps: list[tuple[int, Fraction]], velocity: int = 80) -> list[Note]:
    """Consecutive notes from (pitch, beats) pairs; pitch 0 is a rest."""
    notes, now = [], Fraction(start)
    for pitch, beats in steps:
        if pitch:
            notes.append(Note(now, pitch, Fraction(beats), velocity))
        now += Fraction(beats)
    return notes


GOLDEN = 0.6180339887  # seed -> opening stride, a share of the stored openings
Q, E, H, S = Fraction(1), Fraction(1, 2), Fraction(2), Fraction(1, 4)

# G major, a singable Essen-like opening: up to the fifth and back to the tonic.
FOLK = _line(0, [(67, Q), (69, E), (71, E), (74, Q), (71, Q), (72, Q), (69, Q), (67, H)])
# D major reel in running eighths, the shape of a Ryan's Mammoth tune.
FIDDLE = _line(
    0,
    [(69, E), (74, E), (78, E), (74, E), (81, E), (74, E), (78, E), (74, E)]
    + [(79, E), (76, E), (73, E), (76, E), (69, E), (73, E), (76, E), (73, E)],
    velocity=90,
)
# G major, four voices in quarter-note chords: I V6 vi IV | ii V I (half).
CHORALE = [
    *_line(0, [(71, Q), (74, Q), (76, Q), (72, Q), (69, Q), (74, Q), (71, H)]),
    *_line(0, [(67, Q), (67, Q), (71, Q), (67, Q), (64, Q), (66, Q), (67, H)], velocity=70),
    *_line(0, [(62, Q), (62, Q), (64, Q), (64, Q), (60, Q), (62, Q), (62, H)], velocity=70),
    *_line(0, [(55, Q), (59, Q), (52, Q), (48, Q), (57, Q), (50, Q), (43, H)], velocity=75),
]
# D dorian, two voices in imitation: the lower enters a bar after the upper.
RENAISSANCE = [
    *_line(0, [(62, H), (65, H), (64, Q), (62, Q), (69, H)], velocity=70),
    *_line(0, [(0, 4 * Q), (55, H), (58, H)], velocity=65),
]

PHRASES: dict[str, list[Note]] = {"folk": FOLK, "fiddle": FIDDLE, "chorale": CHORALE, "renaissance": RENAISSANCE}


def builtin(name: str) -> list[Note]:
    """A built-in phrase by name (a copy the caller may keep)."""
    if name not in PHRASES:
        raise RtgenError(f"no built-in phrase {name!r}; choose from {', '.join(PHRASES)} or give a .mid path")
    return sorted(PHRASES[name])


def genre_opening(genre: str, seed: int | None = None) -> list[Note] | None:
    """A stored real opening of ``genre`` for ``seed`` (None: a random one), or None when none is stored.

    Seeds step through the openings by the golden ratio, so seeds 0, 1, 2...
    land far apart in the corpus (its order groups alike pieces: the first
    Essen songs are mostly in half notes).
    """
    stored = openings(genre)
    if not stored:
        return None
    if seed is None:
        import random

        return stored[random.randrange(len(stored))]
    return stored[int(seed * GOLDEN * len(stored)) % len(stored)]


def load_phrase(name_or_path: str | Path) -> list[Note]:
    """A built-in phrase by name, or the notes of a MIDI file (all tracks and channels, times in beats)."""
    if str(name_or_path) in PHRASES:
        return builtin(str(name_or_path))
    path = Path(name_or_path)
    if path.suffix.lower() not in (".mid", ".midi"):
        raise RtgenError(f"seed phrase {str(name_or_path)!r} is neither a built-in ({', '.join(PHRASES)}) nor a .mid")
    return read_midi_notes(path)


def read_midi_notes(path: str | Path) -> list[Note]:
    """Notes of a standard MIDI file, start and duration in beats (exact Fractions of ticks)."""
    import mido

    path = Path(path)
    try:
        midi = mido.MidiFile(str(path))
    except FileNotFoundError:
        raise RtgenError(f"{path}: no such MIDI file") from None
    except (OSError, EOFError, ValueError, KeyError) as error:
        raise RtgenError(f"{path}: not a readable MIDI file ({error})") from None
    ticks = midi.ticks_per_beat
    notes: list[Note] = []
    for track in midi.tracks:
        now, open_notes = 0, {}
        for message in track:
            now += message.time
            if message.type not in ("note_on", "note_off"):
                continue
            key = (message.channel, message.note)
            if message.type == "note_on" and message.velocity > 0:
                open_notes[key] = (now, message.velocity)
            elif key in open_notes:
                on, velocity = open_notes.pop(key)
                if now > on:
                    notes.append(Note(Fraction(on, ticks), key[1], Fraction(now - on, ticks), velocity))
    if not notes:
        raise RtgenError(f"{path}: no notes in this MIDI file")
    return sorted(notes)


def seed_from_file(path: str | Path, max_beats: int = 32) -> list[Note]:
    """A .mid's notes from the first bar line within its last ``max_beats`` beats, from beat 0: a seed phrase.

    A saved take can hold an hour of music; priming the models with all of it
    would hold the engine thread for seconds, and only the recent bars shape
    what comes next.
    """
    notes = read_midi_notes(path)
    end = max(n.end for n in notes)
    start = max(Fraction(0), Fraction(-((max_beats - end) // 4) * 4))  # the first bar line within the last beats
    return [Note(n.start - start, n.pitch, n.duration, n.velocity) for n in notes if n.start >= start]
