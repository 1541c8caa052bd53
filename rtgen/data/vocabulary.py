"""Every encoding by name or from its saved JSON, and the chord vocabulary counted on a training split.

The three encodings (event in ``rtgen.encoding``, time-step in
``rtgen.data.timestep``, chord in ``rtgen.data.chords``) meet here, where
checkpoints, caches, training runs and benchmarks ask for them by name: this
is the one ``make_encoding`` and the one ``encoding_from_json``.
A chord encoding made by name has no vocabulary yet; ``fit_vocabulary``
counts its onsets on the training pieces of every corpus of a run, in every
key the training streams hold them, so the kept tokens are the ones the
model trains on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from rtgen.data.chords import ChordEncoding, Meaning, shifted
from rtgen.data.files import melody_line
from rtgen.data.timestep import TimeStepEncoding
from rtgen.data.tokens import SHIFTS, shift_allowed, split_valid
from rtgen.encoding import Encoding, EncodingError, EventEncoding, check_same_vocabulary, quantise

ENCODINGS: dict[str, type] = {"event": EventEncoding, "timestep": TimeStepEncoding, "chord": ChordEncoding}


def make_encoding(name: str = "event", **settings) -> Encoding:
    """An encoding by name; a chord encoding made here is still to be fitted to a corpus."""
    if name not in ENCODINGS:
        raise EncodingError(f"unknown encoding {name!r}; choose from {', '.join(ENCODINGS)}")
    try:
        return ENCODINGS[name](**settings)
    except TypeError as error:
        raise EncodingError(f"{name} encoding settings do not fit ({error})") from None


def encoding_from_json(data: dict) -> Encoding:
    """Rebuild any encoding from its saved vocabulary (a chord one without its corpus), refusing a mismatch."""
    settings = {k: v for k, v in data.items() if k not in ("name", "tokens")}
    name = data.get("name", "?")
    if name == ChordEncoding.name and settings.get("vocabulary") is None:
        raise EncodingError("a saved chord encoding needs its vocabulary (the kept onset tokens)")
    encoding = make_encoding(name, **settings)
    check_same_vocabulary(encoding.to_json(), data)
    return encoding


def fit_vocabulary(
    encoding, corpora: Sequence, *, transpose: bool = True, valid_fraction: float = 0.1, seed: int = 0
) -> ChordEncoding:
    """``encoding`` with the vocabulary of the training pieces of ``corpora`` (``NoteCorpus``es).

    The split, the melody line and the transposed keys are the ones
    ``rtgen.data.tokens`` gives the training streams, so an onset's count is
    how often the model will see it.
    """
    counts: Counter[Meaning] = Counter()
    for corpus in corpora:
        valid = split_valid(corpus.names, valid_fraction, seed)
        for notes, is_valid in zip(corpus.pieces, valid, strict=True):
            if not is_valid:
                _count_piece(encoding, notes, corpus.parts, transpose, counts)
    return encoding.with_counts(counts)


def _count_piece(encoding: ChordEncoding, notes, parts: str, transpose: bool, counts: Counter) -> None:
    low, high = min(n.pitch for n in notes), max(n.pitch for n in notes)
    notes = quantise(notes, encoding.steps_per_beat)
    own = Counter(encoding.grid_meanings(melody_line(notes) if parts == "melody" else notes))
    for semitones in [s for s in SHIFTS if shift_allowed(low, high, s)] if transpose else [0]:
        for meaning, count in own.items():
            moved = shifted(meaning, semitones)
            if moved is not None:
                counts[moved] += count
