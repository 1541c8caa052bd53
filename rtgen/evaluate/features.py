"""One piece measured: the statistics ``rtgen eval music`` sums over a setting, and the classifier's features.

``measure`` takes a piece's first ``bars`` bars of 4/4 (a shorter piece counts
its own length, in whole bars) and keeps what each statistic needs per piece,
so a setting's summary (``summarise``) and the two-sample test's features
(``feature_matrix``) come from one pass, and a real piece measured once
serves every setting that compares with it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from rtgen.encoding import Note
from rtgen.engine.offline import BEATS_PER_BAR
from rtgen.evaluate.bars import bar_repetition
from rtgen.evaluate.statistics import (
    IOI_LABELS,
    copy_counts,
    in_key,
    ioi_histogram,
    key_holds,
    line,
    pitch_class_entropy,
    repetition,
    span_beats,
)

SECTION_BARS = 8  # key holding within a section: bars 1-4 against 5-8
# Melodic intervals of the line (highest note at each onset), signed, in semitones: (label, low, high) inclusive.
INTERVAL_CLASSES = (
    ("leap down", -127, -8),
    ("4th-5th down", -7, -5),
    ("3rd down", -4, -3),
    ("step down", -2, -1),
    ("unison", 0, 0),
    ("step up", 1, 2),
    ("3rd up", 3, 4),
    ("4th-5th up", 5, 7),
    ("leap up", 8, 127),
)
FEATURE_NAMES = (
    *(f"interval {label}" for label, _, _ in INTERVAL_CLASSES),
    *(f"ioi {label}" for label in IOI_LABELS),
    "pitch-class entropy",
    "range",
    "repeated 8-note share",
    "literal bar copies",
    "varied bars",
    "in-key share",
    "notes per bar",
)


@dataclass
class PieceMeasures:
    """What one piece contributes to its setting's statistics; ``restated`` only where the engine counted it."""

    bars: int  # whole bars measured (the piece's own length when shorter than asked)
    notes: int
    repeats: bool  # some 8-note interval pattern comes back
    repeated_share: float  # share of 8-note windows whose pattern recurs
    bar_copies: float  # share of non-empty bars that copy an earlier bar note for note
    varied_bars: float  # share of non-empty bars within a small edit distance of an earlier one
    ioi_counts: np.ndarray  # inter-onset intervals per class of IOI_LABELS
    interval_counts: np.ndarray  # line intervals per class of INTERVAL_CLASSES
    key_halves: bool | None  # same key signature in both halves
    key_section: bool | None  # same key signature in bars 1-4 and 5-8
    in_key: float  # share of notes in the key's scale (NaN: no notes)
    pc_entropy: float  # bits
    pitch_range: int  # semitones
    copied: tuple[int, int]  # (8-note pitch sequences found in the training data, sequences)
    restated: float | None = field(default=None)  # share of the engine's steps that restated a section

    @property
    def notes_per_bar(self) -> float:
        return self.notes / self.bars if self.bars else 0.0

    def features(self) -> np.ndarray:
        """The classifier's features, in the order of ``FEATURE_NAMES``."""
        return np.concatenate(
            [
                _shares(self.interval_counts),
                _shares(self.ioi_counts),
                [self.pc_entropy, self.pitch_range, self.repeated_share, self.bar_copies, self.varied_bars],
                [0.0 if math.isnan(self.in_key) else self.in_key, self.notes_per_bar],
            ]
        )


def clip_to(notes: Sequence[Note], bars: int) -> list[Note]:
    """The notes starting in the first ``bars`` bars (a generated piece's opening, as if generated that long)."""
    limit = bars * BEATS_PER_BAR
    return [n for n in notes if n.start < limit]


def interval_histogram(notes: Sequence[Note]) -> np.ndarray:
    pitches = [pitch for _, pitch in line(notes)]
    counts = np.zeros(len(INTERVAL_CLASSES))
    for a, b in zip(pitches, pitches[1:], strict=False):
        step = b - a
        counts[next(i for i, (_, low, high) in enumerate(INTERVAL_CLASSES) if low <= step <= high)] += 1
    return counts


def measure(notes: Sequence[Note], bars: int, train_keys: np.ndarray) -> PieceMeasures:
    """``notes``' first ``bars`` bars, measured."""
    notes = clip_to(notes, bars)
    beats = span_beats(notes, bars * BEATS_PER_BAR)
    whole = int(beats // BEATS_PER_BAR)
    repeats, share = repetition(notes)
    copies, varied, _ = bar_repetition(notes, whole)
    pitches = [n.pitch for n in notes]
    return PieceMeasures(
        bars=whole,
        notes=len(notes),
        repeats=repeats,
        repeated_share=share,
        bar_copies=copies,
        varied_bars=varied,
        ioi_counts=ioi_histogram(notes),
        interval_counts=interval_histogram(notes),
        key_halves=key_holds(notes, beats / 2),
        key_section=key_holds(notes, SECTION_BARS // 2 * BEATS_PER_BAR, SECTION_BARS * BEATS_PER_BAR),
        in_key=in_key(notes),
        pc_entropy=pitch_class_entropy(notes),
        pitch_range=max(pitches) - min(pitches) if pitches else 0,
        copied=copy_counts(notes, train_keys),
    )


def summarise(pieces: Sequence[PieceMeasures]) -> dict:
    """A set of pieces' statistics (the shares of pieces, the means over pieces, the pooled histograms)."""
    pieces = [p for p in pieces if p.notes]
    ioi = sum((p.ioi_counts for p in pieces), np.zeros(len(IOI_LABELS)))
    copied = np.array([p.copied for p in pieces]).reshape(-1, 2).sum(0)
    restated = [p.restated for p in pieces if p.restated is not None]
    return {
        "pieces": len(pieces),
        "repeats": _mean([p.repeats for p in pieces]),
        "repeated_share": _mean([p.repeated_share for p in pieces]),
        "bar_copies": _mean([p.bar_copies for p in pieces]),
        "varied_bars": _mean([p.varied_bars for p in pieces]),
        "restated": _mean(restated),
        "ioi": dict(zip(IOI_LABELS, _shares(ioi).round(4).tolist(), strict=True)),
        "ioi_counts": ioi,
        "notes_per_bar": _mean([p.notes_per_bar for p in pieces]),
        "key_halves": _mean([p.key_halves for p in pieces if p.key_halves is not None]),
        "key_section": _mean([p.key_section for p in pieces if p.key_section is not None]),
        "in_key": _mean([p.in_key for p in pieces if not math.isnan(p.in_key)]),
        "copy_rate": float(copied[0] / copied[1]) if copied[1] else float("nan"),
    }


def feature_matrix(pieces: Sequence[PieceMeasures]) -> np.ndarray:
    """[pieces, features] for the two-sample test; pieces without notes left out."""
    rows = [p.features() for p in pieces if p.notes]
    return np.array(rows).reshape(len(rows), len(FEATURE_NAMES))


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total > 0 else np.zeros_like(counts, dtype=float)


def _mean(values: Sequence[float | bool]) -> float:
    return float(np.mean(values)) if len(values) else float("nan")
