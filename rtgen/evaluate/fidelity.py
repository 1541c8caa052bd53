"""Genre fidelity: does fused output sound like the genres it was asked for, in proportion to their weights?

Two measurements, per fusion method, judged by ``rtgen.nets.classifier``:

* one genre at full weight: K pieces of N bars, and the share classified as
  that genre (target >= 0.8);
* a sweep: one genre's weight rising 0 -> 1 against another's in 5 steps;
  the share classified as the first must rise with it (Spearman >= 0.9).

Pieces start from SEP alone (no seed phrase, which would lend its own genre),
and piece i uses sampler seed ``seed + i`` at every weight setting (common
random numbers), so differences between settings come from the weights, not
from luck. The classifier is fitted on each corpus's training split and its
accuracy measured on the validation split (whole pieces and 16-bar openings).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from rtgen.encoding import Note
from rtgen.engine.controls import Controls
from rtgen.nets.classifier import GenreClassifier

if TYPE_CHECKING:
    from rtgen.data.corpus import TokenCorpus

SHARE_TARGET = 0.8
SPEARMAN_TARGET = 0.9
SWEEP_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
REBUILD_COMMAND = "rtgen eval classifier"
# Fidelity judges fusion, not the performer's masks: full pitch range, room for renaissance breves and voices.
OPEN_CONTROLS = Controls(pitch_min=0, pitch_max=127, max_polyphony=8, max_note_beats=16.0)
# How each shipped genre's model was trained (used when a model's meta.json does not say).
DEFAULT_SOURCES: dict[str, dict] = {
    "folk": {"source": "essenFolksong", "parts": "melody"},
    "fiddle": {"source": "ryansMammoth", "parts": "melody"},
    "chorale": {"source": "bach", "parts": "all"},
    "renaissance": {"source": "palestrina", "parts": "all", "limit": 300},
}


def genre_sources(genres: Sequence[str]) -> dict[str, dict]:
    """Corpus source, parts and limit per genre, from the installed model's meta.json or the defaults."""
    from rtgen.nets.checkpoint import installed_models

    metas = dict(installed_models())
    sources = {}
    for genre in genres:
        corpus = metas.get(genre, {}).get("corpus") or {}
        corpus = corpus.get(genre, corpus)  # meta.json keeps {genre: {source, parts, limit, ...}}
        default = DEFAULT_SOURCES.get(genre, {})
        source = corpus.get("source", default.get("source", genre))
        sources[genre] = {
            "source": source,
            "parts": corpus.get("parts", default.get("parts", "melody")),
            "limit": corpus.get("limit", default.get("limit")),
        }
    return sources


def load_pieces(
    sources: dict[str, dict], max_train: int = 1500, seed: int = 0
) -> tuple[dict[str, list[list[Note]]], dict[str, list[list[Note]]]]:
    """(train, valid) notes per genre from the corpus cache; at most ``max_train`` training pieces per genre.

    The features are transposition free, so training pieces are taken in their
    own key only (transposed copies would just repeat them), a seeded random
    subset when there are more than ``max_train``.
    """
    from rtgen.data.corpus import load_tokens

    train, valid = {}, {}
    for genre, spec in sources.items():
        corpus = load_tokens(spec["source"], parts=spec["parts"], limit=spec["limit"], progress=False)
        arrays = _own_key_training(corpus)
        random.Random(seed).shuffle(arrays)
        train[genre] = [corpus.encoding.decode(a.tolist()) for a in arrays[:max_train]]
        valid[genre] = [corpus.encoding.decode(a.tolist()) for a in corpus.valid]
    return train, valid


def _own_key_training(corpus: TokenCorpus) -> list:
    """Training token arrays in their original key (the corpus also holds them transposed)."""
    rows = np.flatnonzero((corpus.shift == 0) & ~corpus.valid_piece[corpus.piece])
    return [corpus.tokens[corpus.offsets[r] : corpus.offsets[r + 1]] for r in rows]


def opening(notes: Sequence[Note], bars: int) -> list[Note]:
    """The notes starting in the first ``bars`` bars of 4/4."""
    limit = Fraction(4 * bars)
    return [n for n in notes if n.start < limit]


def fit_classifier(genres: Sequence[str], max_train: int = 1500, seed: int = 0) -> GenreClassifier:
    """Fit on the training splits and record held-out accuracy (whole pieces and 16-bar openings)."""
    started = time.perf_counter()
    sources = genre_sources(genres)
    train, valid = load_pieces(sources, max_train, seed)
    classifier = GenreClassifier.fit(train)
    classifier.info.update(
        {
            "sources": sources,
            "train_pieces": {g: len(p) for g, p in train.items()},
            "valid_pieces": {g: len(p) for g, p in valid.items()},
            "valid_accuracy": classifier.accuracy(valid),
            "valid_accuracy_16_bars": classifier.accuracy({g: [opening(p, 16) for p in v] for g, v in valid.items()}),
            "seconds": round(time.perf_counter() - started, 1),
            "rebuild": REBUILD_COMMAND,
        }
    )
    return classifier


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation with average ranks for ties; 0 when either side is constant."""

    def ranks(values: Sequence[float]) -> list[float]:
        order = sorted(range(len(values)), key=lambda i: values[i])
        result = [0.0] * len(values)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
                j += 1
            for k in range(i, j + 1):
                result[order[k]] = (i + j) / 2
            i = j + 1
        return result

    rx, ry = ranks(x), ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    vx = sum((a - mx) ** 2 for a in rx)
    vy = sum((b - my) ** 2 for b in ry)
    return cov / (vx * vy) ** 0.5 if vx > 0 and vy > 0 else 0.0


class FidelityRun:
    """Generates and classifies K pieces per weight setting, caching settings shared between methods."""

    def __init__(
        self,
        classifier: GenreClassifier,
        pieces: int,
        bars: int,
        seed: int = 0,
        device: str = "cpu",
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.classifier, self.device = classifier, device
        self.pieces, self.bars, self.seed = pieces, bars, seed
        self.progress = progress or (lambda _: None)
        self.engines: dict[tuple, object] = {}
        self._cache: dict[tuple, dict[str, float]] = {}

    def engine(self, method: str, genres: tuple[str, ...]):
        """An engine stepping only the models a setting needs (a genre at weight 0 adds only time).

        ``conditional`` and ``two-phase`` play one installed model fed the
        weights (``multi``, ``two-phase``) and no genre model.
        """
        from rtgen.engine.derived import MODEL_METHODS
        from rtgen.engine.warm import Engine
        from rtgen.nets.twophase import TWO_PHASE_MODEL

        key = (method,) if method in MODEL_METHODS else genres
        if key not in self.engines:
            if method in MODEL_METHODS:
                settings = OPEN_CONTROLS.replace(weights={genres[0]: 1.0}, method=method)
                multi, twophase = ("multi", None) if method == "conditional" else (None, TWO_PHASE_MODEL)
                self.engines[key] = Engine.from_names([], self.device, settings, conditional=multi, twophase=twophase)
            else:
                settings = OPEN_CONTROLS.replace(weights=dict.fromkeys(genres, 1.0))
                self.engines[key] = Engine.from_names(
                    list(genres), self.device, settings, conditional=None, twophase=None
                )
        return self.engines[key]

    def shares(self, method: str, weights: dict[str, float]) -> dict[str, float]:
        """Share of K generated pieces classified as each genre, for one method and weight setting.

        With one genre weighted, mixture and product are the same distribution,
        so that setting is generated once for both.
        """
        from rtgen.engine.derived import MODEL_METHODS
        from rtgen.engine.offline import generate_notes

        positive = {g: w for g, w in weights.items() if w > 0}
        single = len(positive) == 1 and method not in MODEL_METHODS
        key = ("fused" if single else method, tuple(sorted(positive.items())))
        if key in self._cache:
            return self._cache[key]
        engine = self.engine(method, tuple(sorted(positive)))
        engine.set_controls(weights=positive, method=method)
        counts = dict.fromkeys(self.classifier.genres, 0)
        for i in range(self.pieces):
            notes = generate_notes(engine, [], self.bars, seed=self.seed + i)
            if notes:
                counts[self.classifier.classify(notes)] += 1
        self._cache[key] = {g: c / self.pieces for g, c in counts.items()}
        self.progress(f"{method} {positive}: {self._cache[key]}")
        return self._cache[key]

    def method_report(self, method: str, genres: Sequence[str], pairs: Sequence[tuple[str, str]]) -> dict:
        single = {}
        for genre in genres:
            share = self.shares(method, {g: float(g == genre) for g in genres})
            single[genre] = {"shares": share, "own_share": share[genre], "ok": share[genre] >= SHARE_TARGET}
        sweeps = []
        for first, second in pairs:
            curve = [self.shares(method, {first: w, second: 1.0 - w})[first] for w in SWEEP_WEIGHTS]
            rho = spearman(SWEEP_WEIGHTS, curve)
            sweeps.append(
                {
                    "genre": first,
                    "against": second,
                    "weights": list(SWEEP_WEIGHTS),
                    "share": curve,
                    "spearman": rho,
                    "ok": rho >= SPEARMAN_TARGET,
                }
            )
        ok = all(s["ok"] for s in single.values()) and all(s["ok"] for s in sweeps)
        return {"single": single, "sweeps": sweeps, "ok": ok}


def run_fidelity(
    classifier: GenreClassifier,
    methods: Sequence[str],
    pieces: int = 20,
    bars: int = 16,
    pairs: Sequence[tuple[str, str]] | None = None,
    seed: int = 0,
    device: str = "cpu",
    progress: Callable[[str], None] | None = None,
) -> dict:
    """The full fidelity report (JSON-ready) for ``methods`` over the classifier's genres."""
    started = time.perf_counter()
    genres = classifier.genres
    pairs = list(pairs or [(genres[0], genres[1])])
    run = FidelityRun(classifier, pieces, bars, seed, device, progress)
    report = {m: run.method_report(m, genres, pairs) for m in methods}
    return {
        "pieces": pieces,
        "bars": bars,
        "targets": {"own_share": SHARE_TARGET, "spearman": SPEARMAN_TARGET},
        "classifier": {k: classifier.info.get(k) for k in ("valid_accuracy", "valid_accuracy_16_bars", "rebuild")},
        "methods": report,
        "ok": all(r["ok"] for r in report.values()),
        "seconds": round(time.perf_counter() - started, 1),
    }
