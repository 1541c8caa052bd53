"""What a listener hears first, as numbers: repetition, rhythm, key, scale and copying of a set of pieces.

Pure functions over ``Note`` lists (times in beats, 4/4), compared between
generated pieces and real ones of the genre (``rtgen.evaluate.music``):

* repetition: the piece's line (the highest note at each onset) as intervals;
  a piece "repeats" when some 8-note interval pattern (7 intervals) comes back,
  and its repeated share is the share of its 8-note windows whose pattern
  occurs more than once in it;
* rhythm: the inter-onset intervals (between distinct onsets, in 12ths of a
  beat) as a histogram over musical classes, compared by total-variation
  distance (0 = the same, 1 = disjoint);
* key: the key found (Aarden-Essen profiles, as music21's key analysis) for the
  first and second half has the same key signature ("holds"), and for bars
  1-4 and 5-8 (within a section); the in-key share is the share of notes in
  the scale of the key found for the whole piece;
* copying: the share of 8-note pitch sequences found verbatim in the training data;
* pitch-class entropy (bits).

Bar-by-bar repetition is in ``rtgen.evaluate.bars``; what each piece gets, in ``rtgen.evaluate.features``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from rtgen.encoding import Note
from rtgen.engine.sampling import SCALES, detect_key

PATTERN_NOTES = 8
STEPS_PER_BEAT = 12
# Inter-onset classes in 12ths of a beat: sixteenth, triplet eighth, eighth, dotted eighth, quarter,
# dotted quarter, half, and everything else (shorter, between, longer).
IOI_CLASSES = {3: "1/16", 4: "1/8t", 6: "1/8", 9: "1/8.", 12: "1/4", 18: "1/4.", 24: "1/2"}
IOI_LABELS = (*IOI_CLASSES.values(), "other")


def line(notes: Sequence[Note]) -> list[tuple[Fraction, int]]:
    """(onset, pitch) of the highest note at each distinct onset, in time order."""
    top: dict[Fraction, int] = {}
    for note in notes:
        top[note.start] = max(top.get(note.start, -1), note.pitch)
    return sorted(top.items())


def interval_patterns(notes: Sequence[Note], n: int = PATTERN_NOTES) -> list[tuple[int, ...]]:
    pitches = [pitch for _, pitch in line(notes)]
    intervals = [b - a for a, b in zip(pitches, pitches[1:], strict=False)]
    return [tuple(intervals[i : i + n - 1]) for i in range(len(intervals) - n + 2)]


def repetition(notes: Sequence[Note]) -> tuple[bool, float]:
    """(some 8-note interval pattern comes back, share of 8-note windows whose pattern recurs)."""
    patterns = interval_patterns(notes)
    if not patterns:
        return False, 0.0
    counts = Counter(patterns)
    repeated = sum(1 for p in patterns if counts[p] > 1)
    return repeated > 0, repeated / len(patterns)


def ioi_histogram(notes: Sequence[Note]) -> np.ndarray:
    """Counts of inter-onset intervals per class of ``IOI_LABELS``."""
    onsets = sorted({n.start for n in notes})
    counts = np.zeros(len(IOI_LABELS))
    keys = list(IOI_CLASSES)
    for a, b in zip(onsets, onsets[1:], strict=False):
        steps = round((b - a) * STEPS_PER_BEAT)
        counts[keys.index(steps) if steps in IOI_CLASSES else len(keys)] += 1
    return counts


def tv_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Total-variation distance between two histograms (normalised here)."""
    if p.sum() == 0 or q.sum() == 0:
        return 1.0
    return float(0.5 * np.abs(p / p.sum() - q / q.sum()).sum())


def _key(notes: Sequence[Note]):
    from music21 import note as m21note
    from music21 import stream as m21stream

    part = m21stream.Stream()
    for n in notes:
        part.insert(float(n.start), m21note.Note(n.pitch, quarterLength=max(float(n.duration), 0.25)))
    return part.analyze("key")


def key_of(notes: Sequence[Note]) -> tuple[int, str]:
    """(tonic pitch class, "major"|"minor") of ``notes`` by duration: ``detect_key``'s Aarden-Essen profiles, the
    ones music21's ``analyze("key")`` uses by default, at a fiftieth of its cost (2 ms against 37 a piece)."""
    return detect_key((n.pitch, float(n.duration)) for n in notes)


def signature(key: tuple[int, str]) -> int:
    """A key's signature as fifths modulo 12: a minor key has its relative major's, enharmonic spellings agree."""
    tonic, scale = key
    return 7 * (tonic if scale == "major" else tonic + 3) % 12


def key_holds(notes: Sequence[Note], split: float, end: float | None = None) -> bool | None:
    """The notes before beat ``split`` and those from it up to ``end`` get the same key signature; None when
    either side has no notes. Halves: ``split`` half the piece; a section: bars 1-4 against 5-8."""
    first = [n for n in notes if n.start < split]
    second = [n for n in notes if split <= n.start and (end is None or n.start < end)]
    if not first or not second:
        return None
    return signature(key_of(first)) == signature(key_of(second))


def prime_key_matches(prime: Sequence[Note], opening: Sequence[Note]) -> bool:
    """Whether the key ``detect_key`` finds in ``prime`` (the key the soft key and the scale lock follow) has the
    key signature music21 finds for ``opening`` (enharmonic spellings equal)."""
    return (signature(key_of(prime)) - _key(opening).sharps) % 12 == 0


def in_key(notes: Sequence[Note]) -> float:
    """Share of notes whose pitch class is in the scale (major, or natural minor) of the piece's key."""
    if not notes:
        return float("nan")
    tonic, scale = key_of(notes)
    degrees = SCALES["major" if scale == "major" else "aeolian"]
    return sum(1 for n in notes if (n.pitch - tonic) % 12 in degrees) / len(notes)


def pitch_class_entropy(notes: Sequence[Note]) -> float:
    """Entropy of the pitch-class histogram (note counts), in bits: 0 for one pitch class, log2(12) at most."""
    if not notes:
        return 0.0
    histogram = np.bincount([n.pitch % 12 for n in notes], minlength=12) / len(notes)
    nonzero = histogram[histogram > 0]
    return float(-(nonzero * np.log2(nonzero)).sum())


def pitch_keys(pieces: Sequence[Sequence[Note]], n: int = PATTERN_NOTES) -> np.ndarray:
    """Sorted unique int64 keys of every n-note pitch sequence (notes by onset, then pitch) within pieces."""
    keys = [k for piece in pieces for k in _keys(piece, n)]
    return np.unique(np.array(keys, dtype=np.int64)) if keys else np.zeros(0, np.int64)


def _keys(piece: Sequence[Note], n: int) -> list[int]:
    pitches = [note.pitch for note in sorted(piece, key=lambda note: (note.start, note.pitch))]
    out = []
    for i in range(len(pitches) - n + 1):
        key = 0
        for p in pitches[i : i + n]:
            key = key * 128 + p
        out.append(key)
    return out


def copy_counts(piece: Sequence[Note], train_keys: np.ndarray, n: int = PATTERN_NOTES) -> tuple[int, int]:
    """(n-note pitch sequences of ``piece`` found in ``train_keys``, its n-note sequences)."""
    keys = np.array(_keys(piece, n), dtype=np.int64)
    if keys.size == 0 or train_keys.size == 0:
        return 0, int(keys.size)
    at = np.minimum(np.searchsorted(train_keys, keys), train_keys.size - 1)
    return int((train_keys[at] == keys).sum()), int(keys.size)


def span_beats(notes: Sequence[Note], beats: float) -> float:
    """How long a piece (or an opening cut at ``beats``) lasts, in whole 4/4 bars' beats."""
    if not notes:
        return 0.0
    end = min(float(max(n.end for n in notes)), beats)
    return 4.0 * max(1, -(-end // 4))
