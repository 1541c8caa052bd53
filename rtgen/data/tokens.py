"""From a corpus's notes to its token arrays: encoding, the train/validation split, transposition.

Transposition (the ESAC paper's "all 12 keys"): every training piece is also
shifted by -5..+6 semitones, except shifts that would take it further outside
the piano range (21-108) than the original already is. Validation pieces stay
in their own key. Shifting works on tokens through a lookup table, exact for
the event and time-step encodings, so each piece is encoded once; a chord
token whose shifted form was dropped from the vocabulary becomes its nearest
kept one (exact wherever the shifted form was kept).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rtgen.data.files import melody_line
from rtgen.encoding import Encoding, Note, quantise

SHIFTS = range(-5, 7)  # semitones of the transposed copies, 0 included: all 12 keys
PIANO_RANGE = (21, 108)


@dataclass(frozen=True)
class CorpusStats:
    """What ``load_tokens`` made of a source; notes and tokens counted as encoded."""

    source: str
    parts: str
    encoding: str
    files: int  # music files in the source, whatever the limit
    pieces: int  # usable pieces, training and validation
    train_pieces: int
    valid_pieces: int
    notes: int  # every piece once, in its own key
    train_notes: int
    valid_notes: int
    train_tokens: int  # training pieces in their own key
    train_tokens_transposed: int  # training pieces with their transposed copies
    valid_tokens: int
    train_sequences: int  # training pieces with their transposed copies
    pitch_low: int
    pitch_high: int
    transpose: bool
    skipped: tuple[tuple[str, str], ...]  # (file or piece name, reason)

    @classmethod
    def from_json(cls, data: dict) -> CorpusStats:
        return cls(**{**data, "skipped": tuple(tuple(item) for item in data["skipped"])})


def encode_pieces(pieces: list[list[Note]], encoding: Encoding, parts: str) -> list[np.ndarray]:
    """Each piece's tokens (int16); a melody is first made monophonic on the encoding's grid."""
    out = []
    for notes in pieces:
        if parts == "melody":
            notes = melody_line(quantise(notes, encoding.steps_per_beat))
        out.append(np.asarray(encoding.encode(notes), dtype=np.int16))
    return out


def split_valid(names: Sequence[str], valid_fraction: float, seed: int = 0) -> np.ndarray:
    """True for validation pieces: the ``valid_fraction`` of pieces whose seeded name hash is lowest.

    Deterministic and independent of reading order; at least one validation
    piece, and one training piece, when there are two or more pieces.
    """
    valid = np.zeros(len(names), dtype=bool)
    if len(names) < 2 or valid_fraction <= 0:
        return valid
    count = min(len(names) - 1, max(1, round(valid_fraction * len(names))))
    digests = [hashlib.blake2b(f"{seed}\0{name}".encode(), digest_size=8).digest() for name in names]
    valid[sorted(range(len(names)), key=digests.__getitem__)[:count]] = True
    return valid


def transposition_table(encoding: Encoding, semitones: int) -> np.ndarray:
    """``table[tokens]`` is ``tokens`` transposed by ``semitones``: each token's ``transposed_id``.

    Exact for the fixed vocabularies (shifting every pitch changes no order
    among events); a chord token whose shifted set was dropped maps to its
    nearest kept one. Pitches pushed out of 0-127 stay unmapped
    (``shift_allowed`` never asks for them).
    """
    return np.array([encoding.transposed_id(t, semitones) for t in range(len(encoding))], dtype=np.int16)


def shift_allowed(low: int, high: int, semitones: int) -> bool:
    """Within 0-127, and no further outside the piano range than the piece (pitches low-high) already is."""
    return min(PIANO_RANGE[0], low) <= low + semitones and high + semitones <= max(PIANO_RANGE[1], high)


def assemble(
    notes, originals: list[np.ndarray], encoding: Encoding, transpose: bool, valid_fraction: float, seed: int
) -> tuple[dict[str, np.ndarray], CorpusStats]:
    """The arrays ``TokenCorpus`` holds (and the cache stores), from a ``NoteCorpus`` and its pieces' tokens."""
    valid = split_valid(notes.names, valid_fraction, seed)
    tables = {s: transposition_table(encoding, s) for s in SHIFTS if s and transpose}
    rows: list[tuple[int, int, np.ndarray]] = []  # (piece, shift, tokens)
    low, high = 127, 0
    for i, (piece_notes, tokens) in enumerate(zip(notes.pieces, originals, strict=True)):
        piece_low, piece_high = min(n.pitch for n in piece_notes), max(n.pitch for n in piece_notes)
        low, high = min(low, piece_low), max(high, piece_high)
        shifts = [0] if valid[i] or not transpose else [s for s in SHIFTS if shift_allowed(piece_low, piece_high, s)]
        rows.extend((i, s, tables[s][tokens] if s else tokens) for s in shifts)
    lengths = np.array([len(tokens) for _, _, tokens in rows], dtype=np.int64)
    arrays = {
        "names": np.array(notes.names, dtype=str),
        "valid": valid,
        "tokens": np.concatenate([tokens for _, _, tokens in rows]).astype(np.int16),
        "offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        "piece": np.array([i for i, _, _ in rows], dtype=np.int32),
        "shift": np.array([s for _, s, _ in rows], dtype=np.int8),
    }
    in_valid = valid[arrays["piece"]]
    own_key = arrays["shift"] == 0
    notes_of = np.array([encoding.note_count(t) for t in range(len(encoding))], dtype=np.int64)  # notes a token starts
    note_ons = np.array([notes_of[tokens].sum() for tokens in originals], dtype=np.int64)
    stats = CorpusStats(
        source=notes.source,
        parts=notes.parts,
        encoding=encoding.name,
        files=notes.files,
        pieces=len(notes.names),
        train_pieces=int((~valid).sum()),
        valid_pieces=int(valid.sum()),
        notes=int(note_ons.sum()),
        train_notes=int(note_ons[~valid].sum()),
        valid_notes=int(note_ons[valid].sum()),
        train_tokens=int(lengths[~in_valid & own_key].sum()),
        train_tokens_transposed=int(lengths[~in_valid].sum()),
        valid_tokens=int(lengths[in_valid].sum()),
        train_sequences=int((~in_valid).sum()),
        pitch_low=low,
        pitch_high=high,
        transpose=transpose,
        skipped=notes.skipped,
    )
    return arrays, stats
