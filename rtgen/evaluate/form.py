"""A genre's form, measured: how often and how literally its pieces state a section again, and how sections end.

Pure functions over ``Note`` lists (times in beats from a bar line, 4/4), used
twice: on a genre's training pieces to write its form profile
(``models/form.json``, read by the engine through ``rtgen.data.profile``), and
on generated pieces to compare them with real ones (docs/music.md, "Form
composed"). Bars and their copies are ``rtgen.evaluate.bars``'s, as `rtgen
eval music` counts them.

Regenerate the profiles (about 5 minutes the first time, while music21 expands the training pieces' repeats;
a minute once they are cached):
``python -m rtgen.evaluate.form --out models/form.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from collections import Counter
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

from rtgen.data.profile import DEFAULT_PROFILE, OPENINGS_KEPT, PROFILE_FILE, encode_opening
from rtgen.encoding import Note
from rtgen.engine.sampling import detect_key
from rtgen.engine.sections import BAR_BEATS, chord_classes, is_arrival
from rtgen.evaluate.bars import bar_repetition, bars_of, varies

SECTION_BARS = 8  # the span compared with the one before it (a dance tune's strain, two Essen phrases)
RESTATED_BARS = 0.5  # a span restates another when at least this share of its bars equal theirs, bar by bar


def bar_count(notes: Sequence[Note]) -> int:
    """Bars of 4/4 up to the last onset."""
    return 1 + max((int(n.start // BAR_BEATS) for n in notes), default=-1)


def bar_copy_share(notes: Sequence[Note], count: int | None = None) -> float:
    """Share of the non-empty bars (of the first ``count``) that copy an earlier bar exactly; nan without any."""
    copies, _, filled = bar_repetition(notes, bar_count(notes) if count is None else count)
    return copies if filled else float("nan")


def second_half_copies_first(notes: Sequence[Note], bars: int = SECTION_BARS) -> bool:
    """Bars ``bars``+1 to 2x``bars`` repeat bars 1 to ``bars`` note for note (a literal restatement)."""
    cut = bars_of(notes, 2 * bars)
    return any(cut[:bars]) and cut[:bars] == cut[bars:]


def restated_spans(notes: Sequence[Note], bars: int = SECTION_BARS) -> list[float]:
    """For each whole ``bars``-bar span after the first: the share of its bars equal to the span before it.

    Dance tunes written with their repeats as first and second endings, and
    songs whose second phrase pair is the first again, show here.
    """
    cut = bars_of(notes, bar_count(notes))
    spans = len(cut) // bars
    out = []
    for k in range(1, spans):
        pairs = [(cut[(k - 1) * bars + i], cut[k * bars + i]) for i in range(bars)]
        out.append(sum(1 for a, b in pairs if a and a == b) / bars)
    return out


def echo_sources(notes: Sequence[Note], bars: int = SECTION_BARS) -> list[list[int | None]]:
    """For each whole ``bars``-bar span, for each of its bars: the earlier bar of the span that it states again,
    as it was or varied (``rtgen.evaluate.bars.varies``), or None. A bar that states again the bar after the one
    its predecessor stated goes on with that phrase; otherwise the latest such bar. A fiddle tune's bar 3 states
    bar 1 again in 45 % of tunes, its bar 7 bar 5 in 31 %: motifs return inside a strain."""
    cut = bars_of(notes, bar_count(notes))

    def states(at: int, earlier: int) -> bool:
        return bool(cut[at] and cut[earlier] and (cut[at] == cut[earlier] or varies(cut[at], cut[earlier])))

    def source(at: int, start: int, before: int | None) -> int | None:
        if before is not None and states(at, start + before + 1):
            return before + 1
        found = next((j for j in range(at - 1, start - 1, -1) if states(at, j)), None)
        return None if found is None else found - start

    out = []
    for k in range(0, len(cut) - bars + 1, bars):
        span: list[int | None] = []
        for i in range(bars):
            span.append(source(k + i, k, span[-1] if span else None))
        out.append(span)
    return out


RUN_PRIOR = 10  # pseudo-counts pulling a lag's run odds toward the genre's over all lags (lag 5 is rare)


def echo_shares(pieces: Sequence[Sequence[Note]], bars: int = SECTION_BARS) -> tuple[list[float], list[float]]:
    """``FormProfile.echoes`` and ``echo_runs`` of ``pieces``.

    A bar that states bar j + 1 again after the bar before it stated bar j
    *continues* an echo (a phrase stated again, not a motif). ``echo_runs[lag
    - 1]`` is the share of echoes at that lag that continue, pulled toward
    the share over all lags by ``RUN_PRIOR`` echoes, for lags 1 to ``bars`` - 2
    (an echo of lag ``bars`` - 1 sits in the span's last bar). ``echoes[i * (i - 1) //
    2 + j]`` is the share of spans whose bar i begins an echo of bar j, among
    the spans whose bar i continues none.
    """
    spans = [span for p in pieces for span in echo_sources(p, bars)]
    if not spans:
        return [], []
    begun = [0] * (bars * (bars - 1) // 2)
    continued, went, could = [0] * bars, [0] * bars, [0] * bars  # by bar; by lag, runs that went on and could
    for span in spans:
        for i, j in enumerate(span):
            before = span[i - 1] if i > 0 else None
            goes = j is not None and before is not None and j == before + 1
            if before is not None:
                could[i - 1 - before] += 1
                went[i - 1 - before] += goes
            if goes:
                continued[i] += 1
            elif j is not None:
                begun[i * (i - 1) // 2 + j] += 1
    left = [max(1, len(spans) - c) for c in continued]  # spans whose bar i continues no echo
    shares = [round(begun[i * (i - 1) // 2 + j] / left[i], 4) for i in range(bars) for j in range(i)]
    overall = sum(went) / sum(could) if sum(could) else 0.0
    runs = [round((went[lag] + RUN_PRIOR * overall) / (could[lag] + RUN_PRIOR), 4) for lag in range(1, bars - 1)]
    return shares, runs


def echo_bars(echoes: Sequence[float], runs: Sequence[float], bars: int = SECTION_BARS) -> float:
    """Bars of a span that state an earlier bar again, expected: echoes begun, each going on with its lag's odds."""
    if not echoes:
        return 0.0
    total, echoing = 0.0, [0.0] * bars  # echoing[lag]: the chance that the bar before states the bar lag back
    for i in range(1, bars):
        going = [echoing[lag] * runs[lag - 1] if 0 < lag <= len(runs) else 0.0 for lag in range(bars)]
        fresh = 1 - sum(going)
        echoing = [
            going[lag] + fresh * (echoes[i * (i - 1) // 2 + i - lag] if 0 < lag <= i else 0.0) for lag in range(bars)
        ]
        total += sum(echoing)
    return total


def echo_literal(pieces: Sequence[Sequence[Note]], bars: int = SECTION_BARS) -> float:
    """Of the bars that state an earlier bar of their span again, the share that state it note for note."""
    same = total = 0
    for notes in pieces:
        cut = bars_of(notes, bar_count(notes))
        for k, span in zip(range(0, len(cut), bars), echo_sources(notes, bars), strict=False):
            echoed = [(i, j) for i, j in enumerate(span) if j is not None]
            total += len(echoed)
            same += sum(1 for i, j in echoed if cut[k + i] == cut[k + j])
    return same / total if total else 1.0


def piece_key(notes: Sequence[Note]) -> tuple[int, str]:
    """The key the engine would find for the whole piece (``detect_key``, durations as weights)."""
    return detect_key((n.pitch, float(n.duration)) for n in notes)


def in_key_share(notes: Sequence[Note], key: tuple[int, str] | None = None) -> float:
    """Share of notes in ``key``'s scale as the key prior counts them (a minor key's leading tone in), default the
    piece's own key; nan without notes. ``rtgen.evaluate.statistics.in_key`` counts natural minor."""
    from rtgen.engine.sampling import SCALES

    if not notes:
        return float("nan")
    tonic, scale = key or piece_key(notes)
    classes = {(tonic + step) % 12 for step in SCALES[scale]}
    return sum(1 for n in notes if n.pitch % 12 in classes) / len(notes)


def ends_on_arrival(notes: Sequence[Note], end_beat: Fraction, key: tuple[int, str]) -> bool:
    """Whether the bar before ``end_beat`` (a bar line) has an arrival: a stable chord on one of its strong beats."""
    bar_start = end_beat - BAR_BEATS
    for beat in (bar_start + 2, bar_start):  # the later strong beat is the arrival where both have one
        pitches = [n.pitch for n in notes if n.start == beat]
        if pitches:
            return is_arrival(pitches, key)
    return False


def section_ends(notes: Sequence[Note], bars: int = SECTION_BARS) -> list[Fraction]:
    """Where a real piece's sections end: every ``bars``-th bar line inside it, and its last bar line."""
    if not notes:
        return []
    end = Fraction(-(-max(n.end for n in notes) // BAR_BEATS) * BAR_BEATS)
    every = [Fraction(k * bars * BAR_BEATS) for k in range(1, int(end // (bars * BAR_BEATS)) + 1)]
    return sorted(set(every) | {end})


def cadence_share(
    pieces: Sequence[tuple[Sequence[Note], Sequence[Fraction]]], keys: Sequence[tuple[int, str]] | None = None
) -> float:
    """Share of section ends, over (notes, end bar lines) pairs, that close on an arrival in the piece's key, or
    in ``keys`` (one a piece: e.g. its seed's, the key the engine's key prior holds)."""
    keys = keys or [piece_key(notes) for notes, _ in pieces]
    verdicts = [
        ends_on_arrival(notes, end, key) for (notes, ends), key in zip(pieces, keys, strict=True) for end in ends
    ]
    return sum(verdicts) / len(verdicts) if verdicts else float("nan")


def tonic_beat_share(notes: Sequence[Note], key: tuple[int, str] | None = None) -> float:
    """Share of the notes struck on beats 1 and 3 of a 4/4 bar that sound ``key``'s tonic triad (default the piece's
    own key): the key a listener hears in every bar; nan without such notes."""
    home, _ = chord_classes(key or piece_key(notes))
    strong = [n.pitch % 12 in home for n in notes if n.start % (BAR_BEATS // 2) == 0]
    return sum(strong) / len(strong) if strong else float("nan")


def copies_if_restated(literal: float, bars: int = SECTION_BARS) -> float:
    """Share of a 2 x ``bars``-bar piece's bars that copy one when a section is stated again with ``literal`` of
    its bars as they were and a second ending."""
    return (bars - 1) * literal / (2 * bars)


def pitch_spread(notes: Sequence[Note], bars: int = SECTION_BARS) -> float:
    """Mean standard deviation (semitones) of the pitches struck in each ``bars``-bar span; nan without notes."""
    spans: dict[int, list[int]] = {}
    for note in notes:
        spans.setdefault(int(note.start // (BAR_BEATS * bars)), []).append(note.pitch)
    deviations = [statistics.pstdev(pitches) for pitches in spans.values() if len(pitches) > 1]
    return sum(deviations) / len(deviations) if deviations else float("nan")


def measure(pieces: Sequence[Sequence[Note]]) -> dict[str, float]:
    """A genre's form profile from its pieces (``rtgen.data.profile.FormProfile``'s fields).

    As notated, a dance tune's repeats are signs, not bars: its 8-bar spans
    state the one before again in 5 % of fiddle spans, yet 18 % of its bars
    copy an earlier bar (``profiles`` measures pieces as played). ``restate`` is therefore the share of sections to
    state again so that a piece copies as many bars as the corpus does
    (``bar_copy`` over ``copies_if_restated``), less the bars its echoes copy
    (``echoes``: a bar stated again inside a span, as it was in
    ``echo_literal`` of them); ``spans_restated`` keeps the share as measured.
    """
    pieces = [p for p in pieces if p]
    spans = [s for p in pieces for s in restated_spans(p)]
    restated = [s for s in spans if s >= RESTATED_BARS]
    copies = [c for c in (bar_copy_share(p) for p in pieces) if c == c]
    in_key = [s for s in (in_key_share(p) for p in pieces) if s == s]
    spreads = [s for s in (pitch_spread(p) for p in pieces) if s == s]
    tonic = [s for s in (tonic_beat_share(p) for p in pieces) if s == s]
    literal = sum(restated) / len(restated) if restated else 1.0
    bar_copy = sum(copies) / len(copies) if copies else 0.0
    (echoes, runs), echoes_literal = echo_shares(pieces), echo_literal(pieces)
    echoed = echo_bars(echoes, runs) * echoes_literal / SECTION_BARS  # of a span's bars, those its echoes copy
    return {
        "restate": round(min(1.0, max(0.0, bar_copy - echoed) / copies_if_restated(literal)), 4),
        "spans_restated": round(len(restated) / len(spans), 4) if spans else 0.0,
        "literal": round(literal, 4),
        "bar_copy": round(bar_copy, 4),
        "in_key": round(sum(in_key) / len(in_key), 4) if in_key else 1.0,
        "cadence": round(cadence_share([(p, section_ends(p)) for p in pieces]), 4),
        "tonic_beats": round(sum(tonic) / len(tonic), 4) if tonic else DEFAULT_PROFILE.tonic_beats,
        "spread": round(sum(spreads) / len(spreads), 4) if spreads else 6.0,
        "echoes": echoes,
        "echo_runs": runs,
        "echo_literal": round(echoes_literal, 4),
    }


def openings(pieces: Sequence[Sequence[Note]], kept: int = OPENINGS_KEPT) -> list[list[list[int]]]:
    """The first ``OPENING_BARS`` bars of up to ``kept`` pieces spread evenly over them, as stored seeds."""
    with_notes = [p for p in pieces if p]
    chosen = [with_notes[i * len(with_notes) // kept] for i in range(min(kept, len(with_notes)))]
    return [encode_opening(p) for p in chosen]


def profiles(genres: Sequence[str], max_train: int = 400, seed: int = 0) -> dict:
    """Every genre's profile (from up to ``max_train`` training pieces, as played) and seed openings (validation
    pieces)."""
    from rtgen.evaluate.fidelity import genre_sources, load_pieces

    sources = genre_sources(genres)
    _, valid = load_pieces(sources, max_train=0)
    return {
        genre: {
            "profile": measure(played_training(sources[genre], max_train, seed)),
            "openings": openings(valid[genre]),
        }
        for genre in genres
    }


def played_training(spec: dict, max_train: int, seed: int) -> list[list[Note]]:
    """Up to ``max_train`` training pieces in their own key (a seeded choice), each as played: its repeat marks
    expanded where it has any (``rtgen.data.repeats``, cached), else as notated. A player plays a fiddle tune's A
    part twice; the form the engine composes is the one a listener hears."""
    from rtgen.data.corpus import load_tokens
    from rtgen.data.repeats import expanded_pieces

    corpus = load_tokens(spec["source"], parts=spec["parts"], limit=spec["limit"], progress=False)
    rows = [int(r) for r in np.flatnonzero((corpus.shift == 0) & ~corpus.valid_piece[corpus.piece])]
    random.Random(seed).shuffle(rows)
    rows = rows[:max_train]
    expanded, _ = expanded_pieces(spec["source"], corpus, [corpus.names[corpus.piece[r]] for r in rows])
    notated = (corpus.encoding.decode(corpus.tokens[corpus.offsets[r] : corpus.offsets[r + 1]].tolist()) for r in rows)
    return [e if e is not None else n for e, n in zip(expanded, notated, strict=False)]


def sixteenth_share(notes: Sequence[Note]) -> float:
    """Share of inter-onset intervals (between distinct onsets) that are a sixteenth; nan with fewer than 2 onsets."""
    onsets = sorted({n.start for n in notes})
    gaps = [b - a for a, b in zip(onsets, onsets[1:], strict=False)]
    return sum(1 for g in gaps if g == Fraction(1, 4)) / len(gaps) if gaps else float("nan")


def figures(
    pieces: Sequence[Sequence[Note]], ends: Sequence[Sequence[Fraction]], seeds: Sequence[Sequence[Note]], bars: int
) -> dict[str, float]:
    """What docs/music.md reports of pieces cut at ``bars`` bars, with each one's section ends and seed phrase."""
    from rtgen.evaluate.statistics import in_key

    kept = [
        ([n for n in p if n.start < BAR_BEATS * bars], e, piece_key(seed))
        for p, e, seed in zip(pieces, ends, seeds, strict=True)
        if p and seed
    ]
    cut, ends, seed_keys = [k[0] for k in kept], [k[1] for k in kept], [k[2] for k in kept]

    def mean(values) -> float:
        values = [v for v in values if v == v]
        return round(sum(values) / len(values), 4) if values else float("nan")

    return {
        "pieces": len(cut),
        "bar_copy": mean(bar_copy_share(p, bars) for p in cut),
        "literal_second_half": sum(second_half_copies_first(p, bars // 2) for p in cut),
        "cadence": round(cadence_share(list(zip(cut, ends, strict=True))), 4),
        "cadence_seed_key": round(cadence_share(list(zip(cut, ends, strict=True)), seed_keys), 4),
        "sixteenths": mean(sixteenth_share(p) for p in cut),
        "in_key": mean(in_key(p) for p in cut),  # as rtgen eval music counts (natural minor)
        "in_key_harmonic": mean(in_key_share(p) for p in cut),  # as the key prior counts (leading tone in)
    }


def compare(genres: Sequence[str], pieces: int, bars: int, variation: float | None = None) -> dict:
    """Per genre: ``pieces`` generated as `rtgen generate --genres G=1` (no seed phrase, --seed 0..) against the
    same number of real validation openings, each cut at ``bars`` bars."""
    from rtgen.data.seeds import genre_opening
    from rtgen.engine.controls import Controls
    from rtgen.engine.form import FORM_CONTROLS
    from rtgen.engine.offline import generate_notes
    from rtgen.engine.warm import Engine
    from rtgen.evaluate.fidelity import genre_sources, load_pieces

    _, valid = load_pieces(genre_sources(genres), max_train=1)
    out = {}
    for genre in genres:
        controls = Controls(weights={genre: 1.0}, **FORM_CONTROLS)
        if variation is not None:
            controls = controls.replace(variation=variation)
        engine = Engine.from_names([genre], "cpu", controls, conditional=None, twophase=None)
        made, made_ends, primes, whys = [], [], [], Counter()
        for seed in range(pieces):
            primes.append(genre_opening(genre, seed) or [])
            made.append(generate_notes(engine, primes[-1], bars, seed=seed))
            inside = [(beat, why) for beat, why in engine.section_ends if beat <= BAR_BEATS * bars]
            made_ends.append([Fraction(beat).limit_denominator(12) for beat, _ in inside])
            whys.update(why for _, why in inside)
        real = [p for p in valid[genre] if p]
        real = [real[i * len(real) // pieces] for i in range(min(pieces, len(real)))]
        real_cut = [[n for n in p if n.start < BAR_BEATS * bars] for p in real]
        real_primes = [[n for n in p if n.start < 2 * BAR_BEATS] for p in real]  # as eval music primes
        out[genre] = {
            "generated": figures(made, made_ends, primes, bars),
            "real": figures(real_cut, [section_ends(p, SECTION_BARS) for p in real_cut], real_primes, bars),
            "section_ends": dict(whys),
        }
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rtgen.evaluate.form", description=__doc__.split("\n")[0])
    parser.add_argument("--genres", default="folk,fiddle,chorale,renaissance")
    parser.add_argument("--out", default=f"models/{PROFILE_FILE}", help="where the profiles are written")
    parser.add_argument("--max-train", type=int, default=400, help="training pieces measured per genre")
    parser.add_argument("--compare", type=int, metavar="PIECES", help="instead: generated against real figures")
    parser.add_argument("--bars", type=int, default=16, help="--compare: bars per piece")
    parser.add_argument("--variation", type=float, help="--compare: the variation control (default: the form's)")
    args = parser.parse_args(argv)
    genres = [g for g in args.genres.split(",") if g]
    if args.compare:
        print(json.dumps(compare(genres, args.compare, args.bars, args.variation), indent=1))
        return 0
    result = profiles(genres, args.max_train)
    Path(args.out).write_text(json.dumps(result, separators=(",", ":")) + "\n")
    for genre, entry in result.items():
        print(genre, entry["profile"], f"{len(entry['openings'])} openings")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
