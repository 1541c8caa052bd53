"""Each genre's form profile and real openings, measured from its corpus and shipped in ``models/form.json``.

``rtgen.evaluate.form`` measures them (``python -m rtgen.evaluate.form``):
how many of a genre's bars copy an earlier one, how often its 8-bar spans
state the one before again and how literally (hence how often a section is
stated again), the share of its notes in the piece's
key, the share of its section ends that close on a stable chord, the share
of its strong-beat notes that sound the tonic triad, how
widely its pitches spread within an 8-bar span, and how often an 8-bar
span's bars state its earlier bars again, bar by bar; and the
first two bars of validation pieces (never the training split), spread over
them, as seeds. The engine reads the profile (a blend's lies between its
genres', weighted), the seed chooser the openings. A genre the file does not
know (a user's own model) gets ``DEFAULT_PROFILE`` and no real opening.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from fractions import Fraction
from pathlib import Path

from rtgen.encoding import Note
from rtgen.paths import shipped_models_dir

PROFILE_FILE = "form.json"
OPENING_BARS = 2  # a seed is a genre's first two bars, as `rtgen eval music` primes
OPENINGS_KEPT = 64  # openings stored per genre, spread over its validation pieces
OPENING_STEPS_PER_BEAT = 12  # stored onsets and lengths are in 12ths of a beat (sixteenths and triplets)


@dataclass(frozen=True)
class FormProfile:
    """How a genre's pieces are built; shares in 0-1, the spread in semitones."""

    restate: float = 0.5  # sections stated again: as many as copy the corpus's share of bars (rtgen.evaluate.form)
    spans_restated: float = 0.1  # 8-bar spans that state the span before them again (half their bars equal)
    literal: float = 0.8  # of a restating span, the bars equal to the one before (1 = note for note)
    bar_copy: float = 0.2  # bars that copy an earlier bar exactly
    in_key: float = 0.95  # notes in the key found for the whole piece
    cadence: float = 0.6  # section ends (every 8 bars, the last bar) closing on a tonic or dominant chord
    tonic_beats: float = 0.55  # notes struck on beats 1 and 3 that sound the tonic triad of the piece's key
    spread: float = 6.0  # semitones: the deviation of the pitches in an 8-bar span (a chorale's four voices: wide)
    # [i * (i - 1) // 2 + j] for bars j < i of an 8-bar span (from 0): the share of spans whose bar i begins to
    # state bar j again, as it was or varied (j the latest such bar), among those whose bar i continues no echo;
    # () for a genre never measured (no bar echoes)
    echoes: tuple[float, ...] = ()
    # [lag - 1], lags 1-6: after a bar that states the bar lag bars back again, the odds that the next bar goes on
    # (states the bar after that one again). A fiddle tune's second four bars go on stating its first four (0.78
    # at lag 4), while a motif stated two bars later seldom runs on (0.27); () for a genre never measured (no runs).
    # A blend's are its genres' weighted also by how often each echoes (its echoes' sum)
    echo_runs: tuple[float, ...] = ()
    echo_literal: float = 0.5  # of the bars that state an earlier bar again, those that state it note for note


DEFAULT_PROFILE = FormProfile()


def _stored() -> dict:
    return _read(shipped_models_dir() / PROFILE_FILE)


@functools.cache
def _read(path: Path) -> dict:
    """The profile file at ``path``, read once (the engine derives a profile at every controls change)."""
    return json.loads(path.read_text()) if path.is_file() else {}


def profile(genre: str) -> FormProfile:
    """The genre's measured profile, or ``DEFAULT_PROFILE`` when it was never measured."""
    entry = _stored().get(genre)
    if entry is None:
        return DEFAULT_PROFILE
    known = {f.name for f in fields(FormProfile)}
    return FormProfile(**{k: _number(v) for k, v in entry["profile"].items() if k in known})


def _number(value) -> float | tuple[float, ...]:
    return tuple(float(v) for v in value) if isinstance(value, list) else float(value)


def blend(weights: Mapping[str, float]) -> FormProfile:
    """The profile of a blend: each field the weighted mean of its genres' (weights of any scale, not all 0)."""
    total = sum(weights.values())
    owns = [(profile(genre), weight / total) for genre, weight in weights.items()]
    mixed = {}
    for f in fields(FormProfile):
        values = [(getattr(own, f.name), share) for own, share in owns]
        if f.name == "echo_runs":  # odds given an echo: weighted by how often each genre echoes
            values = [(own.echo_runs, share * sum(own.echoes)) for own, share in owns]
            scale = sum(w for v, w in values if v)
            values = [(v, w / scale) for v, w in values] if scale else []
        if isinstance(getattr(DEFAULT_PROFILE, f.name), tuple):  # a genre never measured adds none
            width = max((len(v) for v, _ in values), default=0)
            mixed[f.name] = tuple(sum(v[k] * w for v, w in values if len(v) == width) for k in range(width))
        else:
            mixed[f.name] = sum(v * w for v, w in values)
    return FormProfile(**mixed)


def encode_opening(notes: Sequence[Note]) -> list[list[int]]:
    """The notes starting in the first ``OPENING_BARS`` bars as [onset, pitch, length, velocity] rows (12ths)."""
    limit = Fraction(4 * OPENING_BARS)
    spb = OPENING_STEPS_PER_BEAT
    return [
        [round(n.start * spb), n.pitch, max(1, round(n.duration * spb)), n.velocity] for n in notes if n.start < limit
    ]


def decode_opening(rows: Sequence[Sequence[int]]) -> list[Note]:
    spb = OPENING_STEPS_PER_BEAT
    return sorted(Note(Fraction(on, spb), pitch, Fraction(length, spb), vel) for on, pitch, length, vel in rows)


def openings(genre: str) -> list[list[Note]]:
    """The genre's stored real openings (empty when it was never measured)."""
    return [decode_opening(rows) for rows in _stored().get(genre, {}).get("openings", [])]
