"""What a listener hears first, as numbers: repetition, rhythm, key, scale and copying of a set of pieces.

Pure functions over ``Note`` lists (times in beats, 4/4), compared between
generated pieces and real ones of the genre (``rtgen.evaluate.music``):

* repetition: the piece's line (the highest note at each onset) as intervals;
  a piece "repeats" when some 8-note interval pattern (7 intervals) comes back,
  and its repeated share is the share of its 8-note windows whose pattern
  occurs more than once in it;
* rhythm: the inter-onset intervals (between distinct onsets, in 12ths of a
  beat) as a histogram over musical classes, compared by total-variation
  distance (0 = the same, 1 = disjoint); notes per bar;
* key: music21's key analysis of the first and second half give the same key
  signature ("holds"); the in-scale ratio is the share of notes in the key
  found for the whole piece;
* copying: the share of 8-note pitch sequences found verbatim in the training data.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from rtgen.encoding import Note

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


def notes_per_bar(notes: Sequence[Note], beats: float) -> float:
    return len(notes) / (beats / 4) if beats > 0 else 0.0


def _key(notes: Sequence[Note]):
    from music21 import note as m21note
    from music21 import stream as m21stream

    part = m21stream.Stream()
    for n in notes:
        part.insert(float(n.start), m21note.Note(n.pitch, quarterLength=max(float(n.duration), 0.25)))
    return part.analyze("key")


def key_holds(notes: Sequence[Note], beats: float) -> bool | None:
    """Same key signature in both halves (music21 key analysis); None when a half has no notes."""
    half = Fraction(beats) / 2
    first = [n for n in notes if n.start < half]
    second = [n for n in notes if n.start >= half]
    if not first or not second:
        return None
    return _key(first).sharps == _key(second).sharps


def prime_key_matches(prime: Sequence[Note], opening: Sequence[Note]) -> bool:
    """Whether the key ``detect_key`` finds in ``prime`` (the key the soft key and the scale lock follow) has the
    key signature music21 finds for ``opening`` (enharmonic spellings equal)."""
    from rtgen.engine.sampling import detect_key

    tonic, scale = detect_key((n.pitch, float(n.duration)) for n in prime)
    major_tonic = tonic if scale == "major" else tonic + 3  # a minor key shares its relative major's signature
    return (7 * major_tonic - _key(opening).sharps) % 12 == 0


def in_scale(notes: Sequence[Note]) -> float:
    """Share of notes whose pitch class is in the scale of the key found for the whole piece."""
    if not notes:
        return float("nan")
    scale = {p.pitchClass for p in _key(notes).getScale().getPitches()}
    return sum(1 for n in notes if n.pitch % 12 in scale) / len(notes)


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


def copy_rate(pieces: Sequence[Sequence[Note]], train_keys: np.ndarray, n: int = PATTERN_NOTES) -> float:
    """Share of the pieces' n-note pitch sequences (with repeats) found in ``train_keys``."""
    keys = np.array([k for piece in pieces for k in _keys(piece, n)], dtype=np.int64)
    if keys.size == 0 or train_keys.size == 0:
        return float("nan")
    at = np.minimum(np.searchsorted(train_keys, keys), train_keys.size - 1)
    return float((train_keys[at] == keys).mean())


def span_beats(notes: Sequence[Note], beats: float) -> float:
    """How long a piece (or an opening cut at ``beats``) lasts, in whole 4/4 bars' beats."""
    if not notes:
        return 0.0
    end = min(float(max(n.end for n in notes)), beats)
    return 4.0 * max(1, -(-end // 4))


def summary(pieces: Sequence[Sequence[Note]], beats: float, train_keys: np.ndarray) -> dict:
    """Every statistic of a set of pieces of at most ``beats`` beats (a shorter one counts its own length)."""
    pieces = [p for p in pieces if p]
    spans = [span_beats(p, beats) for p in pieces]
    reps = [repetition(p) for p in pieces]
    holds = [h for h in (key_holds(p, s) for p, s in zip(pieces, spans, strict=True)) if h is not None]
    histogram = sum((ioi_histogram(p) for p in pieces), np.zeros(len(IOI_LABELS)))
    scale = [s for s in (in_scale(p) for p in pieces) if s == s]
    return {
        "pieces": len(pieces),
        "repeats": sum(r for r, _ in reps) / len(reps) if reps else 0.0,
        "repeated_share": float(np.mean([s for _, s in reps])) if reps else 0.0,
        "ioi": dict(zip(IOI_LABELS, (histogram / max(histogram.sum(), 1)).round(4).tolist(), strict=True)),
        "ioi_counts": histogram,
        "notes_per_bar": float(np.mean([notes_per_bar(p, s) for p, s in zip(pieces, spans, strict=True)]))
        if pieces
        else 0.0,
        "key_holds": sum(holds) / len(holds) if holds else float("nan"),
        "in_scale": float(np.mean(scale)) if scale else float("nan"),
        "copy_rate": copy_rate(pieces, train_keys),
    }
