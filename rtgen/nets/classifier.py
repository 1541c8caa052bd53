"""A genre classifier for fidelity checks: per-genre trigram models over transposition-free note features.

Why this design: it must judge generated pieces, which come in any key and
from models that never saw the classifier, so it looks only at what survives
transposition and says "genre" in these corpora:

* ``interval``: semitones between successive melody notes (the skyline: the
  highest note at each onset), clipped to +-12 (25 symbols);
* ``duration``: the time to the next melody onset (the last note's own
  length), snapped in log space to 12 classes from 1/12 to 6 beats;
* ``texture``: how many notes sound just after each onset, 1-5 (monophonic
  folk and fiddle tunes against four-part chorales and renaissance polyphony).

Each stream has a trigram model per genre, Witten-Bell interpolated down to
an add-one unigram, so unseen contexts still get sensible probabilities. A
piece is scored by the mean log-likelihood per event of each stream, summed
over streams (so long pieces do not outvote short ones); the best genre wins.
Tables are dense count arrays saved as ``.npz`` (loaded with
``allow_pickle=False``) beside the models.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from rtgen.encoding import Note
from rtgen.errors import RtgenError

MAX_INTERVAL = 12
DURATION_CLASSES = (
    Fraction(1, 12),
    Fraction(1, 6),
    Fraction(1, 4),
    Fraction(1, 3),
    Fraction(1, 2),
    Fraction(2, 3),
    Fraction(3, 4),
    Fraction(1),
    Fraction(3, 2),
    Fraction(2),
    Fraction(3),
    Fraction(4),
)
MAX_TEXTURE = 5
CLASSIFIER_FILE = "classifier.npz"  # beside the genre models
STREAMS: dict[str, int] = {"interval": 2 * MAX_INTERVAL + 1, "duration": len(DURATION_CLASSES), "texture": MAX_TEXTURE}
_LOG_DURATIONS = np.log([float(d) for d in DURATION_CLASSES])


class ClassifierError(RtgenError):
    """A classifier file that is missing or damaged, or a classifier asked about nothing."""


def features(notes: Sequence[Note]) -> dict[str, list[int]]:
    """The three symbol streams of a piece (see the module docstring); empty lists for no notes."""
    onsets: dict[Fraction, list[Note]] = {}
    for note in notes:
        onsets.setdefault(note.start, []).append(note)
    times = sorted(onsets)
    melody = [max(onsets[t], key=lambda n: n.pitch) for t in times]
    intervals = [_clip(b.pitch - a.pitch) + MAX_INTERVAL for a, b in zip(melody, melody[1:], strict=False)]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)] + ([melody[-1].duration] if melody else [])
    ends = sorted(n.end for n in notes)
    starts = sorted(n.start for n in notes)
    texture = [
        min(MAX_TEXTURE, _count_le(starts, t) - _count_le(ends, t)) - 1 for t in times
    ]  # notes begun by t minus notes ended by t: those sounding just after t (>= 1)
    return {"interval": intervals, "duration": [duration_class(g) for g in gaps], "texture": texture}


def _clip(semitones: int) -> int:
    return max(-MAX_INTERVAL, min(MAX_INTERVAL, semitones))


def _count_le(values: list[Fraction], t: Fraction) -> int:
    return bisect.bisect_right(values, t)


def duration_class(beats: Fraction) -> int:
    """Index of the nearest duration class in log space (anything longer than 6 beats is the last)."""
    return int(np.argmin(np.abs(_LOG_DURATIONS - math.log(max(float(beats), 1e-3)))))


def _trigrams(symbols: list[int], size: int) -> Iterable[tuple[int, int, int]]:
    """(a, b, s) for each symbol s with its two predecessors; ``size`` stands for "start"."""
    a = b = size
    for s in symbols:
        yield a, b, s
        a, b = b, s


def _counts(pieces: Iterable[dict[str, list[int]]]) -> dict[str, np.ndarray]:
    counts = {name: np.zeros((size + 1, size + 1, size), dtype=np.int64) for name, size in STREAMS.items()}
    for piece in pieces:
        for name, size in STREAMS.items():
            for a, b, s in _trigrams(piece[name], size):
                counts[name][a, b, s] += 1
    return counts


def _witten_bell(counts: np.ndarray) -> np.ndarray:
    """log P(s | a, b) [S+1, S+1, S] from trigram counts, interpolated with bigram and add-one unigram."""
    size = counts.shape[2]
    unigram_counts = counts.sum(axis=(0, 1))
    unigram = (unigram_counts + 1.0) / (unigram_counts.sum() + size)
    bigram_counts = counts.sum(axis=0)  # [S+1, S]
    bigram = _interpolate(bigram_counts, unigram[None, :])
    trigram = _interpolate(counts, bigram[None, :, :])
    return np.log(trigram)


def _interpolate(counts: np.ndarray, lower: np.ndarray) -> np.ndarray:
    total = counts.sum(axis=-1, keepdims=True).astype(np.float64)
    types = (counts > 0).sum(axis=-1, keepdims=True).astype(np.float64)
    seen = np.maximum(total + types, 1.0)
    return counts / seen + (types + (total == 0)) / np.maximum(total + types, 1.0) * lower


@dataclass
class GenreClassifier:
    """Per-genre trigram tables; ``classify(notes)`` names the likeliest genre."""

    genres: tuple[str, ...]
    counts: dict[str, dict[str, np.ndarray]]  # genre -> stream -> trigram counts
    info: dict  # how it was built and how well it did (sources, accuracy, the rebuild command)

    def __post_init__(self) -> None:
        self._log_p = {g: {s: _witten_bell(c) for s, c in self.counts[g].items()} for g in self.genres}

    @classmethod
    def fit(cls, pieces_by_genre: dict[str, Sequence[Sequence[Note]]], info: dict | None = None) -> GenreClassifier:
        genres = tuple(pieces_by_genre)
        if not genres or any(not pieces for pieces in pieces_by_genre.values()):
            raise ClassifierError("every genre needs at least one training piece")
        counts = {g: _counts(features(p) for p in pieces_by_genre[g]) for g in genres}
        return cls(genres, counts, dict(info or {}))

    def scores(self, notes: Sequence[Note]) -> dict[str, float]:
        """Mean log-likelihood per event, summed over streams, for each genre (higher is likelier)."""
        streams = features(notes)
        if not streams["texture"]:
            raise ClassifierError("cannot classify a piece without notes")
        index = {name: tuple(np.array(list(_trigrams(streams[name], size))).T) for name, size in STREAMS.items()}
        result = {}
        for genre in self.genres:
            total = 0.0
            for name, (a, b, s) in ((n, i) for n, i in index.items() if streams[n]):
                total += float(self._log_p[genre][name][a, b, s].mean())
            result[genre] = total
        return result

    def classify(self, notes: Sequence[Note]) -> str:
        scores = self.scores(notes)
        return max(self.genres, key=lambda g: scores[g])

    def accuracy(self, pieces_by_genre: dict[str, Sequence[Sequence[Note]]]) -> dict[str, float]:
        """Share of each genre's pieces classified as that genre, plus "overall" over all pieces."""
        result, right, total = {}, 0, 0
        for genre, pieces in pieces_by_genre.items():
            pieces = [p for p in pieces if p]
            hits = sum(self.classify(p) == genre for p in pieces)
            result[genre] = hits / len(pieces) if pieces else float("nan")
            right, total = right + hits, total + len(pieces)
        result["overall"] = right / total if total else float("nan")
        return result

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f"{g}/{s}": c for g in self.genres for s, c in self.counts[g].items()}
        meta = json.dumps({"genres": list(self.genres), "streams": STREAMS, "info": self.info}, sort_keys=True)
        partial = path.with_name(path.name + ".partial.npz")
        np.savez_compressed(partial, meta=np.array(meta), **arrays)
        partial.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> GenreClassifier:
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                if meta.get("streams") != STREAMS:
                    raise ClassifierError(f"{path}: built with other feature streams; rebuild it")
                counts = {g: {s: data[f"{g}/{s}"] for s in STREAMS} for g in meta["genres"]}
        except FileNotFoundError:
            raise ClassifierError(f"{path}: no classifier; build it with `rtgen eval classifier`") from None
        except (OSError, ValueError, KeyError) as error:
            raise ClassifierError(f"{path}: not a readable classifier ({error})") from None
        return cls(tuple(meta["genres"]), counts, meta.get("info", {}))


def installed_classifier() -> GenreClassifier:
    """The classifier in the first models folder that has one (the user's, then the shipped one)."""
    from rtgen.paths import models_dirs

    found = [folder / CLASSIFIER_FILE for folder in models_dirs() if (folder / CLASSIFIER_FILE).exists()]
    return GenreClassifier.load(found[0] if found else models_dirs()[-1] / CLASSIFIER_FILE)
