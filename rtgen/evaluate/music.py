"""``rtgen eval music``: can generated music be told from real music? Per genre, blend and preset, two-sided.

For every setting (each genre alone, the 50/50 blends folk+fiddle and
chorale+renaissance, every preset at its own controls) ``pieces`` pieces are
generated at the longest of ``bars`` (8, 16 and 32 by default) and measured
at each length by their opening, which is what that many bars generated
would have been. Each piece is primed with the opening two bars of a
validation piece of the setting's genres (never the training split; spread
evenly over the split, which comes in corpus order: the first hundred Essen
pieces are mostly in half notes). The real side is up to ``real_pieces``
validation pieces per genre, spread the same way, each measured from its
third bar on (``continuation``: what follows its own two-bar opening, as a
generated piece follows its prime), twice: as notated and as played, with
repeat marks expanded (``rtgen.data.repeats``); a blend's or preset's real
side is its genres' pieces mixed in equal numbers.

Each setting gets, per length and per real side, every statistic against its
two-sided band (``rtgen.evaluate.bands``) and a classifier two-sample test
(``rtgen.evaluate.twosample``): cross-validated accuracy of telling its
pieces from as many real ones, 0.5 = indistinguishable, with each feature's
AUC. The engine's own count of restated tokens (``Engine.restating``) is
reported beside the bar copies seen in the notes. Deterministic for a seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction

import numpy as np

from rtgen.data.repeats import EXPANDED, UNEXPANDABLE
from rtgen.encoding import Note
from rtgen.engine.offline import BEATS_PER_BAR
from rtgen.evaluate.bands import ioi_tv, misses, verdicts
from rtgen.evaluate.features import FEATURE_NAMES, PieceMeasures, feature_matrix, measure, summarise
from rtgen.evaluate.statistics import prime_key_matches
from rtgen.evaluate.twosample import two_sample

BLENDS = (("folk", "fiddle"), ("chorale", "renaissance"))
KINDS = ("genres", "blends", "presets")  # what --settings may name besides single settings
PRIME_BARS = 2
PRIME_BEATS = Fraction(PRIME_BARS * BEATS_PER_BAR)  # a prime lasts its two bars: the piece starts on bar 3
REAL_SIDES = ("expanded", "notated")  # real pieces as played (repeats expanded), and as notated


@dataclass(frozen=True)
class MusicEvalConfig:
    pieces: int = 32  # generated pieces per setting
    bars: tuple[int, ...] = (8, 16, 32)  # lengths measured, in bars of 4/4; pieces are generated at the longest
    seed: int = 0
    settings: tuple[str, ...] = KINDS  # kinds of setting (KINDS) or setting names ("fiddle", "fiddle-reel")
    overrides: tuple[tuple[str, object], ...] = ()  # controls set on top of every setting's (e.g. repeat)
    real_pieces: int = 100  # validation pieces per genre measured (all of them where fewer)
    device: str = "cpu"


@dataclass
class Reference:
    """One genre's real material: validation pieces measured (as notated and as played), primes, training keys."""

    notated: list[list[Note]]
    expanded: list[list[Note]]  # the notated piece where it has no repeat marks
    status: list[str]  # per piece: rtgen.data.repeats' NOTATED, EXPANDED or UNEXPANDABLE
    primes: list[list[Note]]  # two-bar openings of every validation piece
    train_keys: np.ndarray
    validation_pieces: int
    measured: dict = field(default_factory=dict)  # (side, bars) -> [PieceMeasures]

    def measures(self, side: str, bars: int) -> list[PieceMeasures]:
        """Each piece's continuation after its opening (``continuation``), measured at ``bars`` bars."""
        if (side, bars) not in self.measured:
            if side == "expanded":
                notated = self.measures("notated", bars)
                self.measured[side, bars] = [
                    measure(continuation(p), bars, self.train_keys) if s == EXPANDED else m
                    for p, s, m in zip(self.expanded, self.status, notated, strict=True)
                ]
            else:
                self.measured[side, bars] = [measure(continuation(p), bars, self.train_keys) for p in self.notated]
        return self.measured[side, bars]


def continuation(notes: Sequence[Note], bars: int = PRIME_BARS) -> list[Note]:
    """What follows a piece's first ``bars`` bars, its times from there: the real counterpart of a generated
    piece, which continues such an opening and is timed from its first generated token. Against whole pieces,
    real bars 5-8 restate bars 1-2 that a continuation never holds (fiddle as played: repeated 8-note share
    0.70 over bars 1-8, 0.45 over bars 3-10), so the classifier partly told openings from continuations."""
    start = bars * BEATS_PER_BAR
    return [replace(n, start=n.start - start) for n in notes if n.start >= start]


def spread(count: int, total: int) -> list[int]:
    """``count`` indices spread evenly over ``range(total)`` (all of them when ``count`` >= ``total``)."""
    return sorted({k * total // count for k in range(count)}) if count < total else list(range(total))


def references(genres: Sequence[str], real_pieces: int) -> dict[str, Reference]:
    from rtgen.data.corpus import load_tokens
    from rtgen.data.repeats import expanded_pieces
    from rtgen.evaluate.fidelity import genre_sources, load_pieces, opening
    from rtgen.evaluate.statistics import pitch_keys

    sources = genre_sources(genres)
    train, valid = load_pieces(sources, max_train=10**9)
    out = {}
    for genre in genres:
        spec = sources[genre]
        corpus = load_tokens(spec["source"], parts=spec["parts"], limit=spec["limit"], progress=False)
        filled = [i for i, p in enumerate(valid[genre]) if p]
        chosen = [filled[i] for i in spread(real_pieces, len(filled))]
        expanded, status = expanded_pieces(spec["source"], corpus, [corpus.valid_names[i] for i in chosen])
        notated = [valid[genre][i] for i in chosen]
        out[genre] = Reference(
            notated=notated,
            expanded=[e if e is not None else n for e, n in zip(expanded, notated, strict=True)],
            status=status,
            primes=[opening(valid[genre][i], PRIME_BARS) for i in filled],
            train_keys=pitch_keys(train[genre]),
            validation_pieces=len(filled),
        )
    return out


def settings(
    genres: Sequence[str], chosen: Sequence[str] = KINDS, overrides: Sequence[tuple[str, object]] = ()
) -> list[tuple[str, object, tuple[str, ...]]]:
    """(name, Controls, the genres it draws on) for each genre, blend and preset ``chosen`` names (a kind of
    ``KINDS`` or a setting's name; a preset's with or without "preset "); ``overrides`` on top of each.

    Genres and blends play at the default controls, ``FORM_CONTROLS``, as `rtgen generate` does without a preset.
    """
    from rtgen.daemon.presets import list_presets, load_preset
    from rtgen.engine.controls import Controls
    from rtgen.engine.form import FORM_CONTROLS

    out = [("genres", genre, Controls(weights={genre: 1.0}, **FORM_CONTROLS), (genre,)) for genre in genres]
    for first, second in BLENDS:
        if first in genres and second in genres:
            blend = Controls(weights={first: 1.0, second: 1.0}, **FORM_CONTROLS)
            out.append(("blends", f"{first}+{second}", blend, (first, second)))
    for name in list_presets():
        preset = load_preset(name)
        weights = {g: w for g, w in preset.controls.weights.items() if g in genres and w > 0}
        if weights:
            controls = preset.controls.replace(weights=weights)
            out.append(("presets", f"preset {name}", controls, tuple(sorted(weights))))
    wanted = set(chosen)
    return [
        (name, controls.replace(**dict(overrides)), used)
        for kind, name, controls, used in out
        if kind in wanted or name in wanted or name.removeprefix("preset ") in wanted
    ]


class Counted:
    """An engine as ``generate_notes`` steps it, noting before each step its beat and whether it restates."""

    def __init__(self, engine) -> None:
        self.engine, self.encoding = engine, engine.encoding
        self.steps: list[tuple[float, bool]] = []
        self.origin = 0.0  # the engine's beat at the first generated token

    def seed(self, seed: int) -> None:
        self.engine.seed(seed)

    def reset(self) -> None:
        self.engine.reset()
        self.steps.clear()

    def prime(self, notes: Sequence[Note]) -> None:
        self.engine.prime(notes)

    def feed(self, tokens: Sequence[int]) -> None:
        self.engine.feed(tokens)

    def step(self) -> int:
        """The engine's next token; its beat is noted from the first generated token (the piece's time 0)."""
        if not self.steps:
            self.origin = float(self.engine.beat)
        self.steps.append((float(self.engine.beat) - self.origin, self.engine.restating))
        return self.engine.step()

    def restated(self, bars: int) -> float:
        """Share of the steps within the first ``bars`` bars that restated a section."""
        flags = [restating for beat, restating in self.steps if beat < bars * BEATS_PER_BAR]
        return float(np.mean(flags)) if flags else 0.0


class MusicRun:
    """Generates each setting's pieces with engines that step only the genres the setting uses."""

    def __init__(self, refs: dict[str, Reference], config: MusicEvalConfig, tick: Callable[[], None]) -> None:
        self.refs, self.config, self.tick = refs, config, tick
        self.engines: dict[tuple, object] = {}

    def engine(self, controls, genres: tuple[str, ...]):
        from rtgen.engine.warm import Engine

        conditional = controls.method == "conditional"
        key = ("multi",) if conditional else genres
        if key not in self.engines:
            self.engines[key] = Engine.from_names(
                [] if conditional else list(genres),
                self.config.device,
                controls,
                conditional="multi" if conditional else None,
            )
        engine = self.engines[key]
        engine.set_controls(**{f: getattr(controls, f) for f in controls.__dataclass_fields__})
        return engine

    def pieces(self, controls, genres: tuple[str, ...]) -> list[tuple[list[Note], dict[int, float]]]:
        """Each piece at the longest length, with its restated share at every length."""
        from rtgen.engine.offline import generate_notes

        counted = Counted(self.engine(controls, genres))
        per_genre = -(-self.config.pieces // len(genres))
        out = []
        for i in range(self.config.pieces):
            ref = self.refs[genres[i % len(genres)]]
            prime = ref.primes[(i // len(genres)) * len(ref.primes) // per_genre]  # spread over all of them
            notes = generate_notes(
                counted, prime, max(self.config.bars), seed=self.config.seed + i, phrase_beats=PRIME_BEATS
            )
            out.append((notes, {bars: counted.restated(bars) for bars in self.config.bars}))
            self.tick()
        return out


def real_measures(refs: dict[str, Reference], used: Sequence[str], side: str, bars: int) -> list[PieceMeasures]:
    """The real side of a setting: one genre's pieces, or several genres' in equal numbers (spread)."""
    lists = [refs[g].measures(side, bars) for g in used]
    count = min(len(m) for m in lists)
    return [measures[i] for measures in lists for i in spread(count, len(measures))]


def compare(generated: list[PieceMeasures], real: list[PieceMeasures], seed: int) -> dict:
    """One setting at one length against one real side: summaries, verdicts, misses and the two-sample test."""
    summary, real_summary = summarise(generated), summarise(real)
    ok = verdicts(summary, real_summary)
    return {
        "real": _plain(real_summary),
        "ioi_tv": round(ioi_tv(summary, real_summary), 4),
        "ok": ok,
        "misses": misses(ok),
        "two_sample": _plain(two_sample(feature_matrix(generated), feature_matrix(real), FEATURE_NAMES, seed)),
    }


def run_music_eval(config: MusicEvalConfig, genres: Sequence[str], progress: bool = True) -> dict:
    """The report: per setting and length the generated statistics and, per real side, verdicts and test."""
    from tqdm import tqdm

    chosen = settings(genres, config.settings, config.overrides)
    used_genres = [g for g in genres if any(g in used for _, _, used in chosen)]
    refs = references(used_genres, max(config.real_pieces, config.pieces))
    bar = tqdm(total=len(chosen) * config.pieces, desc="eval music", unit="piece", disable=not progress)
    run = MusicRun(refs, config, lambda: bar.update(1))
    report: dict = {"config": _plain(config.__dict__), "real": real_report(refs, config), "settings": {}}
    for name, controls, used in chosen:
        pieces = run.pieces(controls, used)
        train_keys = np.unique(np.concatenate([refs[g].train_keys for g in used]))
        by_length = {}
        for bars in config.bars:
            generated = [measure(notes, bars, train_keys) for notes, _ in pieces]
            for piece, (_, restated) in zip(generated, pieces, strict=True):
                piece.restated = restated[bars]
            sides = {s: compare(generated, real_measures(refs, used, s, bars), config.seed) for s in REAL_SIDES}
            by_length[str(bars)] = {"generated": _plain(summarise(generated)), **sides}
        report["settings"][name] = {"genres": list(used), "bars": by_length}
    bar.close()
    return report


def real_report(refs: dict[str, Reference], config: MusicEvalConfig) -> dict:
    """Per genre: how many pieces, how many had repeats expanded, their statistics at each length and side."""
    out = {}
    for genre, ref in refs.items():
        out[genre] = {
            "validation_pieces": ref.validation_pieces,
            "measured": len(ref.notated),
            "repeats_expanded": sum(s == EXPANDED for s in ref.status),
            "repeats_unexpandable": sum(s == UNEXPANDABLE for s in ref.status),
            "prime_key_matches": prime_keys(ref, config.pieces),
            "bars": {
                str(bars): {side: _plain(summarise(ref.measures(side, bars))) for side in REAL_SIDES}
                for bars in config.bars
            },
        }
    return out


def prime_keys(ref: Reference, count: int) -> float:
    """Share of ``count`` measured pieces (spread) whose two-bar opening gets, from ``detect_key``, the key
    signature music21 finds for their first 8 bars (a soft key held in another key pulls the piece away)."""
    from rtgen.evaluate.fidelity import opening

    chosen = spread(count, len(ref.notated))
    matches = [prime_key_matches(opening(ref.notated[k], PRIME_BARS), opening(ref.notated[k], 8)) for k in chosen]
    return sum(matches) / len(matches) if matches else float("nan")


def _plain(data):
    """JSON-ready: arrays to lists, NaN to None, fractions to floats, histogram counts left out."""
    if isinstance(data, dict):
        return {k: _plain(v) for k, v in data.items() if k != "ioi_counts"}
    if isinstance(data, np.ndarray | list | tuple):
        return [_plain(v) for v in data]
    if isinstance(data, float | Fraction | np.floating):
        value = float(data)
        return None if math.isnan(value) else round(value, 4)
    return data
