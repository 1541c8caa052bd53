"""``rtgen eval music``: does generated music have the form of the real thing? Per genre, blend and preset.

For every setting (each genre alone, the 50/50 blends folk+fiddle and
chorale+renaissance, every preset at its own controls) ``pieces`` pieces of
``bars`` bars are generated, each primed with the opening two bars of a
validation piece of the setting's genres (never the training split; a genre
with fewer validation pieces than ``pieces`` reuses them with another sampler
seed). The primes are spread evenly over the validation pieces, which come in
corpus order: the first hundred Essen pieces are mostly in half notes, and
priming with them alone made generated folk look twice too slow. The real
reference is the same statistics over the validation pieces' first ``bars``
bars (``rtgen.evaluate.statistics``); the copy rate is measured against the
genre's training pieces in their own key. Deterministic for a seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from rtgen.encoding import Note
from rtgen.evaluate.statistics import prime_key_matches, summary, tv_distance

BLENDS = (("folk", "fiddle"), ("chorale", "renaissance"))
PRIME_BARS = 2


@dataclass(frozen=True)
class MusicEvalConfig:
    pieces: int = 100  # generated pieces per setting
    bars: int = 16  # bars of 4/4 per piece (and of each real piece's opening)
    seed: int = 0
    presets: bool = True  # every preset as a setting, at its own controls
    overrides: tuple[tuple[str, object], ...] = ()  # controls set on top of every setting's (e.g. repeat)
    device: str = "cpu"


@dataclass
class Reference:
    """One genre's real material: validation openings, primes, and its training pieces' pitch keys."""

    openings: list[list[Note]]
    primes: list[list[Note]]
    train_keys: np.ndarray


def references(genres: Sequence[str], bars: int) -> dict[str, Reference]:
    from rtgen.evaluate.fidelity import genre_sources, load_pieces, opening
    from rtgen.evaluate.statistics import pitch_keys

    train, valid = load_pieces(genre_sources(genres), max_train=10**9)
    out = {}
    for genre in genres:
        pieces = [p for p in valid[genre] if p]
        out[genre] = Reference(
            openings=[opening(p, bars) for p in pieces],
            primes=[opening(p, PRIME_BARS) for p in pieces],
            train_keys=pitch_keys(train[genre]),
        )
    return out


def settings(
    genres: Sequence[str], with_presets: bool, overrides: Sequence[tuple[str, object]] = ()
) -> list[tuple[str, object, tuple[str, ...]]]:
    """(name, Controls, the genres it draws on) for each genre, blend and preset; ``overrides`` on top of each.

    Genres and blends play at the default controls, ``FORM_CONTROLS``, as `rtgen generate` does without a preset.
    """
    from rtgen.daemon.presets import list_presets, load_preset
    from rtgen.engine.controls import Controls
    from rtgen.engine.form import FORM_CONTROLS

    out = [(genre, Controls(weights={genre: 1.0}, **FORM_CONTROLS), (genre,)) for genre in genres]
    for first, second in BLENDS:
        if first in genres and second in genres:
            blend = Controls(weights={first: 1.0, second: 1.0}, **FORM_CONTROLS)
            out.append((f"{first}+{second}", blend, (first, second)))
    for name in list_presets() if with_presets else []:
        preset = load_preset(name)
        weights = {g: w for g, w in preset.controls.weights.items() if g in genres and w > 0}
        if weights:
            out.append((f"preset {name}", preset.controls.replace(weights=weights), tuple(sorted(weights))))
    return [(name, controls.replace(**dict(overrides)), used) for name, controls, used in out]


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

    def pieces(self, controls, genres: tuple[str, ...]) -> list[list[Note]]:
        from rtgen.engine.offline import generate_notes

        engine = self.engine(controls, genres)
        per_genre = -(-self.config.pieces // len(genres))
        out = []
        for i in range(self.config.pieces):
            ref = self.refs[genres[i % len(genres)]]
            prime = ref.primes[(i // len(genres)) * len(ref.primes) // per_genre]  # spread over all of them
            out.append(generate_notes(engine, prime, self.config.bars, seed=self.config.seed + i))
            self.tick()
        return out


def run_music_eval(config: MusicEvalConfig, genres: Sequence[str], progress: bool = True) -> dict:
    """The report: per setting the generated statistics, the real ones, and each target's verdict."""
    from tqdm import tqdm

    beats = 4.0 * config.bars
    refs = references(genres, config.bars)
    real = {g: summary(r.openings, beats, r.train_keys) | prime_keys(r, config.pieces) for g, r in refs.items()}
    chosen = settings(genres, config.presets, config.overrides)
    bar = tqdm(total=len(chosen) * config.pieces, desc="eval music", unit="piece", disable=not progress)
    run = MusicRun(refs, config, lambda: bar.update(1))
    report: dict = {"config": config.__dict__, "real": _plain(real), "settings": {}}
    for name, controls, used in chosen:
        pieces = run.pieces(controls, used)
        train_keys = np.unique(np.concatenate([refs[g].train_keys for g in used]))
        generated = summary(pieces, beats, train_keys)
        report["settings"][name] = {
            "genres": list(used),
            **_plain({"generated": generated}),
            **targets(generated, [real[g] for g in used], name),
        }
    bar.close()
    return report


def prime_keys(ref: Reference, count: int) -> dict:
    """``prime_key_matches``: share of ``count`` validation pieces, spread as the primes are, whose two-bar prime
    gets the key signature of the piece's own opening (a soft key held in another key pulls the piece away)."""
    chosen = sorted({k * len(ref.primes) // count for k in range(count)})
    matches = [prime_key_matches(ref.primes[k], ref.openings[k]) for k in chosen]
    return {"prime_key_matches": sum(matches) / len(matches) if matches else float("nan")}


def targets(generated: dict, reals: Sequence[dict], name: str) -> dict:
    """The issue's targets for one setting against its genres' real figures (the lower where two)."""
    real_ioi = sum(r["ioi_counts"] for r in reals)
    checks = {"ioi_tv": tv_distance(generated["ioi_counts"], real_ioi)}
    real_repeats = min(r["repeats"] for r in reals)
    real_share = min(r["repeated_share"] for r in reals)
    real_npb = float(np.mean([r["notes_per_bar"] for r in reals]))
    real_key = min(r["key_holds"] for r in reals)
    real_copy = max(r["copy_rate"] for r in reals)
    ok = {
        "repeats": generated["repeats"] >= 0.8 * real_repeats,
        "repeated_share": generated["repeated_share"] >= 0.5 * real_share,
        "ioi_tv": checks["ioi_tv"] <= 0.15,
        "notes_per_bar": abs(generated["notes_per_bar"] - real_npb) <= 0.15 * real_npb,
        "key_holds": generated["key_holds"] >= (real_key if len(reals) > 1 else real_key - 0.05),
        "copy_rate": not generated["copy_rate"] > real_copy,
    }
    if name == "preset case-study-5-5-5":
        ok["key_holds"] = generated["key_holds"] >= 0.6
    return {"ioi_tv": checks["ioi_tv"], "real_notes_per_bar": real_npb, "ok": ok}


def _plain(data):
    """JSON-ready: arrays to lists, NaN to None, fractions to floats."""
    if isinstance(data, dict):
        return {k: _plain(v) for k, v in data.items() if k != "ioi_counts"}
    if isinstance(data, np.ndarray | list | tuple):
        return [_plain(v) for v in data]
    if isinstance(data, float | Fraction | np.floating):
        value = float(data)
        return None if math.isnan(value) else round(value, 4)
    return data


COLUMNS = (  # (column, generated key, how the real figure of several genres is taken)
    ("repeats", "repeats", min),
    ("rep.share", "repeated_share", min),
    ("notes/bar", "notes_per_bar", None),
    ("key holds", "key_holds", min),
    ("copy", "copy_rate", max),
)


def format_report(report: dict) -> str:
    """One row a setting: generated/real for each statistic, ! where its target is missed."""
    header = f"{'setting':<32} {'IOI TV':>7} " + " ".join(f"{label:>12}" for label, _, _ in COLUMNS)
    rows = [header]
    for name, row in report["settings"].items():
        reals = [report["real"][genre] for genre in row["genres"]]
        cells = [f"{name:<32} {row['ioi_tv']:>6.2f}{' ' if row['ok']['ioi_tv'] else '!'}"]
        for _, key, pick in COLUMNS:
            real = row["real_notes_per_bar"] if pick is None else pick((r[key] or 0.0) for r in reals)
            mark = "" if row["ok"][key] else "!"
            cells.append(f"{(row['generated'][key] or 0.0):.2f}/{real:.2f}{mark}".rjust(12))
        rows.append(" ".join(cells))
    rows.append("generated/real (real: the lower of two genres, the higher for copying); ! = target missed")
    matches = ", ".join(f"{g} {(r.get('prime_key_matches') or 0.0):.2f}" for g, r in report["real"].items())
    rows.append(f"two-bar primes whose detected key has their opening's key signature: {matches}")
    return "\n".join(rows)
